//! `shmring._shmring`: shmring rings for Python, without GStreamer.
//!
//! A `Reader` returns `Frame`s whose `array` is a read-only numpy view straight on the
//! ring's slot, which the frame leases (the writer does not reuse it) until the frame
//! is released: at the end of its `with` block, by `release()`, or when it is garbage
//! collected. Where no lease can be had (no write access to the ring, every spare slot
//! leased) the frame is a copy. A `Writer` publishes numpy arrays (of any memory order:
//! the bytes go in the array's logical C order), or lends a slot of the ring to be
//! filled in place (`with writer.frame() as f`). A committed frame never changes: the
//! slot is committed in place when no view of the frame's array is left, else a copy of
//! it is (see `WriteFrame`). `Writer.close()` unmaps the ring at once, but for the slots
//! whose views are still alive, and every method of a closed writer raises. Waits
//! release the GIL and look at Ctrl-C every 100 ms.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use numpy::ndarray::{ArrayView, IxDyn, ShapeBuilder};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyWeakrefMethods, PyWeakrefReference};

use shmring_common::layout::{MAX_SLOTS, MAX_SPARES, MIN_SLOTS};
use shmring_common::{
    attach, At, AtRule, Attach, ByHandle, Error, FrameInfo, FrameMeta, Handle, Interrupter,
    LeasedPayload, Lender, Loan, Next, Payload, RingHold, RingLocation, RingReader, RingWriter,
    VideoLayout, WriterConfig, WriterState, WriterStatus,
};

pyo3::create_exception!(_shmring, ShmringError, PyException, "Any error of a ring.");
pyo3::create_exception!(
    _shmring,
    RingNotFound,
    ShmringError,
    "No ring of that name (yet)."
);
pyo3::create_exception!(
    _shmring,
    WriterGone,
    ShmringError,
    "The ring's writer is gone and no new one came within the timeout."
);
pyo3::create_exception!(
    _shmring,
    EndOfStream,
    ShmringError,
    "The writer ended its stream."
);
pyo3::create_exception!(
    _shmring,
    CorruptRing,
    ShmringError,
    "The ring file fails a check."
);
pyo3::create_exception!(
    _shmring,
    HandleGone,
    ShmringError,
    "The frame was overwritten."
);
pyo3::create_exception!(
    _shmring,
    NotYetWritten,
    ShmringError,
    "The frame is not written yet."
);
pyo3::create_exception!(
    _shmring,
    BadHandle,
    ShmringError,
    "A malformed handle, or another ring's."
);
pyo3::create_exception!(
    _shmring,
    BadName,
    ShmringError,
    "A ring name that cannot be used."
);

/// How long a wait sleeps before it looks at Ctrl-C.
const SLICE: Duration = Duration::from_millis(100);

/// Locks `m`, carrying on after a panic elsewhere left it poisoned (every update under
/// these locks is complete before anything can fail).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn to_py(e: Error) -> PyErr {
    let text = e.to_string();
    match e {
        Error::NotFound { .. } => RingNotFound::new_err(text),
        Error::Corrupt { .. }
        | Error::Truncated { .. }
        | Error::UnsupportedVersion { .. }
        | Error::NotARingFile { .. } => CorruptRing::new_err(text),
        Error::InvalidName { .. } => BadName::new_err(text),
        Error::InvalidHandle { .. } => BadHandle::new_err(text),
        _ => ShmringError::new_err(text),
    }
}

/// The raw video formats the Python side knows by name, with their GstVideoFormat
/// numbers (a stable part of GStreamer's ABI) and how their bytes lie.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Gray8,
    Gray16,
    /// Packed pixels of this many bytes.
    Packed(usize),
    /// Three planes, chroma halved both ways (I420, YV12).
    Planar420,
    /// Luma, then interleaved chroma halved both ways (NV12, NV21).
    SemiPlanar420,
}

const FORMATS: [(&str, u32, Kind); 16] = [
    ("I420", 2, Kind::Planar420),
    ("YV12", 3, Kind::Planar420),
    ("RGBx", 7, Kind::Packed(4)),
    ("BGRx", 8, Kind::Packed(4)),
    ("xRGB", 9, Kind::Packed(4)),
    ("xBGR", 10, Kind::Packed(4)),
    ("RGBA", 11, Kind::Packed(4)),
    ("BGRA", 12, Kind::Packed(4)),
    ("ARGB", 13, Kind::Packed(4)),
    ("ABGR", 14, Kind::Packed(4)),
    ("RGB", 15, Kind::Packed(3)),
    ("BGR", 16, Kind::Packed(3)),
    ("NV12", 23, Kind::SemiPlanar420),
    ("NV21", 24, Kind::SemiPlanar420),
    ("GRAY8", 25, Kind::Gray8),
    ("GRAY16_LE", 27, Kind::Gray16),
];

fn format_by_number(n: u32) -> Option<(&'static str, Kind)> {
    FORMATS
        .iter()
        .find(|f| f.1 == n)
        .map(|&(name, _, kind)| (name, kind))
}

