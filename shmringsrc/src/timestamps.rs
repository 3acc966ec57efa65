//! How `shmringsrc` stamps its buffers: the times a frame brings from the ring,
//! checked once here, and the PTS and duration each buffer leaves with
//! (`timestamps=arrival` or `capture`, `max-age`, clamping).
//!
//! Every time read from a ring is untrusted: another process wrote it. They are turned
//! into `gst::ClockTime`s here and nowhere else, with checked conversions, so that no
//! later code can hand `u64::MAX` (`GST_CLOCK_TIME_NONE`) to an API that asserts, and a
//! frame's duration cannot carry the stamps of every later buffer away from the clock.

use gst::ClockTime;
use shmring_common::FrameInfo;

/// The shortest duration a buffer of a burst gets (see [`Stamper::arrival`]).
const MIN_BURST_DURATION: ClockTime = ClockTime::from_mseconds(1);

/// How far ahead of the clock a burst may be stamped when frames come faster than their
/// duration, and the longest duration a buffer is given: a frame's own duration and the
/// caps' frame rate both come from the ring, and neither may push the stamps of later
/// buffers away from the clock.
const MAX_LEAD: ClockTime = ClockTime::SECOND;

/// The largest time a ring may carry: GStreamer computes running times as signed
/// 64-bit numbers, so a time beyond `i64::MAX` ns (the year 2262) means nothing to it.
pub(crate) const MAX_RING_TIME_NS: u64 = i64::MAX as u64;

/// The largest `max-age`: a latency of an hour is already more than any sink should
/// wait.
pub(crate) const MAX_MAX_AGE_NS: u64 = 3_600 * 1_000_000_000;

/// A frame's times from the ring, converted and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameTimes {
    /// Wall-clock capture time (ns since the Unix epoch).
    pub captured_at: ClockTime,
    /// The writer's PTS, when it had one that GStreamer can express.
    pub writer_pts: Option<ClockTime>,
    /// The writer's duration of the frame, when it had one.
    pub duration: Option<ClockTime>,
}

/// Why a frame does not leave the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// A value read from the ring is out of range: counted as `invalid`.
    Invalid(String),
    /// Captured more than `max-age` ago (`timestamps=capture`): counted as `too-late`.
    TooLate { age: ClockTime, max_age: ClockTime },
}

impl Dropped {
    /// The status of a `shmringsrc-handle` message for a requested frame dropped so.
    pub(crate) fn status(&self) -> &'static str {
        match self {
            Dropped::Invalid(_) => "invalid-frame",
            Dropped::TooLate { .. } => "too-late",
        }
    }

    pub(crate) fn reason(&self) -> String {
        match self {
            Dropped::Invalid(why) => why.clone(),
            Dropped::TooLate { age, max_age } => format!(
                "captured {} ms ago, more than max-age ({} ms)",
                age.mseconds(),
                max_age.mseconds()
            ),
        }
    }
}

/// A time from the ring as a clock time, or None when GStreamer could not use it.
fn ring_time(ns: u64) -> Option<ClockTime> {
    (ns <= MAX_RING_TIME_NS).then(|| ClockTime::from_nseconds(ns))
}

impl FrameTimes {
    /// The times of `info`, or why the frame cannot be stamped. A PTS or duration out of
    /// range is dropped (the frame goes on without it); a capture time out of range
    /// drops the frame, since every frame of a ring has one.
    pub(crate) fn of(info: &FrameInfo) -> Result<FrameTimes, Dropped> {
        let captured_at = ring_time(info.captured_at_ns).ok_or_else(|| {
            Dropped::Invalid(format!(
                "frame {} has capture time {} ns, beyond {MAX_RING_TIME_NS}",
                info.seq, info.captured_at_ns
            ))
        })?;
        Ok(FrameTimes {
            captured_at,
            writer_pts: info.pts.and_then(ring_time),
            duration: info.duration.and_then(ring_time),
        })
    }
}

/// Where the last buffer ended, so that the next one never starts before it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stamper {
    /// The end of the last buffer output, [pts, pts + duration): the next one starts no
    /// earlier, so a burst (a sequential backlog) never overlaps.
    next_pts: Option<ClockTime>,
}

impl Stamper {
    /// The duration a frame is given: its own, else the caps' frame duration, at most
    /// [`MAX_LEAD`].
    pub(crate) fn nominal(frame: Option<ClockTime>, caps: Option<ClockTime>) -> Option<ClockTime> {
        frame.or(caps).map(|d| d.min(MAX_LEAD))
    }

