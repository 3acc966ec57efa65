//! Reading a ring from C: `shmring_reader` (a `Session`, which follows the ring across
//! writers) and the `shmring_frame`s it returns.
//!
//! A frame read with `latest` or `next` is leased in place when the ring lets it: its
//! data pointer is into the ring, and the writer does not reuse the slot until
//! `shmring_frame_release`. Else, and for `get` and `at`, it is a copy of its own. A
//! frame stays valid after its reader is closed, until it is released.

use std::ffi::{c_char, c_int, CString};
use std::sync::{Arc, LazyLock};

use shmring_common::formats::FORMATS;
use shmring_common::layout::MAX_PLANES;
use shmring_common::session::{Got, Read, ReadMode, Session};
use shmring_common::{AtRule, FrameInfo, Handle, Payload, RingLocation, WriterStatus};

use crate::objects::{self, Kind, Object};
use crate::{call, copy_out, deadline, dir_arg, fail, text, OrZero, Res};
use crate::{SHMRING_GONE, SHMRING_NOT_YET, SHMRING_OK, SHMRING_TIMEOUT};

/// A reader of one ring (opaque).
#[allow(non_camel_case_types)]
pub struct shmring_reader {
    _opaque: [u8; 0],
}

/// A frame read from a ring (opaque).
#[allow(non_camel_case_types)]
pub struct shmring_frame {
    _opaque: [u8; 0],
}

/// `shmring_reader_open_with` flag: copy every frame, never lease one in place.
pub const SHMRING_READ_COPY: u32 = 1;

/// `shmring_reader_at` rules: the frame captured closest to the time, the last one at
/// or before it, or the first one at or after it.
pub const SHMRING_AT_NEAREST: c_int = 0;
pub const SHMRING_AT_OR_BEFORE: c_int = 1;
pub const SHMRING_AT_OR_AFTER: c_int = 2;

/// `shmring_ring_info.writer_status`.
pub const SHMRING_WRITER_LIVE: c_int = 0;
pub const SHMRING_WRITER_EOS: c_int = 1;
pub const SHMRING_WRITER_CLOSED: c_int = 2;
pub const SHMRING_WRITER_REPLACED: c_int = 3;
pub const SHMRING_WRITER_DEAD: c_int = 4;

/// What a ring says of itself (`shmring_reader_info`). Numbers the ring's caps do not
/// give are 0, and `format` is then "".
#[repr(C)]
pub struct shmring_ring_info {
    pub width: u32,
    pub height: u32,
    /// Frames per second, 0 when unknown.
    pub fps: f64,
    /// GStreamer's name of the pixel format (`I420`, `BGRx`, ...), NUL-terminated.
    pub format: [c_char; 32],
    pub slots: u32,
    pub writer_pid: u32,
    /// `SHMRING_WRITER_*`.
    pub writer_status: c_int,
    /// The writer's epoch: a new one each time the ring is made anew.
    pub epoch: u64,
}

pub(crate) struct Reader {
    session: Session,
}

/// Where a frame's bytes are.
enum Bytes {
    /// Leased in the ring, or copied.
    Read(Payload<Vec<u8>>),
    Copied(Vec<u8>),
}

pub(crate) struct Frame {
    ring: String,
    info: FrameInfo,
    missed: u64,
    bytes: Bytes,
}

impl Frame {
    fn data(&self) -> (*const u8, usize) {
        match &self.bytes {
            Bytes::Read(Payload::Leased(l)) => (l.as_ptr(), l.len()),
            Bytes::Read(Payload::Copied(v)) | Bytes::Copied(v) => (v.as_ptr(), v.len()),
        }
    }
}

fn reader(r: *const shmring_reader) -> Res<Arc<Reader>> {
    match objects::get(r) {
        Some(Object::Reader(r)) => Ok(r),
        _ => Err(objects::bad("reader")),
    }
}

fn frame(f: *const shmring_frame) -> Res<Arc<Frame>> {
    match objects::get(f) {
        Some(Object::Frame(f)) => Ok(f),
        _ => Err(objects::bad("frame")),
    }
}

/// Clears `*out`, or fails when `out` is NULL.
///
/// # Safety
/// `out` is NULL or points to a `shmring_frame *` to set.
unsafe fn out_arg(out: *mut *mut shmring_frame) -> Res<()> {
    if out.is_null() {
        return Err(fail(libc::EINVAL, "out: NULL"));
    }
    // SAFETY: not NULL, and points to a `shmring_frame *` by this function's contract.
    unsafe { *out = std::ptr::null_mut() };
    Ok(())
}

