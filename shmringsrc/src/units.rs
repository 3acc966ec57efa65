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

use crate::timestamps::{Dropped, FrameTimes, MAX_RING_TIME_NS};

/// Whether `caps` are encoded video (a ring of units).
pub(crate) fn is_encoded(caps: &gst::CapsRef) -> bool {
    caps.structure(0)
        .is_some_and(|s| matches!(s.name().as_str(), "video/x-h264" | "video/x-h265"))
}

/// The encoded caps the source can give: whatever a ring of units holds.
pub(crate) fn encoded_caps() -> gst::Caps {
    let mut caps = gst::Caps::new_empty_simple("video/x-h264");
    caps.merge(gst::Caps::new_empty_simple("video/x-h265"));
    caps
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
}

/// Moves the writer's unit times onto this pipeline's running time (see the module).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UnitClock {
    /// The writer's time of the first unit read (its DTS, else PTS), and the running
    /// time it was read at.
    base: Option<(u64, u64)>,
}

impl UnitClock {
    /// Starts again: the next unit read is the new base (a new ring).
    pub(crate) fn reset(&mut self) {
        self.base = None;
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
        let valid = |t: Option<u64>| t.filter(|&t| t <= MAX_RING_TIME_NS);
        let (pts, dts) = (valid(info.pts), valid(info.dts));
        let Some(reference) = dts.or(pts) else {
            // No writer time: stamped on arrival, in order.
            return Ok(UnitStamps {
                pts: Some(ClockTime::from_nseconds(now)),
                dts: None,
                duration: times.duration.or(caps_duration),
                times,
            });
        };
        let (writer_base, ours) = *self.base.get_or_insert((reference, now));
        let moved = |t: u64| {
            let t = i128::from(ours) + i128::from(t) - i128::from(writer_base);
            ClockTime::from_nseconds(t.clamp(0, i128::from(MAX_RING_TIME_NS)) as u64)
        };
        Ok(UnitStamps {
            pts: pts.map(moved),
            dts: dts.map(moved),
            duration: times.duration.or(caps_duration),
            times,
        })
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
    fn hostile_unit_times_are_clamped_or_ignored_never_a_panic() {
        let mut c = UnitClock::default();
        c.stamp(&info(Some(0), Some(0)), None, None).unwrap();
        for t in [u64::MAX, u64::MAX - 1, MAX_RING_TIME_NS + 1, 1 << 63] {
            let s = c.stamp(&info(Some(t), Some(t)), None, None).unwrap();
            assert_eq!(
                (s.pts, s.dts),
                (Some(ClockTime::ZERO), None),
                "{t}: on arrival"
            );
        }
        let s = c
            .stamp(&info(Some(MAX_RING_TIME_NS), None), None, None)
            .unwrap();
        assert_eq!(s.pts, Some(ClockTime::from_nseconds(MAX_RING_TIME_NS)));
        let mut c = UnitClock::default();
        c.stamp(&info(Some(MAX_RING_TIME_NS), None), None, None)
            .unwrap();
        let s = c.stamp(&info(Some(0), None), None, None).unwrap();
        assert_eq!(
            s.pts,
            Some(ClockTime::ZERO),
            "before the base: clamped at 0"
        );
        let mut bad = info(Some(0), None);
        bad.captured_at_ns = u64::MAX;
        assert!(matches!(
            c.stamp(&bad, None, None),
            Err(Dropped::Invalid(_))
        ));
    }
}
