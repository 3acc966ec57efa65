//! Encoded video from a ring of units: caps, the stamps of access units, and their
//! keyframe flag.
//!
//! A decoder or a muxer needs every unit from a keyframe on, with the writer's own
//! decoding order and the distance between its PTS and DTS (B-frames). So a unit's
//! buffer keeps the writer's PTS and DTS, moved as one onto this pipeline's running
//! time: the first unit read lands at the running time it was read at, and later units
//! keep their distance from it. `timestamps=capture` does not apply; the capture time
//! travels in the reference timestamp meta as for frames.

use gst::prelude::*;
use gst::ClockTime;
use shmring_common::FrameInfo;

use crate::timestamps::{Dropped, FrameTimes, Stamper, MAX_RING_TIME_NS};

/// Whether `caps` are encoded video (a ring of units).
pub(crate) fn is_encoded(caps: &gst::CapsRef) -> bool {
    caps.structure(0)
        .is_some_and(|s| shmring_common::codec_of(s.name()).is_some())
}

/// The encoded caps the source can give: whatever a ring of units holds.
pub(crate) fn encoded_caps() -> gst::Caps {
    let mut caps = gst::Caps::new_empty_simple("video/x-h264");
    caps.merge(gst::Caps::new_empty_simple("video/x-h265"));
    caps
}

/// The writer's time (DTS, else PTS) of the newest unit `reader` holds.
pub(crate) fn newest_time(reader: &shmring_common::RingReader) -> Option<u64> {
    let info = reader.peek(reader.head()).ok()??;
    info.dts.or(info.pts)
}

/// The duration of one unit by the caps' frame rate, if they say one.
pub(crate) fn unit_duration(caps: &gst::CapsRef) -> Option<ClockTime> {
    let fps = caps.structure(0)?.get::<gst::Fraction>("framerate").ok()?;
    (fps.numer() > 0 && fps.denom() > 0)
        .then(|| ClockTime::SECOND.mul_div_floor(fps.denom() as u64, fps.numer() as u64))
        .flatten()
}

/// The stamps of one unit's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UnitStamps {
    pub pts: Option<ClockTime>,
    pub dts: Option<ClockTime>,
    pub duration: Option<ClockTime>,
    pub times: FrameTimes,
    /// A unit before the one a live reader started at: to decode, not to show.
    pub decode_only: bool,
    /// The writer's times jumped (or went back): the stamps start again from now.
    pub discont: bool,
}

/// How far the writer's times may jump between two units read before they are taken
/// as a new start (a writer that flushed, reconnected, or wrote nonsense).
const MAX_JUMP_NS: u64 = 10_000_000_000;

/// Moves the writer's unit times onto this pipeline's running time (see the module).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UnitClock {
    /// A writer time and the running time it maps to.
    base: Option<(u64, u64)>,
    /// A live reader: the writer time of the newest unit when it started, which maps to
    /// the running time of its first buffer; the units before it only prime the decoder.
    live_from: Option<u64>,
    /// The writer time of the last unit stamped, and the end of the last stamp given.
    last_writer: Option<u64>,
    last_out: u64,
}

impl UnitClock {
    /// Starts again: the next unit read is the new base (a new ring, a requested GOP).
    pub(crate) fn reset(&mut self) {
        self.base = None;
        self.live_from = None;
        self.last_writer = None;
    }

    /// A live reader starting now: `newest` (the writer time of the newest unit held)
    /// is stamped with the running time the first buffer leaves at, so that a sink
    /// shows live units on time; the units from the keyframe before it are
    /// `decode_only`.
    pub(crate) fn start_live(&mut self, newest: Option<u64>) {
        self.reset();
        self.live_from = newest.filter(|&t| t <= MAX_RING_TIME_NS);
    }

