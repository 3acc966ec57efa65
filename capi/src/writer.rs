//! Writing a ring from C: `shmring_writer` (raw video of one geometry, its caps
//! published so that `shmringsrc` reads it with nothing typed) and `shmring_write_frame`,
//! a slot of the ring lent to fill in place.
//!
//! A writer is used by one thread at a time: a call made while another thread's call
//! on the same writer runs returns `-EBUSY` at once rather than waiting (nothing here
//! waits for a lock held across a frame's copy). Closing it removes the ring; a call
//! running in another thread at that moment finishes first.

use std::ffi::{c_char, c_int};
use std::sync::{Arc, Mutex, TryLockError, Weak};

use shmring_common::spec::{self, VideoArgs, VideoSpec};
use shmring_common::{Handle, Lender, Loan, RingLocation, RingWriter, WriterState};

use crate::objects::{self, Kind, Object};
use crate::{call, copy_out, dir_arg, fail, text, OrZero, Res, SHMRING_NO_TIME, SHMRING_OK};

/// A writer of one ring (opaque).
#[allow(non_camel_case_types)]
pub struct shmring_writer {
    _opaque: [u8; 0],
}

/// A frame being written in place (opaque).
#[allow(non_camel_case_types)]
pub struct shmring_write_frame {
    _opaque: [u8; 0],
}

/// Slots readers may lease in place, and slots lent to fill in place: as Python's and
/// Node's writers.
const LEASE_SLOTS: i64 = 8;
const POOL_SLOTS: i64 = 2;

pub(crate) struct Writer {
    name: String,
    spec: VideoSpec,
    ring: Mutex<RingWriter>,
    lender: Lender,
}

/// Bytes of a frame being written: a slot of the ring, or (when none can be lent) a
/// buffer of its own, copied in at the commit.
enum Memory {
    Lent(Loan),
    Own(Vec<u8>),
}

