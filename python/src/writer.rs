//! `Writer`: a ring written from numpy arrays, copied in or filled in place (`WriteFrame`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyWeakrefMethods, PyWeakrefReference};

use shmring_common::spec::{self, VideoArgs, VideoSpec};
use shmring_common::{
    Error, FrameMeta, Handle, Lender, Loan, RingLocation, RingWriter, WriterState,
};

use crate::frame::{array_layout, read_only, view};
use crate::{lock, to_py, ShmringError};

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
pub(crate) struct Writer {
    name: String,
    shape: VideoSpec,
    open: Mutex<Option<Open>>,
    /// The memory of each frame handed out and not freed yet: `close` lets go of it, so
    /// that only the arrays still alive keep the ring mapped.
    frames: Mutex<Vec<Weak<MemoryCell>>>,
}

impl Writer {
    fn meta(&self, pts: Option<u64>, captured_at: Option<u64>) -> FrameMeta {
        self.shape.meta(pts, captured_at)
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

/// A time in ns given to the writer (`spec::time_ns`), or None.
///
/// Any integer Python can index is taken: an int, or a numpy integer of any width and
/// numpy version. It is made a Python int first (`operator.index`), because PyO3 reads
/// a 128-bit integer under the stable ABI with shifts, which numpy 1.x refuses for a
/// `uint64`.
fn ns_arg(what: &str, t: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(t) = t else { return Ok(None) };
    let py = t.py();
    let int = PyModule::import(py, "operator")?
        .getattr("index")?
        .call1((t,))
        .map_err(|_| {
            let kind = t
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into());
            PyTypeError::new_err(format!(
                "{what}: expected an integer ns, 0 to 2**63 - 1, or None; got {kind}"
            ))
        })?;
    let t: i128 = int.extract()?;
    spec::time_ns(what, t)
        .map(Some)
        .map_err(|e| PyValueError::new_err(format!("{e}, or None")))
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
        let spec = VideoSpec::new(&VideoArgs {
            width,
            height,
            format,
            fps,
            slots,
            lease_slots,
            pool_slots,
        })
        .map_err(PyValueError::new_err)?;
        // Without the GIL: making a ring reserves its memory, and a dead writer's ring
        // locked for a moment is looked at again for up to 150 ms.
        let writer = py
            .detach(|| RingWriter::create(&loc, &spec.config))
            .map_err(|e| match e {
                Error::InvalidGeometry { .. } => PyValueError::new_err(e.to_string()),
                e => to_py(e),
            })?;
        Ok(Writer {
            name: loc.display_name().to_owned(),
            shape: spec,
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
        pts: Option<Bound<'_, PyAny>>,
        captured_at: Option<Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let meta = self.meta(
            ns_arg("pts", pts.as_ref())?,
            ns_arg("captured_at", captured_at.as_ref())?,
        );
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
        pts: Option<Bound<'_, PyAny>>,
        captured_at: Option<Bound<'_, PyAny>>,
    ) -> PyResult<WriteFrame> {
        let stamps = (
            ns_arg("pts", pts.as_ref())?,
            ns_arg("captured_at", captured_at.as_ref())?,
        );
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
pub(crate) struct WriteFrame {
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