/// Puts `frame` in the table and its token in `*out`.
///
/// # Safety
/// `out` was passed to `out_arg` first, which succeeded.
unsafe fn hand_out(out: *mut *mut shmring_frame, frame: Frame) -> Res<c_int> {
    let token = objects::insert(Object::Frame(Arc::new(frame)))?;
    // SAFETY: not NULL and a `shmring_frame *` to set (out_arg checked it).
    unsafe { *out = token };
    Ok(SHMRING_OK)
}

/// Opens ring `ring` (a name, or an absolute path to a ring file) in `dir` (NULL: the
/// default, `$SHMRING_DIR` or `/dev/shm/shmring-<uid>`). Frames are leased in place.
/// NULL on error (see `shmring_last_error`): no such ring, not a ring, no permission.
///
/// # Safety
/// `ring` and `dir` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn shmring_reader_open(
    ring: *const c_char,
    dir: *const c_char,
) -> *mut shmring_reader {
    // SAFETY: as this function's contract.
    unsafe { shmring_reader_open_with(ring, dir, 0) }
}

/// As `shmring_reader_open`, with `flags`: `SHMRING_READ_COPY` copies every frame.
///
/// # Safety
/// As `shmring_reader_open`.
#[no_mangle]
pub unsafe extern "C" fn shmring_reader_open_with(
    ring: *const c_char,
    dir: *const c_char,
    flags: u32,
) -> *mut shmring_reader {
    call(|| {
        // SAFETY: as this function's contract.
        let (ring, dir) = unsafe { (text("ring", ring)?, dir_arg(dir)?) };
        if flags & !SHMRING_READ_COPY != 0 {
            return Err(fail(libc::EINVAL, format!("flags {flags:#x}: unknown")));
        }
        let loc = RingLocation::parse(ring, dir.as_deref())?;
        let session = Session::open(loc, flags & SHMRING_READ_COPY == 0)?;
        objects::insert(Object::Reader(Arc::new(Reader { session })))
    })
}

/// # Safety
/// As `shmring_reader_latest`.
unsafe fn read(
    r: *mut shmring_reader,
    mode: ReadMode,
    timeout_ms: i64,
    out: *mut *mut shmring_frame,
) -> c_int {
    call(|| {
        // SAFETY: `out` as this function's contract.
        unsafe { out_arg(out) }?;
        let reader = reader(r)?;
        let ring = reader.session.location().display_name().to_owned();
        match reader.session.read(mode, deadline(timeout_ms), || false)? {
            // SAFETY: `out` passed `out_arg`.
            Read::Frame(f) => unsafe {
                hand_out(
                    out,
                    Frame {
                        ring,
                        info: f.info,
                        missed: f.missed,
                        bytes: Bytes::Read(f.data),
                    },
                )
            },
            Read::TimedOut => Ok(SHMRING_TIMEOUT),
            Read::Stopped => Err(fail(
                libc::EBADF,
                format!("the reader of ring {ring} was closed during the read"),
            )),
            Read::Eos => Err(fail(
                libc::ENODATA,
                format!("ring {ring}: the stream ended and every frame was read"),
            )),
            Read::WriterGone(why) => Err(fail(
                libc::EPIPE,
                format!("ring {ring}: the writer is gone ({why:?}) and no new one came"),
            )),
        }
    })
}

/// The newest frame not returned yet, skipping what this reader missed, waiting up to
/// `timeout_ms` (negative: for ever) for it. `SHMRING_OK` with the frame in `*out`,
/// `SHMRING_TIMEOUT`, or a negative errno: `-ENODATA` when the stream ended, `-EPIPE`
/// when the writer is gone and no new one came in time, `-EBADF` when the reader is not
/// open (or was closed by another thread during the wait). A restarted writer is
/// followed. `*out` is NULL unless a frame is returned.
///
/// # Safety
/// `out` is NULL or points to a `shmring_frame *` to set.
#[no_mangle]
pub unsafe extern "C" fn shmring_reader_latest(
    r: *mut shmring_reader,
    timeout_ms: i64,
    out: *mut *mut shmring_frame,
) -> c_int {
    // SAFETY: as this function's contract.
    unsafe { read(r, ReadMode::Latest, timeout_ms, out) }
}

