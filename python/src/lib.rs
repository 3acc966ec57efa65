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
//!
//! This file holds the module's errors and its init; `frame` the frames read and the
//! arrays of frames, `reader` the `Reader`, `writer` the `Writer` and its `WriteFrame`s.
//! The formats and their plane layouts are `shmring_common::formats`.

mod frame;
mod reader;
mod writer;

use std::sync::Mutex;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use shmring_common::Error;

use frame::Frame;
use reader::{FrameIter, Reader};
use writer::{WriteFrame, Writer};

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

/// Locks `m`, carrying on after a panic elsewhere left it poisoned (every update under
/// these locks is complete before anything can fail).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Python exception of a ring's error.
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