fn format_by_name(name: &str) -> Option<(u32, Kind)> {
    FORMATS
        .iter()
        .find(|f| f.0.eq_ignore_ascii_case(name))
        .map(|&(_, n, kind)| (n, kind))
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Rows and bytes per row of each plane of a `w` x `h` frame.
fn planes_of(kind: Kind, w: usize, h: usize) -> Vec<(usize, usize)> {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    match kind {
        Kind::Gray8 => vec![(h, w)],
        Kind::Gray16 => vec![(h, 2 * w)],
        Kind::Packed(c) => vec![(h, c * w)],
        Kind::Planar420 => vec![(h, w), (ch, cw), (ch, cw)],
        Kind::SemiPlanar420 => vec![(h, w), (ch, 2 * cw)],
    }
}

/// GStreamer's default layout of a `w` x `h` frame: its planes' offsets and strides,
/// and its size (as `gst_video_info_set_format` computes them for these formats). None
/// when the sizes do not fit the address space (dimensions read from a hostile ring).
fn default_layout(number: u32, kind: Kind, w: usize, h: usize) -> Option<(VideoLayout, usize)> {
    let (offsets, strides, size): (Vec<usize>, Vec<usize>, usize) = match kind {
        Kind::Gray8 | Kind::Gray16 | Kind::Packed(_) => {
            let s = match kind {
                Kind::Packed(4) => w.checked_mul(4)?,
                Kind::Packed(c) => round_up(w.checked_mul(c)?, 4),
                Kind::Gray16 => round_up(w.checked_mul(2)?, 4),
                _ => round_up(w, 4),
            };
            (vec![0], vec![s], s.checked_mul(h)?)
        }
        Kind::Planar420 => {
            let s0 = round_up(w, 4);
            let s1 = round_up(round_up(w, 2) / 2, 4);
            let half = round_up(h, 2) / 2;
            let o1 = s0.checked_mul(round_up(h, 2))?;
            let o2 = o1.checked_add(s1.checked_mul(half)?)?;
            let size = o2.checked_add(s1.checked_mul(half)?)?;
            (vec![0, o1, o2], vec![s0, s1, s1], size)
        }
        Kind::SemiPlanar420 => {
            let s0 = round_up(w, 4);
            let o1 = s0.checked_mul(round_up(h, 2))?;
            let size = o1.checked_add(s0.checked_mul(round_up(h, 2) / 2)?)?;
            (vec![0, o1], vec![s0, s0], size)
        }
    };
    let mut layout = VideoLayout {
        format: number,
        width: w as u32,
        height: h as u32,
        n_planes: offsets.len() as u32,
        ..Default::default()
    };
    for (p, (o, s)) in offsets.into_iter().zip(strides).enumerate() {
        layout.offsets[p] = o as u64;
        layout.strides[p] = i32::try_from(s).ok()?;
    }
    Some((layout, size))
}

/// Whether a view of `shape` and byte `strides` at byte `offset` lies within `len`.
fn fits(shape: &[usize], strides: &[usize], offset: usize, len: usize) -> bool {
    if shape.contains(&0) {
        return offset <= len;
    }
    let last = shape.iter().zip(strides).try_fold(offset, |end, (&n, &s)| {
        (n - 1).checked_mul(s).and_then(|x| end.checked_add(x))
    });
    last.is_some_and(|l| l < len)
}

/// The shape, byte strides and byte offset a frame's `array` has: `(H, W)` for GRAY8,
/// `(H, W, C)` for packed RGB and the like, `(H * 3 / 2, W)` for the 4:2:0 formats laid
/// out tightly (what OpenCV's `COLOR_YUV2BGR_I420` and friends take), else 1-D.
fn array_layout(v: &VideoLayout, len: usize) -> (Vec<usize>, Vec<usize>, usize) {
    let one_d = (vec![len], vec![1], 0);
    let Some((_, kind)) = format_by_number(v.format) else {
        return one_d;
    };
    let (w, h) = (v.width as usize, v.height as usize);
    let stride = |p: usize| usize::try_from(v.strides[p]).unwrap_or(0);
    let offset = |p: usize| v.offsets[p] as usize;
    let (shape, strides, at) = match kind {
        Kind::Gray8 => (vec![h, w], vec![stride(0), 1], offset(0)),
        Kind::Packed(c) => (vec![h, w, c], vec![stride(0), c, 1], offset(0)),
        Kind::Planar420 | Kind::SemiPlanar420 => {
            let Some((default, _)) = default_layout(v.format, kind, w, h) else {
                return one_d;
            };
            let tight = w % 4 == 0
                && h % 2 == 0
                && (kind == Kind::SemiPlanar420 || w % 8 == 0)
                && default.offsets == v.offsets
                && default.strides == v.strides;
            if !tight {
                return one_d;
            }
            (vec![h * 3 / 2, w], vec![w, 1], 0)
        }
        Kind::Gray16 => return one_d,
    };
    if fits(&shape, &strides, at, len) {
        (shape, strides, at)
    } else {
        one_d
    }
}

/// A numpy array over `len` bytes at `ptr`, shaped by `v`, owned by `owner`.
///
/// # Safety
/// `ptr..ptr+len` must stay valid memory for as long as `owner` lives.
unsafe fn view<'py>(
    owner: Bound<'py, PyAny>,
    ptr: *const u8,
    shape: &[usize],
    strides: &[usize],
    offset: usize,
) -> Bound<'py, PyArrayDyn<u8>> {
    // SAFETY: the caller's contract; `fits` checked the view against the length.
    unsafe {
        let array =
            ArrayView::from_shape_ptr(IxDyn(shape).strides(IxDyn(strides)), ptr.add(offset));
        PyArrayDyn::borrow_from_array(&array, owner)
    }
}

/// Clears the array's WRITEABLE flag, as `PyArray_CLEARFLAGS` does. A Python call to
/// `setflags` costs about 40 us per frame; this is a store.
fn read_only(array: &Bound<'_, PyArrayDyn<u8>>) {
    // SAFETY: `as_array_ptr` points at the live array object `array` holds a reference
    // to, and the GIL (the `Bound`) serialises every access to its fields. Clearing
    // WRITEABLE only takes a right away: numpy checks the flag before each write.
    unsafe {
        (*array.as_array_ptr()).fields.flags &= !numpy::npyffi::flags::NPY_ARRAY_WRITEABLE;
    }
}

