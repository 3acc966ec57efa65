//! Frames read from a ring, and the numpy arrays of a frame's bytes, shaped by its format.

use std::sync::Mutex;

use numpy::ndarray::{ArrayView, IxDyn, ShapeBuilder};
use numpy::{PyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use shmring_common::formats::{self, Format, Plane};
use shmring_common::{FrameInfo, Handle, LeasedPayload, Payload, RingHold, VideoLayout};

use crate::{lock, CorruptRing};

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

/// Whether `f` is a 4:2:0 format of bytes: full-size luma, then chroma halved both ways
/// (I420, YV12, NV12, NV21).
fn is_420(f: &Format) -> bool {
    f.depth == 8
        && f.n_planes() > 1
        && f.planes[0].x_sub == 0
        && f.planes[0].y_sub == 0
        && f.planes[1..].iter().all(|p| p.x_sub == 1 && p.y_sub == 1)
}

/// The shape, byte strides and byte offset a frame's `array` has: `(H, W)` for GRAY8,
/// `(H, W, C)` for packed RGB and the like, `(H * 3 / 2, W)` for the 4:2:0 formats laid
/// out tightly (what OpenCV's `COLOR_YUV2BGR_I420` and friends take), else 1-D.
pub(crate) fn array_layout(v: &VideoLayout, len: usize) -> (Vec<usize>, Vec<usize>, usize) {
    let one_d = (vec![len], vec![1], 0);
    // GRAY16_LE, of two-byte samples, is 1-D too.
    let Some(f) = formats::by_number(v.format).filter(|f| f.depth == 8) else {
        return one_d;
    };
    let (w, h) = (v.width as usize, v.height as usize);
    let stride = |p: usize| usize::try_from(v.strides[p]).unwrap_or(0);
    let offset = |p: usize| v.offsets[p] as usize;
    let (shape, strides, at) = match *f.planes {
        [Plane {
            pixel_stride: 1,
            x_sub: 0,
            y_sub: 0,
        }] => (vec![h, w], vec![stride(0), 1], offset(0)),
        [Plane {
            pixel_stride,
            x_sub: 0,
            y_sub: 0,
        }] => {
            let c = pixel_stride as usize;
            (vec![h, w, c], vec![stride(0), c, 1], offset(0))
        }
        _ if is_420(f) => {
            let Some((default, _)) = f.default_layout(v.width, v.height) else {
                return one_d;
            };
            // Tight: the default layout pads no row (and no plane: the height is even).
            let tight = h % 2 == 0
                && (0..f.n_planes()).all(|p| {
                    u64::try_from(default.strides[p]).ok()
                        == Some(f.plane_extent(p, v.width, v.height).1)
                })
                && default.offsets == v.offsets
                && default.strides == v.strides;
            if !tight {
                return one_d;
            }
            (vec![h * 3 / 2, w], vec![w, 1], 0)
        }
        _ => return one_d,
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
pub(crate) unsafe fn view<'py>(
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
pub(crate) fn read_only(array: &Bound<'_, PyArrayDyn<u8>>) {
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
pub(crate) struct Frame {
    info: FrameInfo,
    ring: String,
    missed: u64,
    bytes: Mutex<Bytes>,
}

impl Frame {
    pub(crate) fn new(ring: &str, info: FrameInfo, data: Payload<Vec<u8>>, missed: u64) -> Self {
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
        formats::by_number(self.info.video.format)
            .map(|f| f.name.to_owned())
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
        let Some(f) = formats::by_number(v.format) else {
            return Err(PyValueError::new_err(format!(
                "planes of format {} are not known here; use array",
                v.format
            )));
        };
        let mut out = vec![];
        for p in 0..f.n_planes() {
            let (rows, row) = f.plane_extent(p, v.width, v.height);
            let (rows, row) = (rows as usize, row as usize);
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
