//! libshmring: the shmring ring for C programs, without GStreamer.
//!
//! A C program opens a ring by name and reads its frames in place (`reader`), or writes
//! one (`writer`), knowing nothing of slots, seqlocks or leases: the follow policy is
//! `common`'s `Session`, the writer's checks are `common`'s `VideoSpec`, as for Python
//! and Node. This module holds what every function shares:
//!
//! - **Results.** 0 is success, small positive numbers are the outcomes that are not
//!   errors (`SHMRING_TIMEOUT`, `SHMRING_NOT_YET`, `SHMRING_GONE`), and an error is a
//!   negative errno (`-EINVAL`, `-ENOENT`, ...) with a message for
//!   `shmring_last_error()`, kept per thread.
//! - **No panic crosses into C.** Every function runs its body in `call`, which catches
//!   a panic and makes it `-ENOTRECOVERABLE`.
//! - **Objects are tokens.** The `shmring_reader *` (and frame, writer) a C program
//!   holds is not an address but a number naming an entry of one table (`objects`): a
//!   NULL, closed, released or made-up object is found in no entry and is `-EBADF`,
//!   never a crash, and numbers are never reused, so a stale one never names a newer
//!   object. Each call takes its object out of the table (an `Arc`) and lets go of the
//!   table's lock before it does anything else.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use shmring_common::Error as RingError;

mod objects;
pub mod reader;
pub mod writer;

pub use reader::*;
pub use writer::*;

/// A frame was returned (or the call succeeded).
pub const SHMRING_OK: c_int = 0;
/// No frame came before the timeout.
pub const SHMRING_TIMEOUT: c_int = 1;
/// The frame named is not written yet.
pub const SHMRING_NOT_YET: c_int = 2;
/// The frame named was overwritten, or is of a writer that is gone.
pub const SHMRING_GONE: c_int = 3;

/// No time: a frame without a pts, or "now" for a capture time given to a writer.
pub const SHMRING_NO_TIME: u64 = u64::MAX;
/// Bytes that hold any handle with its terminating NUL.
pub const SHMRING_HANDLE_SIZE: usize = 4097;

/// What went wrong in a call: the negative errno it returns and the message
/// `shmring_last_error` gives.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) code: c_int,
    message: String,
}

pub(crate) type Res<T> = Result<T, Fail>;

pub(crate) fn fail(errno: c_int, message: impl Into<String>) -> Fail {
    Fail {
        code: -errno,
        message: message.into(),
    }
}

impl From<RingError> for Fail {
    fn from(e: RingError) -> Self {
        let errno = match &e {
            RingError::NotFound { .. } => libc::ENOENT,
            RingError::Corrupt { .. }
            | RingError::Truncated { .. }
            | RingError::UnsupportedVersion { .. }
            | RingError::NotARingFile { .. } => libc::EBADMSG,
            RingError::InvalidName { .. }
            | RingError::InvalidHandle { .. }
            | RingError::InvalidGeometry { .. } => libc::EINVAL,
            RingError::Insecure { .. } => libc::EACCES,
            RingError::Busy { .. } => libc::EBUSY,
            RingError::FrameTooLarge { .. } | RingError::CapsTooLong { .. } => libc::E2BIG,
            RingError::SlotsHeld { .. } => libc::ENOBUFS,
            RingError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        };
        fail(errno, e.to_string())
    }
}

thread_local! {
    /// The message of this thread's last failed call.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // A message never has a NUL in the middle; if one did, it is cut there.
    let c = CString::new(message.split('\0').next().unwrap_or_default()).unwrap_or_default();
    // try_with: a call from a thread-local destructor or an atexit handler comes after
    // this thread's storage is gone (glibc destroys it first); its message is lost
    // rather than panicking, which would abort the process.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
}

/// The message of the last call of this thread that failed ("" when none did): what
/// was wrong and with which ring. Valid until the next call of this thread that fails.
#[no_mangle]
pub extern "C" fn shmring_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(NO_MESSAGE.as_ptr())
}

/// "": what `shmring_last_error` gives once the thread's storage is gone.
static NO_MESSAGE: [c_char; 1] = [0];