/// Where a frame's bytes are.
enum Bytes {
    /// In the ring, leased: the writer does not reuse the slot.
    Leased(LeasedPayload),
    /// A copy of its own.
    Copied(Vec<u8>),
    /// In the ring, no longer leased (after `release`): still mapped (the hold keeps
    /// it so), maybe rewritten.
    Released(#[allow(dead_code)] RingHold, usize, usize),
}

impl Bytes {
    fn ptr_len(&self) -> (*const u8, usize) {
        match self {
            Bytes::Leased(l) => (l.as_ptr(), l.len()),
            Bytes::Copied(v) => (v.as_ptr(), v.len()),
            Bytes::Released(_, p, l) => (*p as *const u8, *l),
        }
    }

    fn to_vec(&self) -> Vec<u8> {
        match self {
            Bytes::Leased(l) => l.to_vec(),
            Bytes::Copied(v) => v.clone(),
            Bytes::Released(_, p, l) => {
                let mut v = vec![0; *l];
                // SAFETY: mapped while the RingHold lives; read through a raw pointer, as
                // LeasedPayload::copy_to does (the bytes may be changing: released).
                unsafe { std::ptr::copy_nonoverlapping(*p as *const u8, v.as_mut_ptr(), *l) };
                v
            }
        }
    }
}

/// One frame of a ring. Its `array` is a read-only view of the frame's bytes: in the
/// ring itself while the frame holds a lease on its slot, else a copy of its own.
/// Use it in a `with` block, or call `release()`, to give the lease back; garbage
/// collection gives it back too. Views made before a release stay valid memory, but the
/// writer may rewrite the slot after it: take `copy()` to keep the bytes.
#[pyclass(frozen, module = "shmring._shmring")]
struct Frame {
    info: FrameInfo,
    ring: String,
    missed: u64,
    bytes: Mutex<Bytes>,
}

impl Frame {
    fn new(ring: &str, info: FrameInfo, data: Payload<Vec<u8>>, missed: u64) -> Self {
        Frame {
            info,
            ring: ring.to_owned(),
            missed,
            bytes: Mutex::new(match data {
                Payload::Leased(l) => Bytes::Leased(l),
                Payload::Copied(v) => Bytes::Copied(v),
            }),
        }
    }
}

#[pymethods]
impl Frame {
    /// The frame's sequence in its ring (1, 2, ...).
    #[getter]
    fn seq(&self) -> u64 {
        self.info.seq
    }

    /// The writer's pts in ns, if it had one.
    #[getter]
    fn pts(&self) -> Option<u64> {
        self.info.pts
    }

    /// Wall-clock capture time, ns since the Unix epoch.
    #[getter]
    fn captured_at(&self) -> u64 {
        self.info.captured_at_ns
    }

    /// The handle that names this frame: `ring:epoch:seq`.
    #[getter]
    fn handle(&self) -> String {
        Handle {
            ring: self.ring.clone(),
            epoch: self.info.epoch,
            seq: self.info.seq,
        }
        .to_string()
    }

    /// Frames between the previous one returned and this one that were skipped
    /// (`latest`) or lost to the writer lapping the reader (`next`).
    #[getter]
    fn missed(&self) -> u64 {
        self.missed
    }

    /// GStreamer's name of the frame's format (`I420`, `BGRx`, ...).
    #[getter]
    fn format(&self) -> String {
        format_by_number(self.info.video.format)
            .map(|(name, _)| name.to_owned())
            .unwrap_or_else(|| format!("GstVideoFormat({})", self.info.video.format))
    }

    #[getter]
    fn width(&self) -> u32 {
        self.info.video.width
    }

    #[getter]
    fn height(&self) -> u32 {
        self.info.video.height
    }

    /// Whether the bytes are the ring's own slot, leased (False: a copy, or released).
    #[getter]
    fn zero_copy(&self) -> bool {
        matches!(*lock(&self.bytes), Bytes::Leased(_))
    }

    /// The frame as a read-only numpy array of uint8, shaped by its format.
    #[getter]
    fn array<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyArrayDyn<u8>>> {
        let (ptr, len) = lock(&slf.get().bytes).ptr_len();
        let (shape, strides, offset) = array_layout(&slf.get().info.video, len);
        // SAFETY: the bytes stay where they are for as long as the frame lives (a copy
        // is never reallocated, a leased or released slot stays mapped), and the array
        // keeps the frame alive through its base.
        let array = unsafe { view(slf.into_any(), ptr, &shape, &strides, offset) };
        read_only(&array);
        Ok(array)
    }

