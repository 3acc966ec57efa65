//! `Reader` and `Reader.frames()`: one ring's frames, following its writer when replaced.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use shmring_common::{
    attach, At, AtRule, Attach, ByHandle, Follower, FrameInfo, Handle, Interrupter, Next, Payload,
    RingLocation, RingReader, StartAt,
};

use crate::frame::Frame;
use crate::{
    lock, to_py, BadHandle, EndOfStream, HandleGone, NotYetWritten, ShmringError, WriterGone,
};

/// How long a wait sleeps before it looks at Ctrl-C.
const SLICE: Duration = Duration::from_millis(100);

/// The reader's ring, reopened when its writer is replaced. Its follower always holds a
/// reader: only `open` and `adopt` are used here, never `Follower::attach`,
/// `writer_gone` or `drop_if_gone`, which may leave it without one.
struct ReaderState {
    /// Always reads a ring: opened by `Reader::new`, and replaced, never dropped, when
    /// a new writer comes (so a ring whose writer is gone stays readable meanwhile).
    follower: Follower,
    zero_copy: bool,
}

impl ReaderState {
    fn reader(&self) -> &RingReader {
        self.follower
            .reader()
            .expect("a Reader always reads a ring")
    }

    fn reader_mut(&mut self) -> &mut RingReader {
        self.follower
            .reader_mut()
            .expect("a Reader always reads a ring")
    }

    fn enable_zero_copy(&mut self) {
        if self.zero_copy {
            // No write access or a full reader table: frames are copies.
            let _ = self.reader_mut().enable_zero_copy();
        }
    }
}

/// Reads one ring. `latest()` returns the newest frame not returned yet (skipping what
/// a slow reader missed), `next()` every frame in order, `get(handle)` exactly one.
/// When its writer dies or is replaced, the reader takes the next writer's frames.
#[pyclass(frozen, module = "shmring._shmring")]
pub(crate) struct Reader {
    loc: RingLocation,
    interrupter: Interrupter,
    state: Mutex<ReaderState>,
}

#[derive(Clone, Copy)]
enum Mode {
    Latest,
    Next,
}