/// As `shmring_reader_latest`, for every frame in order: `shmring_frame_missed` counts
/// those lost to a writer that lapped this reader.
///
/// # Safety
/// As `shmring_reader_latest`.
#[no_mangle]
pub unsafe extern "C" fn shmring_reader_next(
    r: *mut shmring_reader,
    timeout_ms: i64,
    out: *mut *mut shmring_frame,
) -> c_int {
    // SAFETY: as this function's contract.
    unsafe { read(r, ReadMode::Next, timeout_ms, out) }
}

/// # Safety
/// As `hand_out`.
unsafe fn got(ring: String, out: *mut *mut shmring_frame, found: Got) -> Res<c_int> {
    match found {
        // SAFETY: as this function's contract.
        Got::Frame(f) => unsafe {
            hand_out(
                out,
                Frame {
                    ring,
                    info: f.info,
                    missed: 0,
                    bytes: Bytes::Copied(f.data),
                },
            )
        },
        Got::NotYet => Ok(SHMRING_NOT_YET),
        Got::Gone => Ok(SHMRING_GONE),
    }
}

/// Exactly the frame `handle` names (as `shmring_frame_handle` or a writer gave it),
/// copied, without waiting: `SHMRING_OK`, `SHMRING_NOT_YET`, `SHMRING_GONE`
/// (overwritten, or of a writer that is gone), or `-EINVAL` for a handle that is not
/// one or names another ring.
///
/// # Safety
/// `handle` is NULL or a NUL-terminated string; `out` as for `shmring_reader_latest`.
#[no_mangle]
pub unsafe extern "C" fn shmring_reader_get(
    r: *mut shmring_reader,
    handle: *const c_char,
    out: *mut *mut shmring_frame,
) -> c_int {
    call(|| {
        // SAFETY: `out` as this function's contract.
        unsafe { out_arg(out) }?;
        // SAFETY: as this function's contract.
        let handle: Handle = unsafe { text("handle", handle) }?.parse()?;
        let reader = reader(r)?;
        let ring = reader.session.location().display_name().to_owned();
        // SAFETY: `out` passed `out_arg`.
        unsafe { got(ring, out, reader.session.get(&handle)?) }
    })
}

/// The frame captured closest to `captured_at_ns` (ns since the Unix epoch) by `rule`
/// (`SHMRING_AT_*`), copied: `SHMRING_OK`, `SHMRING_NOT_YET` (none captured that late
/// yet) or `SHMRING_GONE` (overwritten).
///
/// # Safety
/// As `shmring_reader_latest`.
#[no_mangle]
pub unsafe extern "C" fn shmring_reader_at(
    r: *mut shmring_reader,
    captured_at_ns: u64,
    rule: c_int,
    out: *mut *mut shmring_frame,
) -> c_int {
    call(|| {
        // SAFETY: `out` as this function's contract.
        unsafe { out_arg(out) }?;
        let rule = match rule {
            SHMRING_AT_NEAREST => AtRule::Nearest,
            SHMRING_AT_OR_BEFORE => AtRule::AtOrBefore,
            SHMRING_AT_OR_AFTER => AtRule::AtOrAfter,
            other => return Err(fail(libc::EINVAL, format!("rule {other}: unknown"))),
        };
        let reader = reader(r)?;
        let ring = reader.session.location().display_name().to_owned();
        // SAFETY: `out` passed `out_arg`.
        unsafe { got(ring, out, reader.session.at(captured_at_ns, rule)?) }
    })
}

/// Fills `*info` with what the ring says of itself now.
///
/// # Safety
/// `info` is NULL or points to a `shmring_ring_info` to fill.
#[no_mangle]
pub unsafe extern "C" fn shmring_reader_info(
    r: *mut shmring_reader,
    info: *mut shmring_ring_info,
) -> c_int {
    call(|| {
        if info.is_null() {
            return Err(fail(libc::EINVAL, "info: NULL"));
        }
        let i = reader(r)?.session.info()?;
        let mut format = [0 as c_char; 32];
        for (d, s) in format
            .iter_mut()
            .zip(i.format.as_deref().unwrap_or("").bytes().take(31))
        {
            *d = s as c_char;
        }
        let status = match i.writer_status {
            WriterStatus::Live => SHMRING_WRITER_LIVE,
            WriterStatus::Eos => SHMRING_WRITER_EOS,
            WriterStatus::Closed => SHMRING_WRITER_CLOSED,
            WriterStatus::Replaced => SHMRING_WRITER_REPLACED,
            WriterStatus::Dead => SHMRING_WRITER_DEAD,
        };
        let filled = shmring_ring_info {
            width: i.width.unwrap_or(0),
            height: i.height.unwrap_or(0),
            fps: i.fps.unwrap_or(0.0),
            format,
            slots: i.slots,
            writer_pid: i.writer_pid,
            writer_status: status,
            epoch: i.epoch,
        };
        // SAFETY: not NULL, and points to a shmring_ring_info by this function's
        // contract; written whole, never read.
        unsafe { info.write(filled) };
        Ok(SHMRING_OK)
    })
}

