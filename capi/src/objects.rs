//! The table of the objects C programs hold: readers, frames, writers and frames being
//! written, each behind a token.
//!
//! A token is what C sees as a `shmring_reader *` (or frame, writer): the entry's number
//! shifted left, with the kind of object in the low bits. It is never dereferenced, so
//! a C program that passes NULL, a closed reader, a frame released twice, a writer
//! where a reader is wanted, or any other number gets `-EBADF`, never a crash.
//! Numbers count up from 1 and are never reused while the process lives (2^61 of them).
//!
//! The table's lock is held only to insert, clone an `Arc` out, or remove: never while
//! anything else is locked or waited for, and what is removed is dropped after the lock
//! is let go (dropping a frame ends a lease; dropping a writer closes its ring).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use crate::reader::{Frame, Reader};
use crate::writer::{WriteFrame, Writer};
use crate::{fail, Res};

/// An object of the table.
#[derive(Clone)]
pub(crate) enum Object {
    Reader(Arc<Reader>),
    Frame(Arc<Frame>),
    Writer(Arc<Writer>),
    WriteFrame(Arc<WriteFrame>),
}

/// The kinds of object, in a token's low bits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Reader = 1,
    Frame = 2,
    Writer = 3,
    WriteFrame = 4,
}

impl Object {
    fn kind(&self) -> Kind {
        match self {
            Object::Reader(_) => Kind::Reader,
            Object::Frame(_) => Kind::Frame,
            Object::Writer(_) => Kind::Writer,
            Object::WriteFrame(_) => Kind::WriteFrame,
        }
    }
}

/// Low bits of a token that say its kind.
const KIND_BITS: u32 = 3;

static TABLE: LazyLock<Mutex<HashMap<usize, Object>>> = LazyLock::new(Mutex::default);
/// The next entry's number. Relaxed: only uniqueness matters, which fetch_add gives.
static NEXT: AtomicU64 = AtomicU64::new(1);

fn table() -> MutexGuard<'static, HashMap<usize, Object>> {
    // Nothing can panic while the lock is held but the allocator; carry on after it.
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Puts `object` in the table; its token, as the pointer type C sees.
pub(crate) fn insert<T>(object: Object) -> Res<*mut T> {
    let number = NEXT.fetch_add(1, Ordering::Relaxed);
    let token = usize::try_from(number)
        .ok()
        .and_then(|n| n.checked_shl(KIND_BITS))
        .filter(|t| t >> KIND_BITS == number as usize)
        .ok_or_else(|| fail(libc::EMFILE, "no more objects can be made in this process"))?
        | object.kind() as usize;
    table().insert(token, object);
    Ok(token as *mut T)
}

/// The object of `token`, if it is in the table.
pub(crate) fn get<T>(token: *const T) -> Option<Object> {
    table().get(&(token as usize)).cloned()
}

/// Takes the object of `token` out of the table, if it is there and of `kind` (a
/// reader's token given to `shmring_frame_release` leaves the reader open).
pub(crate) fn remove<T>(token: *const T, kind: Kind) -> Option<Object> {
    let token = token as usize;
    if token & ((1 << KIND_BITS) - 1) != kind as usize {
        return None;
    }
    // Dropped by the caller, after the table's lock is let go.
    table().remove(&token)
}

/// Puts back `object` under `token`, which this thread has just taken out with
/// `remove` (numbers are never reused, so no other object can have it meanwhile).
pub(crate) fn put_back<T>(token: *const T, object: Object) {
    table().insert(token as usize, object);
}

/// The error for a token that names no object of the kind `what`.
pub(crate) fn bad(what: &str) -> crate::Fail {
    fail(
        libc::EBADF,
        format!("not an open {what} (NULL, closed, released, or another kind of object)"),
    )
}
