//! Encoded video in a ring: access units of any size in one byte arena, and the
//! keyframes a reader starts from.
//!
//! A ring of units (`RingKind::Units`) keeps the descriptor table of a ring of frames,
//! one descriptor per unit (`seq % units`), but all units share payload slot 0 as a
//! byte arena. Each descriptor says where its unit lies (`payload_at`) and which
//! keyframe it depends on (`keyframe_seq`: its own sequence for a keyframe).
//!
//! The writer lays units out one after the other and starts again at byte 0 when a
//! unit does not fit before the arena's end (a unit never wraps). Before it writes over
//! bytes, it ends every older unit lying there: it stores `writing(old)` in their
//! commit words, which the SeqCst fence of `mark_next_writing` orders before the new
//! bytes. A reader copying an old unit then sees its commit word change and throws the
//! copy away: the seqlock of frames, unchanged, and the writer never waits. Units are
//! copied, never leased (a lease would pin the whole arena).
//!
//! A reader starts at a keyframe, because a decoder cannot: `newest_keyframe` for a
//! live reader, `keyframe_for` for a moment in the past, found by binary search over
//! the units' capture times (which the writer keeps from going backwards) and then the
//! unit's `keyframe_seq`: O(log n). `next_unit` then returns every unit in order, and
//! jumps to the newest keyframe when the writer has overwritten the next one.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::commit::{check_mapped, publish};
use crate::error::{Error, Result};
use crate::layout::*;
use crate::location::RingLocation;
use crate::mapping::Geometry;
use crate::reader::{Copy, Frame, Next, RingReader, MAX_TORN_RETRIES};
use crate::writer::{RingWriter, WriterConfig};
use crate::{FrameInfo, FrameMeta};

/// GStreamer's GST_BUFFER_FLAG_DELTA_UNIT: a unit that is not a keyframe.
pub const DELTA_UNIT_FLAG: u32 = 1 << 13;

/// The codec of caps named `caps_name` ("h264", "h265", as GStreamer's parsers and
/// payloaders name it) when a ring of units takes them; None for anything else. A caps
/// string's name is what comes before its first `,`.
pub fn codec_of(caps_name: &str) -> Option<&'static str> {
    match caps_name.split(',').next()?.trim() {
        "video/x-h264" => Some("h264"),
        "video/x-h265" => Some("h265"),
        _ => None,
    }
}

/// Fewest arena bytes a ring of units gets, whatever its bit rate: room for a few
/// large keyframes.
pub const MIN_ARENA: u64 = 4 << 20;

/// How a ring of units is sized: `history` of video at `bitrate`, `fps` units a second.
#[derive(Clone, Debug)]
pub struct UnitSizing {
    pub history_ns: u64,
    /// Bits a second, a hint: a stream above it keeps less history, never fails.
    pub bitrate: u64,
    /// Units a second (the caps' frame rate; see `rate_unknown` when they have none).
    pub fps: f64,
}

impl UnitSizing {
    /// Headroom over the hinted bit rate, for keyframes and a stream above its hint.
    pub const HEADROOM: f64 = 1.5;

    /// Descriptors over the history's units at the frame rate, for a stream faster
    /// than it says.
    const UNIT_MARGIN: f64 = 1.25;

    /// Descriptors besides those, for the unit being written and the newest.
    const SPARE_UNITS: u32 = 2;

    /// The rate a ring of units is sized for when its caps say none (variable, or not
    /// said): a stream up to this fast keeps its whole history.
    pub const UNKNOWN_RATE_FPS: f64 = 120.0;

    /// The rate below which `rate_unknown` never goes: the rate of most cameras.
    pub const COMMON_FPS: f64 = 30.0;

    /// The units a second to size for when the caps give no frame rate:
    /// `UNKNOWN_RATE_FPS`, or as many as a ring holds over `history_ns` (never fewer
    /// than `COMMON_FPS`), rather than a guess that halves a 60 fps stream's history.
    pub fn rate_unknown(history_ns: u64) -> f64 {
        let seconds = history_ns as f64 / 1e9;
        // Short of the most by the spares `geometry` adds and one more (the product
        // may round up past a whole number), so the geometry always fits.
        let most = f64::from(MAX_UNITS - Self::SPARE_UNITS - 1) / (seconds * Self::UNIT_MARGIN);
        Self::UNKNOWN_RATE_FPS.min(most).max(Self::COMMON_FPS)
    }

