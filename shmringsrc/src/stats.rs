//! The counters behind the `stats` property, and the helpers that count.

use crate::imp::ShmRingSrc;
use crate::timestamps::Dropped;
use crate::Mode;

#[derive(Default, Debug)]
pub(crate) struct Stats {
    pub(crate) received: u64,
    pub(crate) skipped: u64,
    pub(crate) lost: u64,
    pub(crate) torn_retries: u64,
    pub(crate) zero_copy: u64,
    pub(crate) into_ring: u64,
    pub(crate) reattaches: u64,
    pub(crate) timeouts: u64,
    pub(crate) handles_delivered: u64,
    pub(crate) handles_gone: u64,
    pub(crate) handles_not_yet: u64,
    pub(crate) handles_invalid: u64,
    /// Frames older than max-age with timestamps=capture, dropped.
    pub(crate) too_late: u64,
    /// Frames whose values from the ring are out of range, dropped.
    pub(crate) invalid: u64,
    /// Times a reader of encoded units fell behind by more than the ring holds and
    /// jumped to the newest keyframe.
    pub(crate) keyframe_jumps: u64,
}

impl Stats {
    /// Frames that did not reach this source: skipped in `latest` mode (the newest was
    /// taken), lost in the others.
    pub(crate) fn missed(&mut self, mode: Mode, missed: u64) {
        match mode {
            Mode::Latest => self.skipped = self.skipped.saturating_add(missed),
            _ => self.lost = self.lost.saturating_add(missed),
        }
    }

    /// A frame that left the source, after `missed` that did not reach it.
    pub(crate) fn received(&mut self, mode: Mode, missed: u64, torn_retries: u32) {
        self.received += 1;
        self.torn_retries = self.torn_retries.saturating_add(u64::from(torn_retries));
        self.missed(mode, missed);
    }

    /// A frame read and dropped: too late, or invalid.
    pub(crate) fn dropped(&mut self, dropped: &Dropped) {
        match dropped {
            Dropped::TooLate { .. } => self.too_late += 1,
            Dropped::Invalid(_) => self.invalid += 1,
        }
    }

    /// A handle request answered without a frame: `gone`, or else `not-yet`.
    pub(crate) fn handle_failed(&mut self, status: &str) {
        match status {
            "gone" => self.handles_gone += 1,
            _ => self.handles_not_yet += 1,
        }
    }
}

impl ShmRingSrc {
    /// Counts with `f`, holding the stats lock for `f` alone: one lock at a time.
    pub(crate) fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.lock().unwrap());
    }

    pub(crate) fn stats_structure(&self) -> gst::Structure {
        let s = self.stats.lock().unwrap();
        gst::Structure::builder("application/x-shmringsrc-stats")
            .field("received", s.received)
            .field("skipped", s.skipped)
            .field("lost", s.lost)
            .field("torn-retries", s.torn_retries)
            .field("zero-copy", s.zero_copy)
            .field("into-ring", s.into_ring)
            .field("reattaches", s.reattaches)
            .field("timeouts", s.timeouts)
            .field("handles-delivered", s.handles_delivered)
            .field("handles-gone", s.handles_gone)
            .field("handles-not-yet", s.handles_not_yet)
            .field("handles-invalid", s.handles_invalid)
            .field("too-late", s.too_late)
            .field("invalid", s.invalid)
            .field("keyframe-jumps", s.keyframe_jumps)
            .build()
    }
}
