//! Claims: a frame taken by a reader's cursor, copied afterwards, outside the lock that
//! guards the cursor.
//!
//! A binding's reader (`Session`) is shared by threads behind one lock, and copying a
//! frame may take a millisecond; the lock is never held across it. So a read there is
//! split in three:
//! - under the lock, the cursor takes a frame (`take_latest`, `take_next`, `take_unit`,
//!   `take_by_handle`): a lease in place, or a `Claim` on the frame found committed (the
//!   first half of the seqlock read);
//! - without it, the claim is copied (`Claim::copy`, the second half: the bytes, then the
//!   commit word again);
//! - under it again, the reader's progress is published (`note_progress`), or, for a
//!   claim overwritten during its copy (or not copied at all: an error), the cursor
//!   moves as a torn copy inside a read would have moved it, and the frames lost are
//!   counted in the next frame's `missed` (`claim_torn`).
//!
//! `RingReader::copy` is a claim copied at once: the seqlock copy is written here only.

use std::fs::File;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::layout::MAX_SEQ;
use crate::leases::{LeaseTable, Payload};
use crate::location::{Handle, RingLocation};
use crate::lookup::ByHandle;
use crate::mapping::{Geometry, Mapping};
use crate::reader::{Copy, Next, Pick, RingReader};
use crate::sigbus;
use crate::sys;
use crate::FrameInfo;

/// A frame found committed in its slot, to be copied (`copy`) by whoever holds it.
/// Keeps the ring mapped: the reader it came from may be dropped meanwhile.
pub(crate) struct Claim {
    map: Arc<Mapping>,
    leases: Option<Arc<LeaseTable>>,
    file: Arc<File>,
    geom: Geometry,
    /// The slot's commit word as loaded (Acquire) when the frame was found: the copy
    /// holds only if the word is unchanged after it.
    word: u64,
    info: FrameInfo,
}

/// Whether every mapping a reader touches is guarded: a shrink of the file reads as
/// zeros there, and is then reported by `check_mapped`, rather than kill us. Decided
/// once per copy or lease, right before it (after the caller's allocator, which may
/// have installed a SIGBUS handler of its own): the fstat and the zeros check must not
/// both be skipped by an answer that changes in between.
pub(crate) fn guarded(map: &Mapping, leases: Option<&LeaseTable>) -> bool {
    map.guarded() && leases.is_none_or(|t| t.table.guarded()) && sigbus::still_ours()
}

/// Whether a shrink of the ring file zeroed `map` or the reader-table page (no syscall).
pub(crate) fn check_mapped(
    map: &Mapping,
    leases: Option<&LeaseTable>,
    loc: &RingLocation,
) -> Result<()> {
    if map.truncated() || leases.is_some_and(|t| t.table.truncated()) {
        return Err(Error::Truncated {
            path: loc.path().to_owned(),
            role: "reader",
        });
    }
    Ok(())
}

/// A writer of the same user could shrink the file under us; reading past its end
/// would be a SIGBUS. Checked right before each copy or lease (see docs/security.md).
/// Where the guard covers the mappings read (`guarded`), a shrink turns them into zeros
/// instead (`sigbus`), which `check_mapped` reports with no syscall; unguarded, the
/// size is checked with fstat.
pub(crate) fn check_size(
    map: &Mapping,
    leases: Option<&LeaseTable>,
    file: &File,
    geom: &Geometry,
    loc: &RingLocation,
    guarded: bool,
) -> Result<()> {
    check_mapped(map, leases, loc)?;
    if guarded {
        return Ok(());
    }
    let size = sys::file_size(file).map_err(|e| Error::io(loc.path(), "stat", e))?;
    if size < geom.total_size {
        return Err(Error::corrupt(
            loc.path(),
            format!(
                "file shrank to {size} bytes under the reader (ring needs {})",
                geom.total_size
            ),
        ));
    }
    Ok(())
}

impl Claim {
    pub(crate) fn info(&self) -> &FrameInfo {
        &self.info
    }