/// The ring's caps (GStreamer's text for what its frames are) into `buf` of `size`
/// bytes, as snprintf does: returns the caps' length, `size` or more when cut; "" when
/// the ring has none.
///
/// # Safety
/// `buf` is NULL or valid for writing `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn shmring_reader_caps(
    r: *mut shmring_reader,
    buf: *mut c_char,
    size: usize,
) -> c_int {
    call(|| {
        let caps = reader(r)?.session.info()?.caps.unwrap_or_default();
        // SAFETY: as this function's contract.
        unsafe { copy_out(&caps, buf, size) }
    })
}

/// Closes the reader. A read waiting in another thread returns `-EBADF` at once; frames
/// not released yet stay valid. Closing NULL or a closed reader does nothing.
#[no_mangle]
pub extern "C" fn shmring_reader_close(r: *mut shmring_reader) {
    call(|| {
        if let Some(Object::Reader(reader)) = objects::remove(r, Kind::Reader) {
            reader.session.interrupt();
        }
        Ok(SHMRING_OK)
    });
}

/// Ends the frame's lease (or frees its copy): its data pointer is not to be used
/// again. Releasing NULL or a released frame does nothing.
#[no_mangle]
pub extern "C" fn shmring_frame_release(f: *mut shmring_frame) {
    call(|| {
        let removed = objects::remove(f, Kind::Frame);
        drop(removed);
        Ok(SHMRING_OK)
    });
}

/// The frame's bytes (`shmring_frame_size` of them), valid until it is released; NULL
/// for a frame that is not one. Read-only: in place, they are the ring's own memory.
#[no_mangle]
pub extern "C" fn shmring_frame_data(f: *const shmring_frame) -> *const u8 {
    call(|| Ok(frame(f)?.data().0))
}

/// Bytes of the frame (0 for a frame that is not one).
#[no_mangle]
pub extern "C" fn shmring_frame_size(f: *const shmring_frame) -> usize {
    call(|| Ok(frame(f)?.data().1))
}

/// The frame's sequence number in its writer's epoch (from 1).
#[no_mangle]
pub extern "C" fn shmring_frame_seq(f: *const shmring_frame) -> u64 {
    call(|| Ok(frame(f)?.info.seq))
}

/// The epoch of the writer that wrote the frame.
#[no_mangle]
pub extern "C" fn shmring_frame_epoch(f: *const shmring_frame) -> u64 {
    call(|| Ok(frame(f)?.info.epoch))
}

/// When the frame was captured: ns since the Unix epoch.
#[no_mangle]
pub extern "C" fn shmring_frame_captured_at(f: *const shmring_frame) -> u64 {
    call(|| Ok(frame(f)?.info.captured_at_ns))
}

/// The frame's pts in ns, `SHMRING_NO_TIME` when it has none.
#[no_mangle]
pub extern "C" fn shmring_frame_pts(f: *const shmring_frame) -> u64 {
    call(|| Ok(frame(f)?.info.pts.unwrap_or(crate::SHMRING_NO_TIME)))
}

/// The frame's duration in ns, `SHMRING_NO_TIME` when it has none.
#[no_mangle]
pub extern "C" fn shmring_frame_duration(f: *const shmring_frame) -> u64 {
    call(|| Ok(frame(f)?.info.duration.unwrap_or(crate::SHMRING_NO_TIME)))
}

/// Frames between the previous one this reader returned and this one that it did not
/// return (skipped by `latest`, lost to the writer by `next`).
#[no_mangle]
pub extern "C" fn shmring_frame_missed(f: *const shmring_frame) -> u64 {
    call(|| Ok(frame(f)?.missed))
}