pub(crate) struct WriteFrame {
    /// Weak: an open frame does not keep a closed writer's ring.
    writer: Weak<Writer>,
    memory: Mutex<Memory>,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: `ptr` is into `memory` (a lent slot, kept mapped by the loan, or the frame's
// own buffer, never reallocated), which moves with the frame; nothing about it is tied
// to a thread. Writing through it is the C program's, which owns the frame.
unsafe impl Send for WriteFrame {}
// SAFETY: as for Send; the frame's state is behind `memory`'s mutex.
unsafe impl Sync for WriteFrame {}

fn writer(w: *const shmring_writer) -> Res<Arc<Writer>> {
    match objects::get(w) {
        Some(Object::Writer(w)) => Ok(w),
        _ => Err(objects::bad("writer")),
    }
}

impl Writer {
    /// Runs `f` on the ring's writer unless another thread is using it.
    fn with_ring<T>(&self, f: impl FnOnce(&mut RingWriter) -> shmring_common::Result<T>) -> Res<T> {
        let mut ring = match self.ring.try_lock() {
            Ok(g) => g,
            // A panic in a call of another thread was caught; the ring is whole (each
            // update is complete before anything can fail).
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(self.busy()),
        };
        Ok(f(&mut ring)?)
    }

    /// The checks of a commit, made before anything is written or a frame ends: the
    /// frame's stamps, and room in the caller's buffer for the frame's handle.
    fn prepare(
        &self,
        pts: u64,
        captured_at_ns: u64,
        handle: *mut c_char,
        handle_size: usize,
    ) -> Res<shmring_common::FrameMeta> {
        let time = |what: &str, t: u64| match t {
            SHMRING_NO_TIME => Ok(None),
            t => spec::time_ns(what, i128::from(t))
                .map(Some)
                .map_err(|e| fail(libc::EINVAL, format!("{e}, or SHMRING_NO_TIME"))),
        };
        // The longest handle of this ring: its name, 16 hex digits of epoch and a seq
        // of up to 20 digits, two ':' and the NUL. A cut handle would be refused by
        // every reader, so a buffer that could not hold one is refused first.
        let longest = self.name.len() + 1 + 16 + 1 + 20 + 1;
        if !handle.is_null() && handle_size < longest {
            return Err(fail(
                libc::ERANGE,
                format!(
                    "handle_size {handle_size} cannot hold a handle of ring {} ({longest} \
                     bytes; SHMRING_HANDLE_SIZE holds any): nothing was written",
                    self.name
                ),
            ));
        }
        Ok(self
            .spec
            .meta(time("pts", pts)?, time("captured_at_ns", captured_at_ns)?))
    }

    /// Commits what `write` gives (a copy or a lent slot) with `meta` (from `prepare`),
    /// and puts its handle in the caller's buffer. `Ok(None)` when another thread was
    /// using the writer, so nothing was written.
    fn commit(
        &self,
        meta: &shmring_common::FrameMeta,
        handle: *mut c_char,
        handle_size: usize,
        write: impl FnOnce(&mut RingWriter, &shmring_common::FrameMeta) -> shmring_common::Result<u64>,
    ) -> Res<Option<c_int>> {
        let text = match self.with_ring(|ring| {
            let seq = write(ring, meta)?;
            Ok(Handle {
                ring: self.name.clone(),
                epoch: ring.epoch(),
                seq,
            }
            .to_string())
        }) {
            Ok(text) => text,
            Err(busy) if busy.code == -libc::EBUSY => return Ok(None),
            Err(e) => return Err(e),
        };
        // SAFETY: `handle` is NULL or valid for `handle_size` bytes by the contract of
        // the C functions that call this, and `prepare` made sure the handle fits.
        unsafe { copy_out(&text, handle, handle_size) }?;
        Ok(Some(SHMRING_OK))
    }

    fn busy(&self) -> crate::Fail {
        fail(
            libc::EBUSY,
            format!(
                "the writer of ring {} is in use by another thread",
                self.name
            ),
        )
    }
}

/// Creates ring `ring` in `dir` (NULL: the default) for `width` x `height` frames of
/// `format` (a GStreamer format name: I420, NV12, YV12, NV21, GRAY8, GRAY16_LE, RGB,
/// BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR) at `fps` frames a second, with
/// `slots` slots (0: half a second's worth). NULL on error: a bad argument
/// (`shmring_last_error` names it), or `-EBUSY` when another live writer has the ring.
/// A dead writer's ring of that name is replaced.
///
/// # Safety
/// `ring`, `dir` and `format` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn shmring_writer_open(
    ring: *const c_char,
    dir: *const c_char,
    format: *const c_char,
    width: i64,
    height: i64,
    fps: f64,
    slots: i64,
) -> *mut shmring_writer {
    call(|| {
        // SAFETY: as this function's contract.
        let (ring, dir, format) =
            unsafe { (text("ring", ring)?, dir_arg(dir)?, text("format", format)?) };
        let loc = RingLocation::parse(ring, dir.as_deref())?;
        let spec = VideoSpec::new(&VideoArgs {
            width,
            height,
            format,
            fps,
            slots,
            lease_slots: LEASE_SLOTS,
            pool_slots: POOL_SLOTS,
        })
        .map_err(|e| fail(libc::EINVAL, e))?;
        let ring = RingWriter::create(&loc, &spec.config)?;
        objects::insert(Object::Writer(Arc::new(Writer {
            name: loc.display_name().to_owned(),
            spec,
            lender: ring.lender(),
            ring: Mutex::new(ring),
        })))
    })
}

/// Bytes of one frame in GStreamer's default layout for the ring's format and size:
/// what `shmring_writer_write` takes (0 for a writer that is not one).
#[no_mangle]
pub extern "C" fn shmring_writer_frame_size(w: *const shmring_writer) -> usize {
    call(|| Ok(writer(w)?.spec.size))
}

/// Copies `size` bytes at `data` (exactly `shmring_writer_frame_size`) into the ring as
/// its next frame. `pts` in ns or `SHMRING_NO_TIME`; `captured_at_ns` in ns since the
/// Unix epoch, or `SHMRING_NO_TIME` for now. The frame's handle goes to `handle` (NULL,
/// or `handle_size` bytes: `SHMRING_HANDLE_SIZE` holds any). 0 or a negative errno.
///
/// # Safety
/// `data` is NULL or valid for reading `size` bytes; `handle` is NULL or valid for
/// writing `handle_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn shmring_writer_write(
    w: *mut shmring_writer,
    data: *const u8,
    size: usize,
    pts: u64,
    captured_at_ns: u64,
    handle: *mut c_char,
    handle_size: usize,
) -> c_int {
    call(|| {
        let writer = writer(w)?;
        if data.is_null() {
            return Err(fail(libc::EINVAL, "data: NULL"));
        }
        if size != writer.spec.size {
            return Err(fail(
                libc::EINVAL,
                format!(
                    "size {size}: a frame of ring {} has {} bytes",
                    writer.name, writer.spec.size
                ),
            ));
        }
        // SAFETY: not NULL, and valid for `size` bytes by this function's contract.
        let bytes = unsafe { std::slice::from_raw_parts(data, size) };
        let meta = writer.prepare(pts, captured_at_ns, handle, handle_size)?;
        writer
            .commit(&meta, handle, handle_size, |ring, meta| {
                ring.write(meta, bytes)
            })?
            .ok_or_else(|| writer.busy())
    })
}

/// A frame to fill in place: a slot of the ring when one can be lent, else a buffer of
/// its own (copied in at the commit). Fill `shmring_write_frame_data`, then commit or
/// abort it. NULL on error.
#[no_mangle]
pub extern "C" fn shmring_writer_begin(w: *mut shmring_writer) -> *mut shmring_write_frame {
    call(|| {
        let writer = writer(w)?;
        let size = writer.spec.size;
        let mut memory = match writer.lender.lend(size) {
            Some(loan) => Memory::Lent(loan),
            None => Memory::Own(vec![0; size]),
        };
        let ptr = match &mut memory {
            Memory::Lent(l) => l.as_ptr().cast_mut(),
            Memory::Own(v) => v.as_mut_ptr(),
        };
        objects::insert(Object::WriteFrame(Arc::new(WriteFrame {
            writer: Arc::downgrade(&writer),
            memory: Mutex::new(memory),
            ptr,
            len: size,
        })))
    })
}

