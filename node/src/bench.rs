//! `mapRingForBench`: a ring file mapped read-only as one Buffer, for `bench/bench.js`.
//!
//! The benchmark compares this package's reads with a plain JavaScript seqlock reader
//! over the same mapping, as Node addons of other shared-memory rings give it: the
//! whole file as a Buffer, its commit words checked by JavaScript around a copy. Not
//! part of the package's API: nothing keeps such a reader from reading a torn frame
//! but its own checks.

use std::fs::File;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::{buffers, error};

/// The ring file at `path`, mapped read-only, as a Buffer.
#[napi(catch_unwind, ts_return_type = "Buffer")]
pub fn map_ring_for_bench(env: &Env, path: String) -> Result<Unknown<'_>> {
    let file = File::open(&path).map_err(|e| error("ERR_SHMRING_IO", format!("{path}: {e}")))?;
    // SAFETY: a shared file other processes write; JavaScript only reads it, through a
    // Buffer over read-only pages, checking commit words as a seqlock reader does.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| error("ERR_SHMRING_IO", format!("mmap {path}: {e}")))?;
    let (ptr, len) = (map.as_ptr() as *mut u8, map.len());
    // SAFETY: the mapping stays while the Buffer's finalizer holds it; nothing here
    // writes it (read-only pages).
    let (buffer, _attached) = unsafe { buffers::external(env, ptr, len, Box::new(map))? };
    Ok(buffer)
}