    /// `timestamps=arrival`: the running time when the buffer leaves, or the end of
    /// the previous buffer when frames come faster than their duration. A buffer
    /// stamped ahead of the clock that way is made shorter by its lead, so that the
    /// stamps come back to the clock instead of running ahead of it for good (a camera
    /// a little faster than its nominal rate would otherwise push them further every
    /// frame), and the lead is bounded, so that no duration can stamp buffers far in
    /// the future.
    pub(crate) fn arrival(
        &mut self,
        now: Option<ClockTime>,
        frame_duration: Option<ClockTime>,
        caps_duration: Option<ClockTime>,
    ) -> (Option<ClockTime>, Option<ClockTime>) {
        let nominal = Self::nominal(frame_duration, caps_duration);
        let pts = match (now, self.next_pts) {
            (Some(now), Some(next)) => Some(now.max(next.min(now.saturating_add(MAX_LEAD)))),
            (now, next) => now.or(next),
        };
        let lead = match (pts, now) {
            (Some(pts), Some(now)) => pts.saturating_sub(now),
            _ => ClockTime::ZERO,
        };
        let duration = nominal.map(|d| d.saturating_sub(lead).max(MIN_BURST_DURATION.min(d)));
        self.next_pts = pts.map(|p| p.saturating_add(duration.unwrap_or(ClockTime::ZERO)));
        (pts, duration)
    }

    /// `timestamps=capture`: the frame's capture on the pipeline clock (now, less how
    /// long ago it was captured by the wall clock), never before the buffer before it.
    /// A frame captured more than `max_age` ago is dropped: the latency the source
    /// reports would not let it reach a sink in time. A frame from the future (clocks
    /// apart) is stamped on arrival.
    pub(crate) fn capture(
        &mut self,
        now: Option<ClockTime>,
        wall_now: ClockTime,
        captured_at: ClockTime,
        max_age: ClockTime,
    ) -> Result<Option<ClockTime>, Dropped> {
        let age = wall_now.saturating_sub(captured_at);
        if age > max_age {
            return Err(Dropped::TooLate { age, max_age });
        }
        let captured = now.map(|n| n.saturating_sub(age));
        let pts = match (captured, self.next_pts) {
            (Some(c), Some(last)) => Some(c.max(last)),
            (c, _) => c,
        };
        self.next_pts = pts;
        Ok(pts)
    }
}