impl Reader {
    /// One frame, waiting up to `timeout` seconds (None: for ever).
    fn read(
        &self,
        py: Python<'_>,
        mode: Mode,
        timeout: Option<f64>,
    ) -> PyResult<Option<Py<Frame>>> {
        let deadline = deadline(timeout)?;
        loop {
            let slice = slice_until(deadline);
            let result = py.detach(|| {
                let mut st = lock(&self.state);
                let alloc = |i: &FrameInfo| vec![0u8; i.len as usize];
                match mode {
                    Mode::Latest => st.reader_mut().latest_zero_copy(slice, alloc),
                    Mode::Next => st.reader_mut().next_zero_copy(slice, alloc),
                }
            });
            match result.map_err(to_py)? {
                Next::Frame(f) => {
                    let frame = Frame::new(self.loc.display_name(), f.info, f.data, f.missed);
                    return Ok(Some(Py::new(py, frame)?));
                }
                Next::Eos => {
                    return Err(EndOfStream::new_err(format!(
                        "the writer of ring {} ended its stream",
                        self.loc
                    )))
                }
                Next::WriterGone(why) => {
                    py.check_signals()?;
                    if !self.reattach(py, deadline)? {
                        return Err(WriterGone::new_err(format!(
                            "the writer of ring {} is gone ({why:?}) and no new writer came within the timeout",
                            self.loc
                        )));
                    }
                    continue;
                }
                Next::TimedOut | Next::Interrupted => {}
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }

    /// Waits until a live ring has the name again and reads it; false at the deadline.
    fn reattach(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<bool> {
        loop {
            let slice = slice_until(deadline);
            let found = py.detach(|| attach(&self.loc, slice, &self.interrupter));
            match found.map_err(to_py)? {
                Attach::Reader(r) => {
                    // The mutex is only ever waited for without the GIL.
                    py.detach(|| {
                        let mut st = lock(&self.state);
                        // A new writer: the follower reads it from its first frame held.
                        st.follower.adopt(r);
                        st.enable_zero_copy();
                    });
                    return Ok(true);
                }
                Attach::TimedOut | Attach::Interrupted => {}
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
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

fn slice_until(deadline: Option<Instant>) -> Duration {
    deadline.map_or(SLICE, |d| {
        d.saturating_duration_since(Instant::now()).min(SLICE)
    })
}

#[pymethods]
impl Reader {
    /// Opens ring `ring` (a name in `dir`, default `/dev/shm/shmring-<uid>` or
    /// `$SHMRING_DIR`, or an absolute path). `zero_copy=False` copies every frame.
    #[new]
    #[pyo3(signature = (ring, dir=None, zero_copy=true))]
    fn new(ring: &str, dir: Option<PathBuf>, zero_copy: bool) -> PyResult<Self> {
        let loc = RingLocation::parse(ring, dir.as_deref()).map_err(to_py)?;
        let interrupter = Interrupter::new()
            .map_err(|e| ShmringError::new_err(format!("cannot create an eventfd: {e}")))?;
        // Start with the newest frame, as shmringsrc does.
        let mut follower = Follower::new(loc.clone(), StartAt::Newest);
        follower.open(&interrupter).map_err(to_py)?;
        let mut state = ReaderState {
            follower,
            zero_copy,
        };
        state.enable_zero_copy();
        Ok(Reader {
            loc,
            interrupter,
            state: Mutex::new(state),
        })
    }

    /// The newest frame not returned yet, waiting up to `timeout` seconds for one
    /// (None: for ever); None when none came in time.
    #[pyo3(signature = (timeout=None))]
    fn latest(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<Frame>>> {
        self.read(py, Mode::Latest, timeout)
    }

    /// The next frame in order (`missed` counts those lost to a writer that lapped this
    /// reader), waiting up to `timeout` seconds; None when none came in time.
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<Frame>>> {
        self.read(py, Mode::Next, timeout)
    }

    /// Exactly the frame `handle` names (a copy). Raises HandleGone when it was
    /// overwritten, NotYetWritten when it is not written yet, BadHandle when it is
    /// malformed or of another ring.
    fn get(&self, py: Python<'_>, handle: &str) -> PyResult<Py<Frame>> {
        let h: Handle = handle.parse().map_err(to_py)?;
        if h.ring != self.loc.display_name() {
            return Err(BadHandle::new_err(format!(
                "handle {handle} names ring {}, this reader reads {}",
                h.ring,
                self.loc.display_name()
            )));
        }
        for attempt in 0..2 {
            let result = py.detach(|| {
                let mut st = lock(&self.state);
                st.reader_mut().by_handle(&h, |i| vec![0u8; i.len as usize])
            });
            match result.map_err(to_py)? {
                ByHandle::Frame(f) => {
                    let frame =
                        Frame::new(self.loc.display_name(), f.info, Payload::Copied(f.data), 0);
                    return Py::new(py, frame);
                }
                ByHandle::NotYet => {
                    return Err(NotYetWritten::new_err(format!(
                        "frame {handle} is not written yet"
                    )))
                }
                ByHandle::Gone => {
                    // Of a newer writer than the one read so far: follow it, once.
                    let stale = py.detach(|| {
                        let st = lock(&self.state);
                        st.reader().epoch() != h.epoch && st.follower.is_gone()
                    });
                    if attempt == 0 && stale && self.reattach(py, Some(Instant::now()))? {
                        continue;
                    }
                    return Err(HandleGone::new_err(format!(
                        "frame {handle} was overwritten, or is of another writer epoch"
                    )));
                }
            }
        }
        unreachable!("two attempts at most")
    }

    /// The frame captured closest to `captured_at` (ns since the Unix epoch) by `rule`:
    /// "nearest", "at-or-before" or "at-or-after" (a copy). Raises HandleGone when every
    /// frame that would do was overwritten, NotYetWritten when none is written yet.
    #[pyo3(signature = (captured_at, rule="nearest"))]
    fn at(&self, py: Python<'_>, captured_at: u64, rule: &str) -> PyResult<Py<Frame>> {
        let rule: AtRule = rule.parse().map_err(PyValueError::new_err)?;
        let found = py.detach(|| lock(&self.state).reader().seq_at(captured_at, rule));
        match found.map_err(to_py)? {
            At::Frame(seq) => {
                let epoch = py.detach(|| lock(&self.state).reader().epoch());
                let handle = Handle {
                    ring: self.loc.display_name().to_owned(),
                    epoch,
                    seq,
                };
                self.get(py, &handle.to_string())
            }
            At::Gone => Err(HandleGone::new_err(format!(
                "every frame of {} captured by {captured_at} ({rule:?}) was overwritten",
                self.loc
            ))),
            At::NotYet => Err(NotYetWritten::new_err(format!(
                "no frame of {} captured by {captured_at} ({rule:?}) is written yet",
                self.loc
            ))),
        }
    }

    /// Iterates over frames (`mode` "latest" or "next"), waiting for each as long as it
    /// takes; the iteration ends with the writer's stream (EOS).
    #[pyo3(signature = (mode="latest"))]
    fn frames(slf: Py<Self>, mode: &str) -> PyResult<FrameIter> {
        let mode = match mode {
            "latest" => Mode::Latest,
            "next" => Mode::Next,
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
        // Copied out under the lock, without the GIL; the dict is built after.
        let (caps, slots, pid, status, epoch) = py.detach(|| {
            let st = lock(&self.state);
            let r = st.reader();
            (
                r.current_caps().map(|c| c.map(|(_, c)| c)),
                r.geometry().slot_count,
                r.writer_pid(),
                r.writer_status(),
                r.epoch(),
            )
        });
        let caps = caps.map_err(to_py)?;
        let d = PyDict::new(py);
        let field = |name: &str| -> Option<String> {
            let caps = caps.as_deref()?;
            let at = caps.find(&format!("{name}="))? + name.len() + 1;
            let rest = &caps[at..];
            let rest = rest
                .strip_prefix('(')
                .and_then(|r| r.split_once(')'))
                .map_or(rest, |(_, r)| r);
            Some(rest.split([',', ';']).next()?.trim().to_owned())
        };
        let fps = field("framerate").and_then(|f| {
            let (n, d) = f.split_once('/')?;
            Some(n.parse::<f64>().ok()? / d.parse::<f64>().ok()?)
        });
        d.set_item("ring", self.loc.display_name())?;
        d.set_item("path", self.loc.path())?;
        d.set_item("width", field("width").and_then(|w| w.parse::<u32>().ok()))?;
        d.set_item(
            "height",
            field("height").and_then(|h| h.parse::<u32>().ok()),
        )?;
        d.set_item("format", field("format"))?;
        d.set_item("fps", fps)?;
        d.set_item("caps", caps)?;
        d.set_item("slots", slots)?;
        d.set_item("writer_pid", pid)?;
        d.set_item("writer_state", format!("{status:?}").to_lowercase())?;
        d.set_item("epoch", format!("{epoch:016x}"))?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("<shmring.Reader {}>", self.loc)
    }
}

/// `Reader.frames()`.
#[pyclass(module = "shmring._shmring")]
pub(crate) struct FrameIter {
    reader: Py<Reader>,
    mode: Mode,
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