/// 1 when the frame is read in place (leased), 0 when it is a copy or not a frame.
#[no_mangle]
pub extern "C" fn shmring_frame_is_in_place(f: *const shmring_frame) -> c_int {
    call(|| {
        Ok(OrZero(c_int::from(matches!(
            frame(f)?.bytes,
            Bytes::Read(Payload::Leased(_))
        ))))
    })
    .0
}

/// Width in pixels (0 when the ring's frames are not raw video).
#[no_mangle]
pub extern "C" fn shmring_frame_width(f: *const shmring_frame) -> u32 {
    call(|| Ok(frame(f)?.info.video.width))
}

/// Height in pixels (0 when the ring's frames are not raw video).
#[no_mangle]
pub extern "C" fn shmring_frame_height(f: *const shmring_frame) -> u32 {
    call(|| Ok(frame(f)?.info.video.height))
}

/// "" as a C string.
const EMPTY: &[u8; 1] = b"\0";

/// The format names as C strings, by GStreamer format number.
static FORMAT_NAMES: LazyLock<Vec<(u32, CString)>> = LazyLock::new(|| {
    FORMATS
        .iter()
        .filter_map(|f| Some((f.number, CString::new(f.name).ok()?)))
        .collect()
});

/// GStreamer's name of the frame's pixel format (`I420`, `NV12`, `BGRx`, ...): a
/// static string, "" when the format is not one libshmring knows; NULL for a frame
/// that is not one.
#[no_mangle]
pub extern "C" fn shmring_frame_format(f: *const shmring_frame) -> *const c_char {
    call(|| {
        let number = frame(f)?.info.video.format;
        Ok(FORMAT_NAMES
            .iter()
            .find(|(n, _)| *n == number)
            .map_or(EMPTY.as_ptr().cast(), |(_, name)| name.as_ptr()))
    })
}

/// Planes of the frame (1 for packed formats, 2 or 3 for planar ones).
#[no_mangle]
pub extern "C" fn shmring_frame_n_planes(f: *const shmring_frame) -> u32 {
    call(|| Ok(frame(f)?.info.video.n_planes.min(MAX_PLANES as u32)))
}

fn plane(f: *const shmring_frame, plane: u32) -> Res<(u64, i32)> {
    let frame = frame(f)?;
    let v = &frame.info.video;
    if plane >= v.n_planes.min(MAX_PLANES as u32) {
        return Err(fail(
            libc::EINVAL,
            format!("plane {plane}: the frame has {}", v.n_planes),
        ));
    }
    let p = plane as usize;
    // The layout is the ring's word: a C program walks the plane by it, so it is
    // handed out only when every row of the plane is inside the frame.
    let fits = shmring_common::formats::by_number(v.format)
        .is_some_and(|format| format.plane_fits(v, p, frame.info.len));
    if !fits {
        return Err(fail(
            libc::EBADMSG,
            format!(
                "plane {plane} of frame {} (offset {}, stride {}) does not lie within its {} bytes",
                frame.info.seq, v.offsets[p], v.strides[p], frame.info.len
            ),
        ));
    }
    Ok((v.offsets[p], v.strides[p]))
}

/// Where plane `plane` starts in the frame's bytes (0 for a plane it does not have).
#[no_mangle]
pub extern "C" fn shmring_frame_plane_offset(f: *const shmring_frame, plane: u32) -> usize {
    call(|| {
        let offset = self::plane(f, plane)?.0;
        usize::try_from(offset).map_err(|_| fail(libc::EOVERFLOW, "offset beyond memory"))
    })
}

/// Bytes from one row of plane `plane` to the next (0 for a plane it does not have).
#[no_mangle]
pub extern "C" fn shmring_frame_plane_stride(f: *const shmring_frame, plane: u32) -> i32 {
    call(|| Ok(crate::OrZero(self::plane(f, plane)?.1))).0
}

/// The frame's handle (`ring:epoch:seq`, which `shmring_reader_get` in any process
/// takes back) into `buf` of `size` bytes, as snprintf does: `SHMRING_HANDLE_SIZE`
/// always holds it. Returns its length, or a negative errno.
///
/// # Safety
/// `buf` is NULL or valid for writing `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn shmring_frame_handle(
    f: *const shmring_frame,
    buf: *mut c_char,
    size: usize,
) -> c_int {
    call(|| {
        let frame = frame(f)?;
        let handle = Handle {
            ring: frame.ring.clone(),
            epoch: frame.info.epoch,
            seq: frame.info.seq,
        };
        // SAFETY: as this function's contract.
        unsafe { copy_out(&handle.to_string(), buf, size) }
    })
}