fn write_frame(f: *const shmring_write_frame) -> Res<Arc<WriteFrame>> {
    match objects::get(f) {
        Some(Object::WriteFrame(f)) => Ok(f),
        _ => Err(objects::bad("frame being written")),
    }
}

/// The bytes to fill (`shmring_write_frame_size` of them), in GStreamer's default
/// layout; NULL for a frame that is not one. Not to be written after the commit.
#[no_mangle]
pub extern "C" fn shmring_write_frame_data(f: *mut shmring_write_frame) -> *mut u8 {
    call(|| Ok(write_frame(f)?.ptr))
}

/// Bytes of the frame being written.
#[no_mangle]
pub extern "C" fn shmring_write_frame_size(f: *const shmring_write_frame) -> usize {
    call(|| Ok(write_frame(f)?.len))
}

/// 1 when the frame is a slot of the ring (committed without a copy), 0 when it is a
/// buffer of its own, or not a frame being written.
#[no_mangle]
pub extern "C" fn shmring_write_frame_is_in_place(f: *const shmring_write_frame) -> c_int {
    call(|| {
        let frame = write_frame(f)?;
        let lent = matches!(*crate::lock(&frame.memory), Memory::Lent(_));
        Ok(OrZero(c_int::from(lent)))
    })
    .0
}

/// Commits the frame with its stamps (as `shmring_writer_write`) and ends it. When the
/// stamps are invalid (`-EINVAL`), `handle_size` is too small (`-ERANGE`) or another
/// thread is using the writer (`-EBUSY`), nothing is written and the frame stays, to
/// be committed again or aborted; on any other error it has ended. `-EBADF` when its
/// writer was closed meanwhile (the frame has ended).
///
/// # Safety
/// `handle` is NULL or valid for writing `handle_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn shmring_write_frame_commit(
    f: *mut shmring_write_frame,
    pts: u64,
    captured_at_ns: u64,
    handle: *mut c_char,
    handle_size: usize,
) -> c_int {
    call(|| {
        let Some(Object::WriteFrame(frame)) = objects::get(f) else {
            return Err(objects::bad("frame being written"));
        };
        let Some(writer) = frame.writer.upgrade() else {
            drop(objects::remove(f, Kind::WriteFrame)); // it can never be committed
            return Err(fail(
                libc::EBADF,
                "the frame's writer was closed before its commit",
            ));
        };
        // Bad stamps or too small a buffer: the frame stays, to be committed again.
        let meta = writer.prepare(pts, captured_at_ns, handle, handle_size)?;
        // Ends here: one thread commits it; another thread's commit gets EBADF.
        let Some(Object::WriteFrame(frame)) = objects::remove(f, Kind::WriteFrame) else {
            return Err(objects::bad("frame being written"));
        };
        let memory = std::mem::replace(&mut *crate::lock(&frame.memory), Memory::Own(vec![]));
        let done = writer.commit(&meta, handle, handle_size, |ring, meta| match &memory {
            Memory::Lent(loan) => match ring.commit_loan(loan, frame.len, meta)? {
                Some(seq) => Ok(seq),
                // Of a ring made anew since: copied in.
                None => ring.write(meta, &loan.to_vec()),
            },
            Memory::Own(bytes) => ring.write(meta, bytes),
        })?;
        done.ok_or_else(|| {
            // Another thread was using the writer: nothing was written, and the frame
            // goes back under its token, whole.
            *crate::lock(&frame.memory) = memory;
            objects::put_back(f, Object::WriteFrame(frame));
            writer.busy()
        })
    })
}

/// Drops the frame without committing it; its slot goes back to the writer. Aborting
/// NULL or an ended frame does nothing.
#[no_mangle]
pub extern "C" fn shmring_write_frame_abort(f: *mut shmring_write_frame) {
    call(|| {
        let removed = objects::remove(f, Kind::WriteFrame);
        drop(removed); // its loan goes back
        Ok(SHMRING_OK)
    });
}

/// Tells every reader that the stream ended: once they have read every frame, reads
/// return `-ENODATA`.
#[no_mangle]
pub extern "C" fn shmring_writer_eos(w: *mut shmring_writer) -> c_int {
    call(|| {
        writer(w)?.with_ring(|ring| {
            ring.set_state(WriterState::Eos);
            Ok(())
        })?;
        Ok(SHMRING_OK)
    })
}

/// Closes the ring: its file is removed, readers wait for a next writer (or end, after
/// `shmring_writer_eos`). Frames begun and not committed can no longer be. Closing
/// NULL or a closed writer does nothing.
#[no_mangle]
pub extern "C" fn shmring_writer_close(w: *mut shmring_writer) {
    call(|| {
        let removed = objects::remove(w, Kind::Writer);
        drop(removed); // the ring closes when a call running in another thread ends
        Ok(SHMRING_OK)
    });
}
