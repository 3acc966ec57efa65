//! `Reader` and `Reader.frames()`: one ring's frames, following its writer when replaced.
//!
//! The reading policy (slices, re-attach, handles of a newer writer) is
//! `shmring_common::session`'s; this maps it to Python: waits without the GIL, Ctrl-C
//! looked at between slices, outcomes as exceptions.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use shmring_common::session::{Got, Read, ReadMode, Session};
use shmring_common::{AtRule, Handle, Payload, RingLocation};

use crate::frame::Frame;
use crate::{to_py, EndOfStream, HandleGone, NotYetWritten, WriterGone};

/// Reads one ring. `latest()` returns the newest frame not returned yet (skipping what
/// a slow reader missed), `next()` every frame in order, `get(handle)` exactly one.
/// When its writer dies or is replaced, the reader takes the next writer's frames.
#[pyclass(frozen, module = "shmring._shmring")]
pub(crate) struct Reader {
    session: Session,
}

impl Reader {
    fn loc(&self) -> &RingLocation {
        self.session.location()
    }

    /// One frame, waiting up to `timeout` seconds (None: for ever).
    fn read(
        &self,
        py: Python<'_>,
        mode: ReadMode,
        timeout: Option<f64>,
    ) -> PyResult<Option<Py<Frame>>> {
        let deadline = deadline(timeout)?;
        let mut interrupted = None;
        let read = py.detach(|| {
            self.session.read(mode, deadline, || {
                match Python::attach(|py| py.check_signals()) {
                    Ok(()) => false,
                    Err(e) => {
                        interrupted = Some(e);
                        true
                    }
                }
            })
        });
        match read.map_err(to_py)? {
            Read::Frame(f) => {
                let frame = Frame::new(self.loc().display_name(), f.info, f.data, f.missed);
                Ok(Some(Py::new(py, frame)?))
            }
            Read::TimedOut => Ok(None),
            Read::Stopped => Err(interrupted.expect("a read stops only on a Python error")),
            Read::Eos => Err(EndOfStream::new_err(format!(
                "the writer of ring {} ended its stream",
                self.loc()
            ))),
            Read::WriterGone(why) => Err(WriterGone::new_err(format!(
                "the writer of ring {} is gone ({why:?}) and no new writer came within the timeout",
                self.loc()
            ))),
        }
    }

    /// A frame `get` or `at` found.
    fn got(&self, py: Python<'_>, got: Got, what: impl FnOnce() -> String) -> PyResult<Py<Frame>> {
        match got {
            Got::Frame(f) => {
                let frame = Frame::new(
                    self.loc().display_name(),
                    f.info,
                    Payload::Copied(f.data),
                    0,
                );
                Py::new(py, frame)
            }
            Got::NotYet => Err(NotYetWritten::new_err(format!(
                "{} is not written yet",
                what()
            ))),
            Got::Gone => Err(HandleGone::new_err(format!(
                "{} was overwritten, or is of another writer epoch",
                what()
            ))),
        }
    }
}

fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        // A timeout beyond what the clock can count waits for ever.
        Some(t) if t >= 0.0 => Ok(Duration::try_from_secs_f64(t)
            .ok()
            .and_then(|d| Instant::now().checked_add(d))),
        Some(t) => Err(PyValueError::new_err(format!(
            "timeout {t}: expected seconds, 0 or more, or None to wait for ever"
        ))),
    }
}

#[pymethods]
impl Reader {
    /// Opens ring `ring` (a name in `dir`, default `/dev/shm/shmring-<uid>` or
    /// `$SHMRING_DIR`, or an absolute path). `zero_copy=False` copies every frame.
    #[new]
    #[pyo3(signature = (ring, dir=None, zero_copy=true))]
    fn new(py: Python<'_>, ring: &str, dir: Option<PathBuf>, zero_copy: bool) -> PyResult<Self> {
        let loc = RingLocation::parse(ring, dir.as_deref()).map_err(to_py)?;
        // Start with the newest frame, as shmringsrc does. Without the GIL: opening maps
        // the ring's pages (3 ms for a 1080p ring).
        let session = py.detach(|| Session::open(loc, zero_copy)).map_err(to_py)?;
        Ok(Reader { session })
    }