    /// The stamps of `info`'s buffer, read at running time `now`.
    pub(crate) fn stamp(
        &mut self,
        info: &FrameInfo,
        now: Option<ClockTime>,
        caps_duration: Option<ClockTime>,
    ) -> Result<UnitStamps, Dropped> {
        let times = FrameTimes::of(info)?;
        let now = now.map_or(0, ClockTime::nseconds);
        let duration = Stamper::nominal(times.duration, caps_duration);
        let valid = |t: Option<u64>| t.filter(|&t| t <= MAX_RING_TIME_NS);
        let (pts, dts) = (valid(info.pts), valid(info.dts));
        let Some(reference) = dts.or(pts) else {
            // No writer time: stamped on arrival, in order.
            let at = now.max(self.last_out);
            self.last_out = at;
            return Ok(UnitStamps {
                pts: Some(ClockTime::from_nseconds(at)),
                dts: None,
                duration,
                times,
                decode_only: false,
                discont: false,
            });
        };
        let jumped = self
            .last_writer
            .is_some_and(|last| reference.abs_diff(last) > MAX_JUMP_NS);
        if jumped {
            self.base = None;
            self.live_from = None;
        }
        self.last_writer = Some(reference);
        let live_from = self.live_from.filter(|&t| t >= reference);
        // A new base never stamps behind what went out already.
        let (writer_base, ours) = *self
            .base
            .get_or_insert((live_from.unwrap_or(reference), now.max(self.last_out)));
        let moved = |t: u64| {
            let t = i128::from(ours) + i128::from(t) - i128::from(writer_base);
            ClockTime::from_nseconds(t.clamp(0, i128::from(MAX_RING_TIME_NS)) as u64)
        };
        let stamps = UnitStamps {
            pts: pts.map(moved),
            dts: dts.map(moved),
            duration,
            times,
            decode_only: live_from.is_some_and(|t| reference < t),
            discont: jumped,
        };
        let end = stamps.dts.or(stamps.pts).map_or(0, ClockTime::nseconds);
        self.last_out = self.last_out.max(end);
        Ok(stamps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pts: Option<u64>, dts: Option<u64>) -> FrameInfo {
        FrameInfo {
            seq: 1,
            epoch: 1,
            len: 0,
            payload_index: 0,
            payload_at: 0,
            keyframe_seq: 1,
            caps_version: 1,
            pts,
            dts,
            duration: None,
            captured_at_ns: 1_000,
            commit_mono_ns: 0,
            flags: 0,
            video: Default::default(),
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn units_keep_the_writers_distances_from_the_first_one_read() {
        let mut c = UnitClock::default();
        let now = Some(ClockTime::from_seconds(5));
        // The first unit read: DTS 100 ms, PTS 180 ms (B-frames), read at 5 s.
        let s = c
            .stamp(&info(Some(180 * MS), Some(100 * MS)), now, None)
            .unwrap();
        assert_eq!(s.dts, Some(ClockTime::from_mseconds(5_000)));
        assert_eq!(s.pts, Some(ClockTime::from_mseconds(5_080)));
        // Later units, whenever read, keep their distance.
        let later = Some(ClockTime::from_seconds(9));
        let s = c
            .stamp(&info(Some(140 * MS), Some(133 * MS)), later, None)
            .unwrap();
        assert_eq!(s.dts, Some(ClockTime::from_mseconds(5_033)));
        assert_eq!(s.pts, Some(ClockTime::from_mseconds(5_040)));
        c.reset();
        let s = c.stamp(&info(Some(0), None), later, None).unwrap();
        assert_eq!(s.pts, Some(ClockTime::from_seconds(9)));
    }

    #[test]
    fn a_live_reader_shows_the_newest_unit_now_and_only_decodes_those_before() {
        let mut c = UnitClock::default();
        // The keyframe is 1.5 s older than the newest unit held.
        c.start_live(Some(1_600 * MS));
        let now = Some(ClockTime::from_seconds(3));
        let key = c
            .stamp(&info(Some(100 * MS), Some(100 * MS)), now, None)
            .unwrap();
        assert!(key.decode_only);
        assert_eq!(key.dts, Some(ClockTime::from_mseconds(1_500)));
        let newest = c
            .stamp(&info(Some(1_600 * MS), Some(1_600 * MS)), now, None)
            .unwrap();
        assert!(!newest.decode_only);
        assert_eq!(newest.dts, now, "on time, not 1.5 s late");
        let next = c
            .stamp(&info(Some(1_633 * MS), Some(1_633 * MS)), now, None)
            .unwrap();
        assert!(!next.decode_only);
        assert_eq!(next.dts, Some(ClockTime::from_mseconds(3_033)));
    }

    #[test]
    fn hostile_unit_times_are_clamped_or_ignored_never_a_panic() {
        let mut c = UnitClock::default();
        c.stamp(&info(Some(0), Some(0)), None, None).unwrap();
        for t in [u64::MAX, u64::MAX - 1, MAX_RING_TIME_NS + 1, 1 << 63] {
            let s = c.stamp(&info(Some(t), Some(t)), None, None).unwrap();
            assert_eq!(s.dts, None, "{t}: ignored");
            assert!(s.pts.is_some(), "{t}: stamped on arrival");
        }
        // A writer time 292 years on is a jump: stamped from now, not in 2318.
        let now = Some(ClockTime::from_seconds(7));
        let s = c
            .stamp(&info(Some(MAX_RING_TIME_NS), None), now, None)
            .unwrap();
        assert_eq!(s.pts, now);
        assert!(s.discont);
        // And back again: never behind what went out.
        let s = c
            .stamp(&info(Some(0), None), Some(ClockTime::from_seconds(1)), None)
            .unwrap();
        assert_eq!(s.pts, now);
        assert!(s.discont);
        // A duration from the ring is at most a second.
        let mut long = info(Some(5), None);
        long.duration = Some(1 << 62);
        let s = c.stamp(&long, now, None).unwrap();
        assert_eq!(s.duration, Some(ClockTime::SECOND));
        let mut bad = info(Some(0), None);
        bad.captured_at_ns = u64::MAX;
        assert!(matches!(
            c.stamp(&bad, None, None),
            Err(Dropped::Invalid(_))
        ));
    }
}