/// What a C function returns when its body failed with `code`.
pub(crate) trait Failed {
    fn failed(code: c_int) -> Self;
}

impl Failed for c_int {
    fn failed(code: c_int) -> Self {
        code
    }
}

impl<T> Failed for *mut T {
    fn failed(_: c_int) -> Self {
        std::ptr::null_mut()
    }
}

impl<T> Failed for *const T {
    fn failed(_: c_int) -> Self {
        std::ptr::null()
    }
}

/// Numbers a failed accessor returns (0), the error being in `shmring_last_error`.
macro_rules! failed_as_zero {
    ($($t:ty),*) => {$(
        impl Failed for $t {
            fn failed(_: c_int) -> Self {
                0 as $t
            }
        }
    )*};
}
failed_as_zero!(u32, u64, usize);

/// A number that is 0 on failure although the function returns an `int`.
pub(crate) struct OrZero(pub i32);

impl Failed for OrZero {
    fn failed(_: c_int) -> Self {
        OrZero(0)
    }
}

/// Runs the body of a C function: its error, or a panic, becomes what the function
/// returns on failure, and the message is kept for `shmring_last_error`.
pub(crate) fn call<T: Failed>(body: impl FnOnce() -> Res<T>) -> T {
    let fail = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => return v,
        Ok(Err(f)) => f,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            // A payload's own Drop could panic too: it is not run.
            std::mem::forget(panic);
            fail(
                libc::ENOTRECOVERABLE,
                format!("internal error in libshmring: {what}"),
            )
        }
    };
    set_last_error(&fail.message);
    T::failed(fail.code)
}

/// A C string argument: UTF-8, not NULL.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string that stays valid during the call.
pub(crate) unsafe fn text<'a>(what: &str, s: *const c_char) -> Res<&'a str> {
    if s.is_null() {
        return Err(fail(libc::EINVAL, format!("{what}: NULL")));
    }
    // SAFETY: not NULL, and NUL-terminated and valid by this function's contract.
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| fail(libc::EINVAL, format!("{what}: not UTF-8")))
}

/// The directory argument of an open: NULL for the default (`$SHMRING_DIR` or
/// `/dev/shm/shmring-<uid>`).
///
/// # Safety
/// As `text`.
pub(crate) unsafe fn dir_arg(dir: *const c_char) -> Res<Option<PathBuf>> {
    if dir.is_null() {
        return Ok(None);
    }
    // SAFETY: as this function's contract.
    let d = unsafe { text("dir", dir) }?;
    if d.is_empty() {
        return Err(fail(
            libc::EINVAL,
            "dir: empty (NULL is the default directory)",
        ));
    }
    Ok(Some(PathBuf::from(d)))
}

/// Locks `m`, carrying on after a panic caught elsewhere left it poisoned (every
/// update under these locks is complete before anything can fail).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The deadline of a wait of `timeout_ms`: negative waits for ever, as poll(2).
pub(crate) fn deadline(timeout_ms: i64) -> Option<Instant> {
    let ms = u64::try_from(timeout_ms).ok()?;
    // A timeout beyond what the clock can count waits for ever.
    Instant::now().checked_add(Duration::from_millis(ms))
}

/// Copies `s` into the caller's buffer `buf` of `size` bytes as snprintf(3) does: cut to
/// fit, always NUL-terminated when `size` > 0. Returns the length of `s` (without the
/// NUL): more than `size` - 1 says it was cut.
///
/// # Safety
/// `buf` is NULL (with any `size`) or valid for writing `size` bytes.
pub(crate) unsafe fn copy_out(s: &str, buf: *mut c_char, size: usize) -> Res<c_int> {
    let len = c_int::try_from(s.len()).map_err(|_| fail(libc::EOVERFLOW, "text too long"))?;
    if !buf.is_null() && size > 0 {
        let n = s.len().min(size - 1);
        // SAFETY: `buf` is valid for `size` bytes by this function's contract, n < size,
        // and `s` is not the caller's buffer (it is ours).
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    Ok(len)
}
