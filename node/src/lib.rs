//! `shmring` for Node.js: a ring's frames as zero-copy `Buffer`s that are never torn.
//!
//! A `Reader`'s frame holds a lease on its slot: the writer does not reuse the slot
//! until the lease ends, and its `pixels` Buffer points straight at it. `release()`
//! ends the lease and detaches the Buffer (length 0 from then on), so no code can read
//! the slot afterwards; a frame never released ends its lease when it and its Buffer
//! are collected, and the ring's lease budget keeps any reader from pinning the writer.
//! Waits of the async calls run on a thread of the reader's own, never on the event
//! loop nor on libuv's pool; `Reader.open` maps a ring on libuv's pool (bounded work,
//! not a wait). A `Writer` copies Buffers in, or lends a slot to fill in
//! place, whose Buffer is detached at the commit.
//!
//! This file holds the errors; `reader` the `Reader`, `frame` its frames, `writer` the
//! `Writer` and its `WriteFrame`s, `buffers` the external Buffers. The JavaScript API
//! (`index.js`) wraps these classes: it turns the `CODE: message` of an error into an
//! `Error` with `code` and `ring`.

mod bench;
mod buffers;
mod frame;
mod reader;
mod writer;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use napi::{Error, Status};
use shmring_common::Error as RingError;

/// Locks `m`, carrying on after a panic elsewhere left it poisoned (every update under
/// these locks is complete before anything can fail).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An error with `code` (an `ERR_SHMRING_*` name) for `index.js` to read.
pub(crate) fn error(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("{code}: {message}"))
}

/// The code of a ring's error.
fn code_of(e: &RingError) -> &'static str {
    match e {
        RingError::NotFound { .. } => "ERR_SHMRING_NOT_FOUND",
        RingError::Corrupt { .. }
        | RingError::Truncated { .. }
        | RingError::UnsupportedVersion { .. }
        | RingError::NotARingFile { .. } => "ERR_SHMRING_CORRUPT",
        RingError::InvalidName { .. } => "ERR_SHMRING_BAD_NAME",
        RingError::InvalidHandle { .. } => "ERR_SHMRING_BAD_HANDLE",
        RingError::Insecure { .. } => "ERR_SHMRING_PERMISSION",
        RingError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            "ERR_SHMRING_PERMISSION"
        }
        RingError::Busy { .. } => "ERR_SHMRING_IN_USE",
        RingError::FrameTooLarge { .. } | RingError::InvalidGeometry { .. } => {
            "ERR_SHMRING_INVALID_ARG"
        }
        RingError::SlotsHeld { .. } => "ERR_SHMRING_SLOTS_HELD",
        _ => "ERR_SHMRING_IO",
    }
}

/// The error of a ring's error.
pub(crate) fn ring_error(e: RingError) -> Error {
    error(code_of(&e), e)
}

/// The deadline of a wait of `timeout_ms` (None or Infinity: for ever).
pub(crate) fn deadline(timeout_ms: Option<f64>) -> napi::Result<Option<Instant>> {
    match timeout_ms {
        None => Ok(None),
        Some(t) if t == f64::INFINITY => Ok(None),
        // A timeout beyond what the clock can count waits for ever.
        Some(t) if t >= 0.0 => Ok(Duration::try_from_secs_f64(t / 1000.0)
            .ok()
            .and_then(|d| Instant::now().checked_add(d))),
        Some(t) => Err(error(
            "ERR_SHMRING_INVALID_ARG",
            format!("timeout {t}: expected ms, 0 or more, or Infinity to wait for ever"),
        )),
    }
}