    /// The ring's geometry: units for the history at the frame rate (plus a quarter),
    /// arena bytes for it at the bit rate (plus `HEADROOM`).
    pub fn geometry(&self) -> Result<Geometry> {
        let bad = |what: String| Error::InvalidGeometry { what };
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return Err(bad(format!("{} units a second", self.fps)));
        }
        let seconds = self.history_ns as f64 / 1e9;
        let units = (seconds * self.fps * Self::UNIT_MARGIN).ceil() + f64::from(Self::SPARE_UNITS);
        if units > f64::from(MAX_UNITS) {
            return Err(bad(format!(
                "{seconds} s at {} fps is {units} units, more than the {MAX_UNITS} a ring holds",
                self.fps
            )));
        }
        let arena = seconds * self.bitrate as f64 / 8.0 * Self::HEADROOM;
        if arena > MAX_SLOT_SIZE as f64 {
            return Err(bad(format!(
                "{seconds} s at {} bit/s needs {arena} bytes, more than {MAX_SLOT_SIZE}",
                self.bitrate
            )));
        }
        Geometry::for_units(units as u32, (arena as u64).max(MIN_ARENA))
    }
}

/// Where a unit the writer still holds lies in the arena.
#[derive(Clone, Copy, Debug)]
struct Placed {
    seq: u64,
    start: u64,
    end: u64,
}

/// The writer of a ring of units.
pub struct UnitWriter {
    ring: RingWriter,
    /// The units whose bytes are intact, oldest first. They lie one after the other,
    /// from the oldest's start to `cursor`, through the arena's end and byte 0 once.
    live: VecDeque<Placed>,
    /// Where the next unit goes, unless it does not fit before the arena's end.
    cursor: u64,
    /// The last keyframe written (0: none yet).
    keyframe: u64,
    /// The last capture time written: units never go back in time.
    captured_at: u64,
    /// A unit was dropped since the last keyframe: the units that depend on it are
    /// dropped too, until the next keyframe.
    gop_broken: bool,
}

impl UnitWriter {
    /// Creates the ring of units at `loc` (or takes over a dead writer's), sized by
    /// `sizing`. `perms` and `caps` as for `WriterConfig`.
    pub fn create(
        loc: &RingLocation,
        sizing: &UnitSizing,
        perms: u32,
        caps: Option<String>,
    ) -> Result<Self> {
        let config = Self::config(perms, caps);
        let ring = RingWriter::create_as(loc, &config, sizing.geometry()?)?;
        Ok(Self::over(ring))
    }

    /// Replaces `frames`, a writer of a ring of frames, by a ring of units under the
    /// same name (`RingWriter::replace`: readers follow). On an error, `frames` comes
    /// back as it was: its ring still live, written and read.
    pub fn replacing(
        mut frames: RingWriter,
        sizing: &UnitSizing,
        perms: u32,
        caps: Option<String>,
    ) -> std::result::Result<Self, Box<(Error, RingWriter)>> {
        let geom = match sizing.geometry() {
            Ok(g) => g,
            Err(e) => return Err(Box::new((e, frames))),
        };
        match frames.replace_as(&Self::config(perms, caps), geom) {
            Ok(()) => Ok(Self::over(frames)),
            Err(e) => Err(Box::new((e, frames))),
        }
    }

    /// The writer of the ring, to replace it by a ring of frames
    /// (`RingWriter::replace`) once that has worked.
    pub fn into_ring(self) -> RingWriter {
        self.ring
    }

    fn config(perms: u32, caps: Option<String>) -> WriterConfig {
        WriterConfig {
            slots: MIN_SLOTS,
            perms,
            caps,
            spares: 0,
            loans: 0,
            ..Default::default()
        }
    }

    fn over(ring: RingWriter) -> Self {
        UnitWriter {
            ring,
            live: VecDeque::new(),
            cursor: 0,
            keyframe: 0,
            captured_at: 0,
            gop_broken: false,
        }
    }

    /// The ring (caps, state, handles, counters).
    pub fn ring(&self) -> &RingWriter {
        &self.ring
    }

