//! Committing frames: the writer's half of the seqlock, and the readers' wake-up.
//!
//! A `SlotWriter` is a frame being written into its slot, which `RingWriter::begin`
//! marked `writing(seq)`; `publish` fills the slot's descriptor and commits it
//! (`committed(seq)`, then `head`), and `wake_readers` wakes whoever waits.

use std::path::Path;
use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::layout::*;
use crate::mapping::{Geometry, Mapping};
use crate::FrameMeta;
use crate::{copy, sys};

/// A frame being written: fill `payload()`, then `commit` or `abort` (dropping it
/// aborts).
pub struct SlotWriter<'a> {
    pub(crate) seq: u64,
    pub(crate) index: u32,
    pub(crate) payload_index: u32,
    pub(crate) payload: &'a mut [u8],
    pub(crate) writer_map: &'a Mapping,
    pub(crate) path: &'a Path,
    pub(crate) geom: Geometry,
    pub(crate) bypass_cache: bool,
    pub(crate) done: bool,
}

impl SlotWriter<'_> {
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The slot's payload, straight in shared memory, to be filled in place.
    ///
    /// # Safety
    /// The bytes are shared memory that a process of the ring's user could change by
    /// writing or truncating the file (docs/security.md), which Rust's rules for `&mut`
    /// do not allow for. Call it only when accepting that, as a test or a benchmark
    /// filling a frame in place may; `copy_into` reaches the same bytes through raw
    /// pointers.
    pub unsafe fn payload(&mut self) -> &mut [u8] {
        self.payload
    }

    /// Copies `src` into the payload at byte `at`, around the cache if the ring's
    /// writer says so (`RingWriter::bypasses_cache`). The way to copy a frame in.
    pub fn copy_into(&mut self, at: usize, src: &[u8]) -> Result<()> {
        let capacity = self.payload.len() as u64;
        let dst = at
            .checked_add(src.len())
            .and_then(|end| self.payload.get_mut(at..end))
            .ok_or(Error::FrameTooLarge {
                len: at as u64 + src.len() as u64,
                capacity,
            })?;
        if self.bypass_cache {
            copy::copy_nontemporal(dst, src);
        } else {
            dst.copy_from_slice(src);
        }
        Ok(())
    }

    /// Publishes the frame: `len` payload bytes and `meta`. Returns its sequence.
    pub fn commit(mut self, meta: &FrameMeta, len: u64) -> Result<u64> {
        check_mapped(self.writer_map, self.path)?;
        publish(
            self.writer_map,
            &self.geom,
            self.index,
            self.seq,
            self.payload_index,
            meta,
            len,
        )?;
        self.done = true;
        Ok(self.seq)
    }

    /// Abandons the frame: nothing is published, the sequence is reused.
    pub fn abort(mut self) {
        self.abandon();
    }

    fn abandon(&mut self) {
        if !self.done {
            self.done = true;
            // Relaxed: statistics. The commit word stays `writing(seq)`: never committed.
            self.writer_map
                .superblock()
                .aborted
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for SlotWriter<'_> {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// Fails once another process truncated the ring file under the writer: the mapping
/// then reads as zeros and whatever is written into it reaches nobody (see `sigbus`).
pub(crate) fn check_mapped(map: &Mapping, path: &Path) -> Result<()> {
    if map.truncated() {
        return Err(Error::Truncated {
            path: path.to_owned(),
            role: "writer",
        });
    }
    Ok(())
}

/// Marks, in descriptor `index`, frame `seq` of `len` bytes in payload slot
/// `payload_index` as committed, and wakes the readers.
pub(crate) fn publish(
    map: &Mapping,
    geom: &Geometry,
    index: u32,
    seq: u64,
    payload_index: u32,
    meta: &FrameMeta,
    len: u64,
) -> Result<()> {
    if len > geom.slot_stride {
        return Err(Error::FrameTooLarge {
            len,
            capacity: geom.slot_stride,
        });
    }
    let sb = map.superblock();
    let d = map.descriptor(geom, index);
    let none = u64::MAX;
    let caps_version = if meta.caps_version != 0 {
        meta.caps_version
    } else {
        sb.caps_version.load(Ordering::Relaxed)
    };
    // Relaxed field stores: ordered before the commit word's Release store below.
    d.payload_index.store(payload_index, Ordering::Relaxed);
    d.caps_version.store(caps_version, Ordering::Relaxed);
    d.payload_len.store(len, Ordering::Relaxed);
    d.pts.store(meta.pts.unwrap_or(none), Ordering::Relaxed);
    d.dts.store(meta.dts.unwrap_or(none), Ordering::Relaxed);
    d.duration
        .store(meta.duration.unwrap_or(none), Ordering::Relaxed);
    let now_mono = sys::monotonic_ns();
    d.captured_at_ns.store(
        meta.captured_at_ns.unwrap_or_else(sys::realtime_ns),
        Ordering::Relaxed,
    );
    d.commit_mono_ns.store(now_mono, Ordering::Relaxed);
    d.flags.store(meta.flags, Ordering::Relaxed);
    let v = &meta.video;
    d.video_format.store(v.format, Ordering::Relaxed);
    d.width.store(v.width, Ordering::Relaxed);
    d.height.store(v.height, Ordering::Relaxed);
    d.n_planes
        .store(v.n_planes.min(MAX_PLANES as u32), Ordering::Relaxed);
    for p in 0..MAX_PLANES {
        d.plane_offset[p].store(v.offsets[p], Ordering::Relaxed);
        d.plane_stride[p].store(v.strides[p] as u32, Ordering::Relaxed);
    }
    // Non-temporal payload stores (copy_into) are not ordered by Release: fence them.
    copy::store_fence();
    // Release: pairs with the reader's Acquire load of the commit word; makes the
    // payload and the fields above visible to a reader that sees `committed(seq)`. For a
    // frame filled in place by another thread, the hand-over of the buffer to this one
    // (a pad push, under GStreamer's locks) orders its writes before this store.
    d.commit.store(committed(seq), Ordering::Release);
    // Release: pairs with the reader's Acquire load of head.
    sb.head.store(seq, Ordering::Release);
    // Relaxed: statistics.
    sb.committed.fetch_add(1, Ordering::Relaxed);
    sb.bytes_committed.fetch_add(len, Ordering::Relaxed);
    sb.heartbeat_mono_ns.store(now_mono, Ordering::Relaxed);
    wake_readers(sb);
    Ok(())
}

/// Tells every reader waiting on the ring's wake word that something changed.
pub(crate) fn wake_readers(sb: &Superblock) {
    // Release: pairs with the readers' Acquire load of `wake` before they re-check
    // head/state and FUTEX_WAIT on the value they loaded; if they loaded the old value
    // the kernel sees it changed (or our wake finds them asleep).
    sb.wake.fetch_add(1, Ordering::Release);
    sys::futex_wake(&sb.wake, true);
}