    /// One read-only 2-D array per plane, rows by bytes, with the plane's real stride.
    #[getter]
    fn planes<'py>(slf: Bound<'py, Self>) -> PyResult<Vec<Bound<'py, PyArrayDyn<u8>>>> {
        let (ptr, len) = lock(&slf.get().bytes).ptr_len();
        let v = slf.get().info.video;
        let Some((_, kind)) = format_by_number(v.format) else {
            return Err(PyValueError::new_err(format!(
                "planes of format {} are not known here; use array",
                v.format
            )));
        };
        let mut out = vec![];
        for (p, (rows, row)) in planes_of(kind, v.width as usize, v.height as usize)
            .into_iter()
            .enumerate()
        {
            let stride = usize::try_from(v.strides[p]).unwrap_or(0);
            let offset = v.offsets[p] as usize;
            if !fits(&[rows, row], &[stride, 1], offset, len) {
                return Err(CorruptRing::new_err(format!(
                    "frame {}: plane {p} ({rows} rows of {row} bytes, stride {stride}, at {offset}) lies outside its {len} bytes",
                    slf.get().info.seq
                )));
            }
            // SAFETY: as for `array`.
            let array = unsafe {
                view(
                    slf.clone().into_any(),
                    ptr,
                    &[rows, row],
                    &[stride, 1],
                    offset,
                )
            };
            read_only(&array);
            out.push(array);
        }
        Ok(out)
    }

    /// A writable copy of `array`, which stays as it is whatever the writer does.
    fn copy<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Frame::array(slf)?.call_method0("copy")
    }

    /// The frame's bytes, copied.
    fn tobytes(&self) -> Vec<u8> {
        lock(&self.bytes).to_vec()
    }

    /// Gives the lease on the ring's slot back (nothing for a copy).
    fn release(&self) {
        let mut bytes = lock(&self.bytes);
        if let Bytes::Leased(_) = &*bytes {
            let Bytes::Leased(l) = std::mem::replace(&mut *bytes, Bytes::Copied(vec![])) else {
                unreachable!()
            };
            let (ptr, len) = (l.as_ptr() as usize, l.len());
            *bytes = Bytes::Released(l.release(), ptr, len);
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> bool {
        self.release();
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "<shmring.Frame {} seq {} {}x{} {}{}>",
            self.ring,
            self.info.seq,
            self.info.video.width,
            self.info.video.height,
            self.format(),
            if self.zero_copy() { " in place" } else { "" }
        )
    }
}

/// The reader's ring, reopened when its writer is replaced.
struct ReaderState {
    reader: Box<RingReader>,
    zero_copy: bool,
}

impl ReaderState {
    fn adopt(mut reader: Box<RingReader>, zero_copy: bool) -> Self {
        if zero_copy {
            // No write access or a full reader table: frames are copies.
            let _ = reader.enable_zero_copy();
        }
        ReaderState { reader, zero_copy }
    }
}