/// The latency the source reports: (min, max). Timestamped at output, frames carry no
/// capture delay of the source's (the capture time travels in the timestamp/x-unix
/// meta); what it can hold back is one frame, or the whole ring in sequential mode.
/// Timestamped at capture, a frame leaves up to max-age after its timestamp: sinks must
/// wait that long. A max that does not fit a clock time is unbounded (None).
pub(crate) fn latency(
    frame: ClockTime,
    held_frames: u32,
    capture: bool,
    max_age: ClockTime,
) -> (ClockTime, Option<ClockTime>) {
    let min = if capture { max_age } else { ClockTime::ZERO };
    let held = frame
        .nseconds()
        .checked_mul(u64::from(held_frames.max(1)))
        .and_then(|h| min.nseconds().checked_add(h))
        .filter(|max| *max <= MAX_RING_TIME_NS)
        .map(ClockTime::from_nseconds);
    (min, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: ClockTime = ClockTime::MSECOND;
    const FRAME: ClockTime = ClockTime::from_nseconds(33_333_333);

    fn info(captured_at_ns: u64, pts: Option<u64>, duration: Option<u64>) -> FrameInfo {
        FrameInfo {
            seq: 7,
            epoch: 1,
            len: 0,
            payload_index: 0,
            payload_at: 0,
            keyframe_seq: 0,
            caps_version: 1,
            pts,
            dts: None,
            duration,
            captured_at_ns,
            commit_mono_ns: 0,
            flags: 0,
            video: Default::default(),
        }
    }

    #[test]
    fn times_beyond_range_are_refused_or_dropped() {
        for bad in [MAX_RING_TIME_NS + 1, 1 << 63, u64::MAX - 1, u64::MAX] {
            let sut = FrameTimes::of(&info(bad, None, None));
            assert!(matches!(sut, Err(Dropped::Invalid(_))), "{bad}: {sut:?}");
            let sut = FrameTimes::of(&info(5, Some(bad), Some(bad))).unwrap();
            assert_eq!(sut.writer_pts, None);
            assert_eq!(sut.duration, None);
        }
        for good in [0, 1, MAX_RING_TIME_NS] {
            let sut = FrameTimes::of(&info(good, Some(good), Some(good))).unwrap();
            assert_eq!(sut.captured_at.nseconds(), good);
            assert_eq!(sut.writer_pts.map(ClockTime::nseconds), Some(good));
        }
    }

    #[test]
    fn arrival_follows_the_clock() {
        let mut sut = Stamper::default();
        let mut now = ClockTime::SECOND;
        for _ in 0..10 {
            let (pts, dur) = sut.arrival(Some(now), Some(FRAME), Some(FRAME));
            assert_eq!(pts, Some(now));
            assert_eq!(dur, Some(FRAME));
            now += FRAME;
        }
    }

    #[test]
    fn a_burst_is_stamped_back_to_back_then_returns_to_the_clock() {
        let mut sut = Stamper::default();
        let now = ClockTime::SECOND;
        let (p1, d1) = sut.arrival(Some(now), None, Some(FRAME));
        let (p2, d2) = sut.arrival(Some(now), None, Some(FRAME));
        assert_eq!(p2, Some(p1.unwrap() + d1.unwrap()));
        assert_eq!(d2, Some(MIN_BURST_DURATION));
        let (p3, _) = sut.arrival(Some(now + 10 * FRAME), None, Some(FRAME));
        assert_eq!(p3, Some(now + 10 * FRAME));
    }

    #[test]
    fn a_huge_duration_cannot_carry_stamps_away() {
        for hostile in [1u64 << 62, MAX_RING_TIME_NS, 3_600_000_000_000] {
            let mut sut = Stamper::default();
            let mut now = ClockTime::SECOND;
            let mut last = ClockTime::ZERO;
            for _ in 0..100 {
                let (pts, dur) = sut.arrival(
                    Some(now),
                    Some(ClockTime::from_nseconds(hostile)),
                    Some(FRAME),
                );
                let pts = pts.unwrap();
                assert!(pts >= last, "{hostile}: PTS went backwards");
                assert!(pts <= now + MAX_LEAD, "{hostile}: {pts} far ahead of {now}");
                assert!(dur.unwrap() <= MAX_LEAD, "{hostile}: duration {dur:?}");
                last = pts;
                now += FRAME;
            }
        }
    }

    #[test]
    fn durations_are_a_second_at_most_whatever_the_ring_says() {
        let five = 5 * ClockTime::SECOND;
        let rate_1_per_68_years = ClockTime::from_seconds(2_147_483_647);
        for (frame, caps) in [
            (Some(five), Some(five)),
            (None, Some(rate_1_per_68_years)),
            (Some(rate_1_per_68_years), None),
        ] {
            let mut sut = Stamper::default();
            let mut now = ClockTime::SECOND;
            for _ in 0..10 {
                let (pts, dur) = sut.arrival(Some(now), frame, caps);
                assert_eq!(dur, Some(MAX_LEAD), "{frame:?} {caps:?}");
                assert_eq!(pts, Some(now), "{frame:?} {caps:?}");
                // Frames as slow as they claim: each is stamped on the clock.
                now += five;
            }
        }
    }

    #[test]
    fn capture_never_goes_backwards_and_drops_old_frames() {
        let mut sut = Stamper::default();
        let wall = ClockTime::from_seconds(1_700_000_000);
        let now = Some(10 * ClockTime::SECOND);
        let max_age = 200 * MS;
        let p1 = sut.capture(now, wall, wall - 50 * MS, max_age).unwrap();
        assert_eq!(p1, Some(10 * ClockTime::SECOND - 50 * MS));
        // Captured earlier than the last: stamped at the last, not before.
        let p2 = sut.capture(now, wall, wall - 100 * MS, max_age).unwrap();
        assert_eq!(p2, p1);
        // From the future: stamped now.
        let p3 = sut.capture(now, wall, ClockTime::MAX, max_age).unwrap();
        assert_eq!(p3, now);
        let old = sut.capture(now, wall, wall - 300 * MS, max_age);
        assert_eq!(
            old,
            Err(Dropped::TooLate {
                age: 300 * MS,
                max_age
            })
        );
        // A capture at time 0 is decades old.
        assert!(sut.capture(now, wall, ClockTime::ZERO, max_age).is_err());
    }

    #[test]
    fn latency_never_overflows() {
        let (min, max) = latency(FRAME, 15, false, 200 * MS);
        assert_eq!(min, ClockTime::ZERO);
        assert_eq!(max, Some(FRAME * 15));
        let (min, max) = latency(FRAME, 1, true, 200 * MS);
        assert_eq!((min, max), (200 * MS, Some(200 * MS + FRAME)));
        // framerate=1/2147483647 in a 1024-slot ring: unbounded, never max < min.
        let huge = ClockTime::from_seconds(2_147_483_647);
        let (min, max) = latency(huge, 1024, true, ClockTime::from_nseconds(MAX_MAX_AGE_NS));
        assert_eq!(min.nseconds(), MAX_MAX_AGE_NS);
        assert_eq!(max, None);
        let (_, max) = latency(huge, 9, false, ClockTime::ZERO);
        assert!(max.is_none_or(|m| m >= huge));
    }
}