    /// The newest frame not returned yet, waiting up to `timeout` seconds for one
    /// (None: for ever); None when none came in time.
    #[pyo3(signature = (timeout=None))]
    fn latest(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<Frame>>> {
        self.read(py, ReadMode::Latest, timeout)
    }

    /// The next frame in order (`missed` counts those lost to a writer that lapped this
    /// reader), waiting up to `timeout` seconds; None when none came in time.
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<Frame>>> {
        self.read(py, ReadMode::Next, timeout)
    }

    /// Exactly the frame `handle` names (a copy). Raises HandleGone when it was
    /// overwritten, NotYetWritten when it is not written yet, BadHandle when it is
    /// malformed or of another ring.
    fn get(&self, py: Python<'_>, handle: &str) -> PyResult<Py<Frame>> {
        let h: Handle = handle.parse().map_err(to_py)?;
        let got = py.detach(|| self.session.get(&h)).map_err(to_py)?;
        self.got(py, got, || format!("frame {handle}"))
    }

    /// The frame captured closest to `captured_at` (ns since the Unix epoch) by `rule`:
    /// "nearest", "at-or-before" or "at-or-after" (a copy). Raises HandleGone when every
    /// frame that would do was overwritten, NotYetWritten when none is written yet.
    #[pyo3(signature = (captured_at, rule="nearest"))]
    fn at(&self, py: Python<'_>, captured_at: u64, rule: &str) -> PyResult<Py<Frame>> {
        let rule: AtRule = rule.parse().map_err(PyValueError::new_err)?;
        let got = py
            .detach(|| self.session.at(captured_at, rule))
            .map_err(to_py)?;
        self.got(py, got, || {
            format!(
                "the frame of {} captured by {captured_at} ({rule:?})",
                self.loc()
            )
        })
    }

    /// Iterates over frames (`mode` "latest" or "next"), waiting for each as long as it
    /// takes; the iteration ends with the writer's stream (EOS).
    #[pyo3(signature = (mode="latest"))]
    fn frames(slf: Py<Self>, mode: &str) -> PyResult<FrameIter> {
        let mode = match mode {
            "latest" => ReadMode::Latest,
            "next" => ReadMode::Next,
            other => {
                return Err(PyValueError::new_err(format!(
                    "mode {other:?}: expected \"latest\" or \"next\""
                )))
            }
        };
        Ok(FrameIter { reader: slf, mode })
    }

    /// What the ring says of itself: width, height, format, fps, caps, slots,
    /// writer_pid, writer_state, epoch, ring, path.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let i = py.detach(|| self.session.info()).map_err(to_py)?;
        let d = PyDict::new(py);
        d.set_item("ring", self.loc().display_name())?;
        d.set_item("path", self.loc().path())?;
        d.set_item("width", i.width)?;
        d.set_item("height", i.height)?;
        d.set_item("format", i.format)?;
        d.set_item("fps", i.fps)?;
        d.set_item("caps", i.caps)?;
        d.set_item("slots", i.slots)?;
        d.set_item("writer_pid", i.writer_pid)?;
        d.set_item(
            "writer_state",
            format!("{:?}", i.writer_status).to_lowercase(),
        )?;
        d.set_item("epoch", format!("{:016x}", i.epoch))?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("<shmring.Reader {}>", self.loc())
    }
}

/// `Reader.frames()`.
#[pyclass(module = "shmring._shmring")]
pub(crate) struct FrameIter {
    reader: Py<Reader>,
    mode: ReadMode,
}

#[pymethods]
impl FrameIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<Frame>>> {
        match self.reader.get().read(py, self.mode, None) {
            Err(e) if e.is_instance_of::<EndOfStream>(py) => Ok(None),
            other => other,
        }
    }
}