/// Reads one ring. `latest()` returns the newest frame not returned yet (skipping what
/// a slow reader missed), `next()` every frame in order, `get(handle)` exactly one.
/// When its writer dies or is replaced, the reader takes the next writer's frames.
#[pyclass(frozen, module = "shmring._shmring")]
struct Reader {
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
                    Mode::Latest => st.reader.latest_zero_copy(slice, alloc),
                    Mode::Next => st.reader.next_zero_copy(slice, alloc),
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
                Attach::Reader(mut r) => {
                    // A new writer: its frames from the first one it still holds.
                    r.seek_after(0);
                    // The mutex is only ever waited for without the GIL.
                    py.detach(|| {
                        let mut st = lock(&self.state);
                        let zero_copy = st.zero_copy;
                        *st = ReaderState::adopt(r, zero_copy);
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
        let mut reader = RingReader::open_with(&loc, interrupter.clone()).map_err(to_py)?;
        // Start with the newest frame, as shmringsrc does.
        reader.seek_after(reader.head().saturating_sub(1));
        Ok(Reader {
            loc,
            interrupter,
            state: Mutex::new(ReaderState::adopt(Box::new(reader), zero_copy)),
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
                st.reader.by_handle(&h, |i| vec![0u8; i.len as usize])
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
                        st.reader.epoch() != h.epoch
                            && (st.reader.is_superseded()
                                || !matches!(
                                    st.reader.writer_status(),
                                    WriterStatus::Live | WriterStatus::Eos
                                ))
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
        let found = py.detach(|| lock(&self.state).reader.seq_at(captured_at, rule));
        match found.map_err(to_py)? {
            At::Frame(seq) => {
                let epoch = py.detach(|| lock(&self.state).reader.epoch());
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
            let r = &st.reader;
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
struct FrameIter {
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

/// What a frame written from Python is.
struct Shape {
    layout: VideoLayout,
    size: usize,
    duration_ns: Option<u64>,
}

/// A writer's ring while it is open: the writer, and the lender of its slots (which
/// maps the ring too, so it goes with the writer at `close`).
struct Open {
    writer: RingWriter,
    lender: Lender,
}

/// A `WriteFrame`'s memory, shared with its writer, which takes it away at `close`.
type MemoryCell = Mutex<Option<Py<FrameMemory>>>;

/// Writes one ring from numpy arrays. Caps are published, so `shmringsrc` reads it with
/// nothing typed. One writer per ring: a second is an error naming the first's pid.
/// `close()` (or the end of its `with` block) removes the ring and unmaps it at once;
/// every method of a closed writer then raises ShmringError.
#[pyclass(frozen, module = "shmring._shmring")]
struct Writer {
    name: String,
    shape: Shape,
    open: Mutex<Option<Open>>,
    /// The memory of each frame handed out and not freed yet: `close` lets go of it, so
    /// that only the arrays still alive keep the ring mapped.
    frames: Mutex<Vec<Weak<MemoryCell>>>,
}

impl Writer {
    fn meta(&self, pts: Option<u64>, captured_at: Option<u64>) -> FrameMeta {
        FrameMeta {
            pts,
            duration: self.shape.duration_ns,
            captured_at_ns: captured_at,
            video: self.shape.layout,
            ..Default::default()
        }
    }

    fn closed_error(&self) -> PyErr {
        ShmringError::new_err(format!("the writer of ring {} is closed", self.name))
    }

    fn is_closed(&self) -> bool {
        lock(&self.open).is_none()
    }

    /// Runs `f` on the ring's writer, under its lock: Rust only, never Python code.
    fn with_writer<T>(&self, f: impl FnOnce(&mut RingWriter) -> Result<T, Error>) -> PyResult<T> {
        let mut guard = lock(&self.open);
        let open = guard.as_mut().ok_or_else(|| self.closed_error())?;
        f(&mut open.writer).map_err(to_py)
    }
}

/// The fraction GStreamer's caps give `fps`: exact for whole and NTSC rates
/// (29.97 is 30000/1001), else in thousandths.
fn framerate(fps: f64) -> PyResult<(u64, u64)> {
    if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
        return Err(PyValueError::new_err(format!(
            "fps {fps}: expected more than 0, at most 1000"
        )));
    }
    let near = |x: f64| (x - x.round()).abs() < 1e-3;
    let (n, d) = if near(fps) {
        (fps.round() as u64, 1)
    } else if near(fps * 1.001) {
        ((fps * 1.001).round() as u64 * 1000, 1001)
    } else {
        ((fps * 1000.0).round() as u64, 1000)
    };
    if n == 0 {
        return Err(PyValueError::new_err(format!(
            "fps {fps}: too low, at least 0.001"
        )));
    }
    Ok((n, d))
}

/// A time in ns given to the writer: 0 to 2**63 - 1, what a GStreamer clock time holds
/// (the ring keeps 2**64 - 1 for "no pts", and shmringsrc drops a frame captured
/// beyond 2**63 - 1).
fn ns_arg(what: &str, t: Option<i128>) -> PyResult<Option<u64>> {
    match t {
        None => Ok(None),
        Some(t) => u64::try_from(t)
            .ok()
            .filter(|&t| t <= i64::MAX as u64)
            .map(Some)
            .ok_or_else(|| {
                PyValueError::new_err(format!("{what} {t}: expected ns, 0 to 2**63 - 1, or None"))
            }),
    }
}

/// A count given to the writer, within `range`.
fn count_arg(what: &str, n: i64, range: std::ops::RangeInclusive<u32>) -> PyResult<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{what} {n}: expected {} to {}",
                range.start(),
                range.end()
            ))
        })
}

#[pymethods]
impl Writer {
    /// Creates ring `ring` for `width` x `height` frames of `format` (a GStreamer
    /// format name: I420, NV12, YV12, NV21, GRAY8, GRAY16_LE, RGB, BGR, RGBx, BGRx,
    /// xRGB, xBGR, RGBA, BGRA, ARGB, ABGR) at `fps`. `slots=0` keeps half a second.
    #[new]
    #[pyo3(signature = (ring, width, height, format, fps, slots=0, dir=None, lease_slots=8, pool_slots=2))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ring: &str,
        width: i64,
        height: i64,
        format: &str,
        fps: f64,
        slots: i64,
        dir: Option<PathBuf>,
        lease_slots: i64,
        pool_slots: i64,
    ) -> PyResult<Self> {
        let loc = RingLocation::parse(ring, dir.as_deref()).map_err(to_py)?;
        let (number, kind) = format_by_name(format).ok_or_else(|| {
            PyValueError::new_err(format!(
                "format {format:?}: expected one of {}",
                FORMATS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if !(1..=16384).contains(&width) || !(1..=16384).contains(&height) {
            return Err(PyValueError::new_err(format!(
                "{width}x{height}: width and height must be 1 to 16384"
            )));
        }
        let (width, height) = (width as u32, height as u32);
        let (n, d) = framerate(fps)?;
        let slots = match slots {
            0 => None,
            s => Some(count_arg("slots", s, MIN_SLOTS..=MAX_SLOTS)?),
        };
        let lease_slots = count_arg("lease_slots", lease_slots, 0..=MAX_SPARES)?;
        let pool_slots = count_arg("pool_slots", pool_slots, 0..=MAX_SPARES)?;
        if lease_slots + pool_slots > MAX_SPARES {
            return Err(PyValueError::new_err(format!(
                "lease_slots {lease_slots} and pool_slots {pool_slots}: together at most {MAX_SPARES}"
            )));
        }
        let name = FORMATS
            .iter()
            .find(|f| f.1 == number)
            .map(|f| f.0)
            .unwrap_or(format);
        let (layout, size) = default_layout(number, kind, width as usize, height as usize)
            .ok_or_else(|| PyValueError::new_err(format!("{width}x{height} {name}: too large")))?;
        let slots = slots.unwrap_or_else(|| {
            // Half a second, as shmringsink keeps: 4 to 64 slots within 1 GiB.
            let by_time = (n * 500).div_ceil(d * 1000).clamp(4, 64);
            by_time.min((1u64 << 30) / size as u64).max(2) as u32
        });
        let caps = format!(
            "video/x-raw, format=(string){name}, width=(int){width}, height=(int){height}, \
             framerate=(fraction){n}/{d}, pixel-aspect-ratio=(fraction)1/1, \
             interlace-mode=(string)progressive"
        );
        let config = WriterConfig {
            slots,
            max_frame: size as u64,
            caps: Some(caps),
            spares: lease_slots,
            loans: pool_slots,
            ..Default::default()
        };
        // Without the GIL: making a ring reserves its memory, and a dead writer's ring
        // locked for a moment is looked at again for up to 150 ms.
        let writer = py
            .detach(|| RingWriter::create(&loc, &config))
            .map_err(|e| match e {
                Error::InvalidGeometry { .. } => PyValueError::new_err(e.to_string()),
                e => to_py(e),
            })?;
        Ok(Writer {
            name: loc.display_name().to_owned(),
            shape: Shape {
                layout,
                size,
                duration_ns: Some(1_000_000_000 * d / n),
            },
            open: Mutex::new(Some(Open {
                lender: writer.lender(),
                writer,
            })),
            frames: Mutex::new(vec![]),
        })
    }

    /// Bytes of one frame in GStreamer's default layout (what `write` takes).
    #[getter]
    fn frame_size(&self) -> usize {
        self.shape.size
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.is_closed()
    }

    /// Writes `array` (a numpy array of uint8, exactly `frame_size` bytes, any shape)
    /// as the next frame; returns its handle. The bytes are taken in the array's
    /// logical (C) order whatever its memory order, as `numpy.ascontiguousarray` would
    /// give them: a Fortran-ordered array, a transposed or strided view is copied
    /// first. `pts` in ns; `captured_at` in ns since the Unix epoch (default: now);
    /// both 0 to 2**63 - 1.
    #[pyo3(signature = (array, pts=None, captured_at=None))]
    fn write(
        &self,
        array: &Bound<'_, PyAny>,
        pts: Option<i128>,
        captured_at: Option<i128>,
    ) -> PyResult<String> {
        let meta = self.meta(ns_arg("pts", pts)?, ns_arg("captured_at", captured_at)?);
        let array = match array.cast::<PyArrayDyn<u8>>() {
            Ok(a) => a.clone(),
            Err(_) => {
                let what = match array.cast::<PyUntypedArray>() {
                    Ok(a) => format!("a numpy array of {}", a.dtype()),
                    Err(_) => format!("{}", array.get_type().name()?),
                };
                return Err(PyTypeError::new_err(format!(
                    "expected a numpy array of uint8, got {what} (a.view(numpy.uint8) gives the bytes of an array)"
                )));
            }
        };
        if array.len() != self.shape.size {
            return Err(PyValueError::new_err(format!(
                "the array has {} bytes ({:?}), a frame of this ring has {}",
                array.len(),
                array.shape(),
                self.shape.size
            )));
        }
        if self.is_closed() {
            return Err(self.closed_error());
        }
        // Only a C-contiguous array's memory is its bytes in order (a Fortran-ordered
        // one is contiguous too, column by column): copy any other in C order.
        let array = if array.is_c_contiguous() {
            array
        } else {
            array
                .call_method1("copy", ("C",))?
                .cast_into::<PyArrayDyn<u8>>()?
        };
        let array = array
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("the array cannot be read: {e}")))?;
        let bytes = array.as_slice().map_err(|_| {
            PyValueError::new_err("the array is not C-contiguous: pass numpy.ascontiguousarray(a)")
        })?;
        let name = self.name.clone();
        self.with_writer(|w| {
            let seq = w.write(&meta, bytes)?;
            Ok(Handle {
                ring: name,
                epoch: w.epoch(),
                seq,
            }
            .to_string())
        })
    }

    /// A frame to fill in place: `with writer.frame() as f: f.array[...] = ...`
    /// commits it at the end of the block and drops it if the block raises. The array
    /// is a slot of the ring itself when one can be lent, else a buffer of its own.
    /// Let go of every view of the array before the commit (use `f.array` in place, or
    /// `del` the names bound to it) and the slot is committed as it is, without a copy;
    /// if a view is still alive, the commit copies the frame instead, so that nothing
    /// written through that view afterwards reaches the ring.
    #[pyo3(signature = (pts=None, captured_at=None))]
    fn frame(
        slf: Py<Self>,
        py: Python<'_>,
        pts: Option<i128>,
        captured_at: Option<i128>,
    ) -> PyResult<WriteFrame> {
        let stamps = (ns_arg("pts", pts)?, ns_arg("captured_at", captured_at)?);
        let w = slf.get();
        let size = w.shape.size;
        let loan = {
            let open = lock(&w.open);
            open.as_ref()
                .ok_or_else(|| w.closed_error())?
                .lender
                .lend(size)
        };
        let memory = match loan {
            Some(l) => FrameMemory::lent(l),
            None => FrameMemory::own(vec![0; size]),
        };
        // Python may run here (a collection), and close the writer: looked at below.
        let memory = Py::new(py, memory)?;
        let cell = Arc::new(Mutex::new(Some(memory)));
        {
            let mut frames = lock(&w.frames);
            frames.retain(|f| f.strong_count() > 0);
            frames.push(Arc::downgrade(&cell));
        }
        if w.is_closed() {
            return Err(w.closed_error());
        }
        Ok(WriteFrame {
            writer: slf,
            memory: cell,
            state: Mutex::new(Filling::Open),
            stamps,
            handle: Mutex::new(None),
            views: Mutex::new(vec![]),
        })
    }

    /// Tells every reader that the stream ended (EOS).
    fn eos(&self) -> PyResult<()> {
        self.with_writer(|w| {
            w.set_state(WriterState::Eos);
            Ok(())
        })
    }

    /// Closes the ring: readers wait for a next writer (or end, after `eos`). The ring
    /// is removed and unmapped at once, but for the slots of frames whose arrays are
    /// still alive: each stays mapped until its last view is gone. Frames not committed
    /// yet can no longer be; closing again does nothing.
    fn close(&self) {
        let open = lock(&self.open).take();
        drop(open);
        let cells: Vec<Arc<MemoryCell>> = lock(&self.frames)
            .drain(..)
            .filter_map(|f| f.upgrade())
            .collect();
        // Taken out under each lock, let go of after it: freeing a slot takes locks.
        let memories: Vec<Py<FrameMemory>> = cells.iter().filter_map(|c| lock(c).take()).collect();
        drop(memories);
    }

    fn __enter__(slf: Py<Self>) -> PyResult<Py<Self>> {
        if slf.get().is_closed() {
            return Err(slf.get().closed_error());
        }
        Ok(slf)
    }

    fn __exit__(
        &self,
        _exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        let closed = if self.is_closed() { " closed" } else { "" };
        format!("<shmring.Writer {}{closed}>", self.name)
    }
}

/// The bytes of a `WriteFrame`: a slot of the ring lent to this process, or a buffer
/// of its own. It is the base of every array of the frame, so the arrays (and every
/// view made from them, which holds one) keep it alive, and its reference count tells
/// whether any is: the frame holds one reference, each array one more.
#[pyclass(frozen, module = "shmring._shmring")]
struct FrameMemory {
    /// The first byte, and how many there are.
    ptr: usize,
    len: usize,
    bytes: Mutex<Keep>,
}

enum Keep {
    Loan(Loan),
    Own(#[allow(dead_code)] Vec<u8>),
}

impl FrameMemory {
    fn lent(loan: Loan) -> Self {
        FrameMemory {
            ptr: loan.as_ptr() as usize,
            len: loan.len(),
            bytes: Mutex::new(Keep::Loan(loan)),
        }
    }

    fn own(mut bytes: Vec<u8>) -> Self {
        FrameMemory {
            // Taken from `as_mut_ptr`: numpy writes through it.
            ptr: bytes.as_mut_ptr() as usize,
            len: bytes.len(),
            bytes: Mutex::new(Keep::Own(bytes)),
        }
    }

    fn is_lent(&self) -> bool {
        matches!(*lock(&self.bytes), Keep::Loan(_))
    }

    /// A copy of the first `n` bytes (at most all).
    fn to_vec(&self, n: usize) -> Vec<u8> {
        let n = n.min(self.len);
        let mut v = Vec::with_capacity(n);
        // SAFETY: `ptr..ptr+len` stays valid while self lives (the loan keeps the slot
        // mapped, the vector is never reallocated). Copied through raw pointers, never a
        // reference: a thread without the GIL may be writing the bytes meanwhile.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr as *const u8, v.as_mut_ptr(), n);
            v.set_len(n);
        }
        v
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Filling {
    Open,
    /// Committed: in place (the ring's slot is the frame's memory) or as a copy.
    Committed {
        in_place: bool,
    },
    Dropped,
}

// Why a copy rather than a refusal. numpy views made from an array (`a[:]`,
// `a.reshape(-1)`, `memoryview(a)`) do not follow a flag set on it later, so the commit
// looks at what keeps the frame's memory alive: the memory is the base of every array
// the frame hands out, and each view holds one of those arrays, so its reference count
// sees every view, as a buffer's export count would (PyO3 only has `__getbuffer__` with
// Python 3.11's limited API, and this wheel is abi3 for 3.9). Refusing the commit while
// a view is alive (`BufferError`, as `mmap.close()` does) was the other way: it would
// fail the common `px = f.array` in a `with` block, whose name outlives the block
// (examples/python/write_frames.py), and no count tells a kept array from a kept
// `memoryview` of it, which stays writable whatever becomes of the array.

/// `Writer.frame()`: a frame being filled. Its arrays are views of its memory (a ring
/// slot lent to this process, or a buffer of its own), which they keep alive: they
/// never point at memory given back, even after the writer is closed.
///
/// A committed frame never changes. When no array of the frame, and no view of one, is
/// alive at the commit, the slot is committed in place, without a copy, and arrays
/// taken afterwards are read-only. When one is, a copy of the bytes is committed
/// instead: what the views write afterwards goes to memory no reader sees, and the
/// arrays the frame handed out become read-only, so that writing them raises.
#[pyclass(frozen, module = "shmring._shmring")]
struct WriteFrame {
    writer: Py<Writer>,
    /// None once the frame was dropped or its writer closed.
    memory: Arc<MemoryCell>,
    state: Mutex<Filling>,
    stamps: (Option<u64>, Option<u64>),
    handle: Mutex<Option<String>>,
    /// The arrays handed out while open, made read-only when the filling ends.
    views: Mutex<Vec<Py<PyWeakrefReference>>>,
}

impl WriteFrame {
    /// Ends the filling: the arrays handed out become read-only.
    fn finish(&self, py: Python<'_>, how: Filling) {
        *lock(&self.state) = how;
        let views = std::mem::take(&mut *lock(&self.views));
        for v in views {
            if let Some(array) = v.bind(py).upgrade() {
                if let Ok(array) = array.cast::<PyArrayDyn<u8>>() {
                    read_only(array);
                }
            }
        }
    }

    /// The frame's memory, or why there is none.
    fn memory(&self, py: Python<'_>) -> PyResult<Py<FrameMemory>> {
        if *lock(&self.state) == Filling::Dropped {
            return Err(ShmringError::new_err(
                "the frame was dropped (its with block raised)",
            ));
        }
        lock(&self.memory)
            .as_ref()
            .map(|m| m.clone_ref(py))
            .ok_or_else(|| self.writer.get().closed_error())
    }
}

#[pymethods]
impl WriteFrame {
    /// The frame as a writable numpy array of uint8, shaped by its format (read-only
    /// once the frame is committed). Raises ShmringError once its writer is closed.
    #[getter]
    fn array<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyArrayDyn<u8>>> {
        let py = slf.py();
        let this = slf.get();
        let memory = this.memory(py)?;
        let open = *lock(&this.state) == Filling::Open;
        let (ptr, len) = (memory.get().ptr as *const u8, memory.get().len);
        let shape = &this.writer.get().shape;
        let len = len.min(shape.size);
        let (dims, strides, offset) = array_layout(&shape.layout, len);
        // SAFETY: the memory's bytes stay where they are until it is freed (a lent slot
        // stays mapped, a buffer is never reallocated), and the array keeps it alive
        // through its base. Writes through it go to a slot lent to this process alone,
        // or to a buffer of its own; a committed slot is only handed out read-only.
        let array = unsafe {
            view(
                memory.into_bound(py).into_any(),
                ptr,
                &dims,
                &strides,
                offset,
            )
        };
        if open {
            let weak = PyWeakrefReference::new(array.as_any())?.unbind();
            lock(&this.views).push(weak);
        } else {
            read_only(&array);
        }
        Ok(array)
    }

    /// The frame's handle once committed.
    #[getter]
    fn handle(&self) -> Option<String> {
        lock(&self.handle).clone()
    }

    /// Whether the frame is the ring's own slot: while open, whether one was lent
    /// (else the frame is a buffer of its own, copied in at the commit); once
    /// committed, whether it was committed in place, without a copy.
    #[getter]
    fn zero_copy(&self) -> bool {
        match *lock(&self.state) {
            Filling::Committed { in_place } => in_place,
            Filling::Dropped => false,
            Filling::Open => lock(&self.memory)
                .as_ref()
                .is_some_and(|m| m.get().is_lent()),
        }
    }

    /// Commits the frame; returns its handle. Its arrays become read-only, and nothing
    /// written through a view of them kept past the commit reaches the ring (see the
    /// class). Raises ShmringError when the frame was committed or dropped already, or
    /// its writer is closed; a frame whose commit failed stays open.
    fn commit(&self, py: Python<'_>) -> PyResult<String> {
        match *lock(&self.state) {
            Filling::Open => {}
            Filling::Committed { .. } => {
                return Err(ShmringError::new_err("the frame was committed already"))
            }
            Filling::Dropped => return Err(ShmringError::new_err("the frame was dropped")),
        }
        let w = self.writer.get();
        let memory = self.memory(py)?;
        // The frame's own reference, `memory` and one for each array alive: any array,
        // or view of one, keeps one alive. Exact with the GIL, held from here to the
        // commit: no Python code runs in between to make a view.
        // SAFETY: `memory` is a live object.
        let viewed = unsafe { pyo3::ffi::Py_REFCNT(memory.as_ptr()) } > 2;
        let meta = w.meta(self.stamps.0, self.stamps.1);
        let size = w.shape.size;
        let name = w.name.clone();
        let m = memory.get();
        let (handle, in_place, copy) = w.with_writer(|rw| {
            let (seq, in_place, copy) = match &*lock(&m.bytes) {
                Keep::Loan(l) if !viewed => match rw.commit_loan(l, size, &meta)? {
                    Some(seq) => (seq, true, None),
                    // Of a ring replaced since: copied in.
                    None => (rw.write(&meta, &m.to_vec(size))?, false, None),
                },
                Keep::Own(_) if !viewed => {
                    // SAFETY: `ptr..ptr+len` is the buffer, which no array is left to
                    // write, and this holds the GIL: nothing writes it meanwhile.
                    let bytes =
                        unsafe { std::slice::from_raw_parts(m.ptr as *const u8, size.min(m.len)) };
                    (rw.write(&meta, bytes)?, false, None)
                }
                _ => {
                    let bytes = m.to_vec(size);
                    (rw.write(&meta, &bytes)?, false, Some(bytes))
                }
            };
            let handle = Handle {
                ring: name,
                epoch: rw.epoch(),
                seq,
            };
            Ok((handle.to_string(), in_place, copy))
        })?;
        *lock(&self.handle) = Some(handle.clone());
        self.finish(py, Filling::Committed { in_place });
        // The frame's arrays from now on show what was committed, not the memory that
        // the views still alive may write. (Without memory for it, they show that.)
        if let Some(copy) = copy.and_then(|c| Py::new(py, FrameMemory::own(c)).ok()) {
            let old = lock(&self.memory)
                .as_mut()
                .map(|m| std::mem::replace(m, copy));
            drop(old); // None: closed meanwhile, and the copy goes
        }
        Ok(handle)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if exc_type.is_none() {
            self.commit(py)?;
        } else if *lock(&self.state) == Filling::Open {
            // Never committed: the slot goes back once no array of it is left.
            self.finish(py, Filling::Dropped);
            let memory = lock(&self.memory).take();
            drop(memory);
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = match *lock(&self.state) {
            Filling::Open => "open",
            Filling::Committed { .. } => "committed",
            Filling::Dropped => "dropped",
        };
        format!("<shmring.WriteFrame {} {state}>", self.writer.get().name)
    }
}

#[pymodule]
fn _shmring(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Reader>()?;
    m.add_class::<Frame>()?;
    m.add_class::<FrameIter>()?;
    m.add_class::<Writer>()?;
    m.add_class::<WriteFrame>()?;
    m.add("ShmringError", py.get_type::<ShmringError>())?;
    m.add("RingNotFound", py.get_type::<RingNotFound>())?;
    m.add("WriterGone", py.get_type::<WriterGone>())?;
    m.add("EndOfStream", py.get_type::<EndOfStream>())?;
    m.add("CorruptRing", py.get_type::<CorruptRing>())?;
    m.add("HandleGone", py.get_type::<HandleGone>())?;
    m.add("NotYetWritten", py.get_type::<NotYetWritten>())?;
    m.add("BadHandle", py.get_type::<BadHandle>())?;
    m.add("BadName", py.get_type::<BadName>())?;
    Ok(())
}