    /// The second half of the seqlock read: copies the frame into `alloc`'s buffer (at
    /// least `info.len` bytes) and keeps it only if the writer did not touch the slot
    /// meanwhile. None: it did (torn, or overwritten since it was claimed). `loc`: the
    /// ring's location, for errors.
    pub(crate) fn copy<B: AsMut<[u8]>>(
        self,
        loc: &RingLocation,
        alloc: &mut impl FnMut(&FrameInfo) -> B,
    ) -> Result<Option<(FrameInfo, B)>> {
        let info = self.info;
        let mut data = alloc(&info);
        let dst = data.as_mut();
        if (dst.len() as u64) < info.len {
            return Err(Error::InvalidGeometry {
                what: format!(
                    "buffer of {} bytes for a frame of {} bytes",
                    dst.len(),
                    info.len
                ),
            });
        }
        let leases = self.leases.as_deref();
        let guarded = guarded(&self.map, leases);
        check_size(&self.map, leases, &self.file, &self.geom, loc, guarded)?;
        self.map
            .copy_payload(
                &self.geom,
                info.payload_index,
                info.payload_at,
                &mut dst[..info.len as usize],
            )
            .ok_or_else(|| {
                Error::corrupt(
                    loc.path(),
                    format!("frame {} lies outside the file", info.seq),
                )
            })?;
        // Pairs with the writer's Release fence after it stores `writing(seq')`: if any
        // byte we copied came from a newer write, the load below sees the new word.
        fence(Ordering::Acquire);
        let d = self.map.descriptor(&self.geom, self.geom.slot_of(info.seq));
        if d.commit.load(Ordering::Relaxed) != self.word {
            // A file shrunk under the copy reads as zeros from then on, commit word
            // included: that is the news, not the writer lapping us.
            check_mapped(&self.map, leases, loc)?;
            return Ok(None);
        }
        Ok(Some((info, data)))
    }
}

impl RingReader {
    /// The first half of the seqlock read of frame `seq`: a claim on it if its slot
    /// holds it committed, else `Copy::Newer` or `Copy::Older`.
    pub(crate) fn claim<O>(&self, seq: u64) -> Result<std::result::Result<Claim, Copy<O>>> {
        let (word, info) = match self.open_frame(seq)? {
            Ok(f) => (f.word, f.info),
            Err(other) => return Ok(Err(other)),
        };
        Ok(Ok(Claim {
            map: self.map.clone(),
            leases: self.leases.clone(),
            file: self.file.clone(),
            geom: self.geom,
            word,
            info,
        }))
    }

    /// A claim as a read's `take` gives it: `Copy::Ok` with the claim.
    fn claimed(&self, seq: u64) -> Result<Copy<Claim>> {
        Ok(match self.claim(seq)? {
            Ok(c) => Copy::Ok(c.info.clone(), c),
            Err(other) => other,
        })
    }

    /// As `latest_zero_copy`, with a frame that is not leased claimed rather than
    /// copied. The reader's progress is not published: `note_progress` once it is
    /// copied, `claim_torn` if it was overwritten.
    pub(crate) fn take_latest(&mut self, timeout: Duration) -> Result<Next<Payload<Claim>>> {
        self.read_with(Pick::Newest, timeout, |r, seq| {
            r.lease_or_take(seq, Self::claimed)
        })
    }

    /// As `next_zero_copy`, claiming as `take_latest` does.
    pub(crate) fn take_next(&mut self, timeout: Duration) -> Result<Next<Payload<Claim>>> {
        self.read_with(Pick::InOrder, timeout, |r, seq| {
            r.lease_or_take(seq, Self::claimed)
        })
    }

    /// As `next_unit`, with the unit claimed rather than copied (units are never leased).
    pub(crate) fn take_unit(&mut self, timeout: Duration) -> Result<Next<Claim>> {
        self.unit_with(timeout, Self::claimed)
    }

    /// As `by_handle`, with the frame claimed rather than copied.
    pub(crate) fn take_by_handle(&self, handle: &Handle) -> Result<ByHandle<Claim>> {
        self.by_handle_with(handle, Self::claimed)
    }

    /// After a claim on frame `seq` of epoch `epoch` (from a `take_` of this reader's
    /// cursor, whose `missed` was `missed`) was overwritten during its copy, or could not
    /// be copied: moves the cursor as a torn copy inside the read would have, and counts
    /// the frames lost (those `missed` by the take, the claimed one, and those the
    /// cursor passes over now) in the `missed` of the next frame this reader returns.
    /// - A frame: the writer lapped this reader, and the oldest frames are the next to be
    ///   overwritten, so the next read takes the newest, with the whole ring as headroom;
    ///   unless another read moved the cursor meanwhile.
    /// - A unit: the next is the newest keyframe's (`next_unit`), whoever reads it.
    ///
    /// Nothing for a claim of an epoch this reader no longer reads.
    pub(crate) fn claim_torn(&mut self, seq: u64, epoch: u64, missed: u64) {
        if self.epoch() != epoch {
            return;
        }
        let mut lost = missed.saturating_add(1);
        if self.holds_units() {
            self.unit_lost = true;
        } else if self.last == seq {
            let head = self.head();
            // A hostile head is the next read's to report.
            if head > seq.saturating_add(1) && head <= MAX_SEQ {
                lost = lost.saturating_add(head - 1 - seq);
                self.last = head - 1;
            }
        }
        self.missed_unreported = self.missed_unreported.saturating_add(lost);
    }
}