    pub fn ring_mut(&mut self) -> &mut RingWriter {
        &mut self.ring
    }

    /// The arena's size: the largest unit the ring takes.
    pub fn arena(&self) -> u64 {
        self.ring.geom.slot_stride
    }

    /// Writes one unit: a keyframe unless `meta.flags` has `DELTA_UNIT_FLAG`. Ends the
    /// oldest units whose bytes or descriptor it takes. Never waits. Returns its
    /// sequence; None when it was dropped because a unit it depends on was (larger
    /// than the arena): no reader could decode it.
    pub fn write(&mut self, meta: &FrameMeta, data: &[u8]) -> Result<Option<u64>> {
        let keyframe = meta.flags & DELTA_UNIT_FLAG == 0;
        if keyframe {
            self.gop_broken = false;
        } else if self.gop_broken {
            return Ok(None);
        }
        let written = self.write_unit(meta, data, keyframe);
        if written.is_err() {
            self.gop_broken = true;
        }
        written.map(Some)
    }

    fn write_unit(&mut self, meta: &FrameMeta, data: &[u8], keyframe: bool) -> Result<u64> {
        let (map, geom) = (&self.ring.map, self.ring.geom);
        check_mapped(map, self.ring.loc.path())?;
        if geom.kind != RingKind::Units {
            // `ring_mut().replace()` made it a ring of frames.
            return Err(Error::InvalidGeometry {
                what: "units go to a ring of units, and this one holds frames".into(),
            });
        }
        let len = data.len() as u64;
        // An empty unit still takes a byte, so that every unit has a place of its own
        // and the units a write covers are always the oldest.
        let room = len.max(1);
        let arena = geom.slot_stride;
        if room > arena {
            return Err(Error::FrameTooLarge {
                len,
                capacity: arena,
            });
        }
        let wraps = self.cursor + room > arena;
        let at = if wraps { 0 } else { self.cursor };
        while let Some(old) = self.live.front().copied() {
            let takes_descriptor = self.live.len() >= geom.slot_count as usize;
            // On a wrap, the units between the cursor and the arena's end go too, so
            // that the live units stay one run (their bytes are not overwritten, but
            // they are the oldest and fewer than one unit's worth of bytes).
            let left_behind = wraps && old.start >= self.cursor;
            let overlaps = old.start < at + room && old.end > at;
            if !(takes_descriptor || left_behind || overlaps) {
                break;
            }
            self.live.pop_front();
            let d = map.descriptor(&geom, geom.slot_of(old.seq));
            // Relaxed: ordered before the new unit's bytes by mark_next_writing's
            // SeqCst fence below, as the frames' own `writing(seq)` store is. Pairs with
            // a reader's Acquire fence and commit-word re-check after its copy.
            let _ = d.commit.compare_exchange(
                committed(old.seq),
                writing(old.seq),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        let (seq, index) = self.ring.mark_next_writing();
        // SAFETY: we are the lock-holding writer on a read-write mapping, and the &mut
        // borrow of self keeps this the only view of the arena in this process.
        let payload = unsafe { map.payload_mut(&geom, 0) };
        payload[at as usize..(at + len) as usize].copy_from_slice(data);
        if keyframe {
            self.keyframe = seq;
        }
        let mut meta = meta.clone();
        let captured_at = meta.captured_at_ns.unwrap_or_else(crate::sys::realtime_ns);
        self.captured_at = self.captured_at.max(captured_at);
        meta.captured_at_ns = Some(self.captured_at);
        let d = map.descriptor(&geom, index);
        // Relaxed: ordered before the commit word's Release store in `publish`.
        d.payload_at.store(at, Ordering::Relaxed);
        d.keyframe_seq.store(self.keyframe, Ordering::Relaxed);
        publish(map, &geom, index, seq, 0, &meta, len)?;
        self.live.push_back(Placed {
            seq,
            start: at,
            end: at + room,
        });
        self.cursor = at + room;
        Ok(seq)
    }
}

/// Whether `info` is a keyframe by its descriptor: its own keyframe, not a delta unit.
pub fn is_keyframe(info: &FrameInfo) -> bool {
    info.keyframe_seq == info.seq && info.flags & DELTA_UNIT_FLAG == 0
}

impl RingReader {
    /// Whether the ring holds encoded units rather than frames.
    pub fn holds_units(&self) -> bool {
        self.geom.kind == RingKind::Units
    }

    /// The keyframe `info` depends on, if the ring still holds it as a keyframe.
    fn keyframe_of(&self, info: &FrameInfo) -> Result<Option<u64>> {
        if info.keyframe_seq == 0 {
            return Ok(None);
        }
        Ok(self
            .peek(info.keyframe_seq)?
            .filter(is_keyframe)
            .map(|k| k.seq))
    }

    /// The oldest unit the ring holds when its head is `head`: the units the writer
    /// ended are the oldest, so a binary search finds it. `head + 1` when none.
    fn oldest_unit(&self, head: u64) -> Result<u64> {
        let (mut lo, mut hi) = (self.geom.oldest_held(head), head.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.peek(mid)?.is_some() {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// The first keyframe the ring holds from unit `seq` to `head` (one GOP of
    /// descriptors looked at; at most the ring's, when it holds no keyframe).
    fn keyframe_from(&self, seq: u64, head: u64) -> Result<Option<u64>> {
        let from = seq.max(self.oldest_unit(head)?);
        let to = head.min(from.saturating_add(u64::from(self.geom.slot_count)));
        for s in from..=to {
            if self.peek(s)?.as_ref().is_some_and(is_keyframe) {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// The keyframe unit `seq` depends on, if the ring still holds both: where a
    /// decoder must start to show it.
    pub fn keyframe_of_unit(&self, seq: u64) -> Result<Option<u64>> {
        match self.peek(seq)? {
            Some(info) => self.keyframe_of(&info),
            None => Ok(None),
        }
    }

    /// The newest keyframe the ring holds, where a live reader starts.
    pub fn newest_keyframe(&self) -> Result<Option<u64>> {
        let head = self.head().min(MAX_SEQ);
        match self.peek(head)? {
            Some(info) => self.keyframe_of(&info),
            None => Ok(None),
        }
    }

    /// The keyframe to start from to show the moment `captured_at_ns` (wall clock):
    /// the one at or before it; or, when the ring no longer holds that one (or the
    /// moment is older than its history), the oldest keyframe it holds after. None if
    /// it holds none. O(log n): a binary search over capture times, which never go
    /// back in a ring of units, then the unit's keyframe.
    pub fn keyframe_for(&self, captured_at_ns: u64) -> Result<Option<u64>> {
        let head = self.head().min(MAX_SEQ);
        if head == 0 {
            return Ok(None);
        }
        let oldest = self.geom.oldest_held(head);
        // Every unit below `lo` is gone or captured at or before the moment; none from
        // `hi` on is. Gone units are the oldest (the arena ends them first).
        let (mut lo, mut hi) = (oldest, head + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let before = self
                .peek(mid)?
                .is_none_or(|i| i.captured_at_ns <= captured_at_ns);
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let at = lo.saturating_sub(1).max(oldest);
        if let Some(info) = self.peek(at)? {
            if info.captured_at_ns <= captured_at_ns {
                if let Some(k) = self.keyframe_of(&info)? {
                    return Ok(Some(k));
                }
            }
        }
        self.keyframe_from(at, head)
    }

    /// The next unit in order, copied into `alloc`'s buffer. A reader that has read
    /// nothing yet (or was `seek_after` 0) starts at the newest keyframe. When the unit
    /// it wants is gone (the writer overwrote it), it jumps to the newest keyframe and
    /// says how many units it skipped in `missed`; until a keyframe comes, it waits.
    pub fn next_unit<B: AsMut<[u8]>>(
        &mut self,
        timeout: Duration,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Next<B>> {
        let next = self.unit_with(timeout, |r, seq| r.copy(seq, &mut alloc))?;
        Ok(self.noted(next))
    }

    /// The read of `next_unit`: `take` copies or claims the unit. The reader's progress
    /// is the caller's to publish.
    pub(crate) fn unit_with<O>(
        &mut self,
        timeout: Duration,
        mut take: impl FnMut(&RingReader, u64) -> Result<Copy<O>>,
    ) -> Result<Next<O>> {
        let deadline = Instant::now() + timeout;
        let previous = self.last;
        // Beyond MAX_SEQ only for a hostile head, which `wait_beyond` refuses.
        let mut want = previous.saturating_add(1);
        let sought = std::mem::take(&mut self.unit_sought);
        // A unit claimed and lost in its copy (`claim_torn`) is a unit lost here too,
        // until a keyframe is read: the units after it cannot be decoded without it.
        let mut need_keyframe = (previous == 0 && !sought) || self.unit_lost;
        let mut retries = 0;
        loop {
            if need_keyframe {
                match self.newest_keyframe()? {
                    // Once at a keyframe, only a lost unit brings us back here.
                    Some(k) if k >= want || previous == 0 => want = k,
                    _ => {
                        // None held yet (or none newer than what we lost): wait for
                        // the writer's next unit, then look again.
                        let head = self.head();
                        if let Err(other) = self.wait_beyond::<O>(head, deadline)? {
                            return Ok(other);
                        }
                        continue;
                    }
                }
            }
            if let Err(other) = self.wait_beyond::<O>(want - 1, deadline)? {
                return Ok(other);
            }
            match take(self, want)? {
                Copy::Ok(info, data) => {
                    let skipped = match previous {
                        0 => 0,
                        _ => want.saturating_sub(previous + 1),
                    };
                    let missed =
                        skipped.saturating_add(std::mem::take(&mut self.missed_unreported));
                    self.last = want;
                    self.unit_lost = false;
                    return Ok(Next::Frame(Frame {
                        info,
                        data,
                        missed,
                        torn_retries: retries,
                    }));
                }
                // Gone (overwritten, or ended for its bytes), or changed while we
                // copied it: this reader fell behind by more than the ring holds.
                Copy::Newer | Copy::Older | Copy::Torn => {
                    retries += 1;
                    want = want.saturating_add(1);
                    need_keyframe = true;
                    if retries >= MAX_TORN_RETRIES && Instant::now() >= deadline {
                        return Ok(Next::TimedOut);
                    }
                }
            }
        }
    }
}

/// What a ring of units holds now: its bit rate, GOP and history.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UnitStats {
    /// Bits a second over the newest units (at most `BITRATE_UNITS`), by capture time.
    pub bitrate: f64,
    /// Units from the keyframe before the newest one to the newest (None: fewer than
    /// two keyframes held).
    pub gop: Option<u64>,
    /// Capture time from the oldest unit held to the newest.
    pub history_ns: u64,
    /// Units held.
    pub units: u64,
}

/// Units the bit rate of `unit_stats` is measured over.
pub const BITRATE_UNITS: u64 = 300;

impl RingReader {
    /// What the ring of units holds now (None for a ring of frames). Descriptors
    /// only: O(log n + `BITRATE_UNITS`).
    pub fn unit_stats(&self) -> Result<Option<UnitStats>> {
        if !self.holds_units() {
            return Ok(None);
        }
        let head = self.head().min(MAX_SEQ);
        let Some(newest) = self.peek(head)? else {
            return Ok(Some(UnitStats::default()));
        };
        let lo = self.oldest_unit(head)?.min(head);
        let history_ns = match self.peek(lo)? {
            Some(oldest) => newest.captured_at_ns.saturating_sub(oldest.captured_at_ns),
            None => 0,
        };
        let from = head.saturating_sub(BITRATE_UNITS - 1).max(lo);
        let mut bitrate = 0.0;
        if let (Some(start), true) = (self.peek(from)?, from < head) {
            let mut bytes = 0u64;
            for seq in from + 1..=head {
                bytes = bytes.saturating_add(self.peek(seq)?.map_or(0, |i| i.len));
            }
            let span = newest.captured_at_ns.saturating_sub(start.captured_at_ns);
            if span > 0 {
                bitrate = bytes as f64 * 8.0 * 1e9 / span as f64;
            }
        }
        let k1 = newest.keyframe_seq;
        let k0 = match k1 {
            0 | 1 => None,
            _ => self.peek(k1 - 1)?.map(|i| i.keyframe_seq),
        };
        Ok(Some(UnitStats {
            bitrate,
            gop: k0.filter(|&k0| k0 > 0 && k0 < k1).map(|k0| k1 - k0),
            history_ns,
            units: head - lo + 1,
        }))
    }
}

#[cfg(test)]
mod tests;
