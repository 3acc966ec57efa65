//! Following a ring by name: attaching, re-attaching when its writer changes, where to start.
//!
//! A `Follower` is the one place that decides when the ring read is stale and where a
//! reader of a new ring starts; shmringsrc and the Python `Reader` add their own side
//! effects (counters, messages, zero-copy reads) to what it returns.

use std::time::Duration;

use crate::error::Result;
use crate::location::RingLocation;
use crate::reader::{RingReader, WriterStatus};
use crate::sys::realtime_ns;
use crate::waits::{attach, Attach, Interrupter};

/// Where a follower starts reading the first ring it attaches to. The ring of a later
/// writer is read from the first frame it still holds: none of it was seen yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// The newest frame committed when it attaches (the first to come when none is).
    #[default]
    Newest,
    /// Look-back: the oldest frame still held that was captured (wall clock) at most
    /// this many ns before it attaches; the next to come when every frame held is
    /// older. `LookBack(0)` is `Newest`.
    LookBack(u64),
}

/// How a follower came to read the ring it reads now, and from where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    /// Its first ring, from the newest frame.
    Newest,
    /// Its first ring, looking back `ns`: from `first`, the oldest frame held captured
    /// since (None: every frame held was older, so from the next to come). `head`: the
    /// newest frame then.
    LookBack {
        ns: u64,
        first: Option<u64>,
        head: u64,
    },
    /// The ring of a later writer (restarted, taken over, replaced): from the first
    /// frame it still holds.
    Reattached,
}

/// What `Follower::attach` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Reads a ring whose writer is live (or at EOS) now.
    Attached(Attached),
    /// A ring was read already: nothing done.
    AlreadyAttached,
    /// No ring with a live writer had the name within the timeout.
    TimedOut,
    /// The interrupter ended the wait.
    Interrupted,
}

/// A reader of whichever ring is written under one name: the current `RingReader`, if
/// any, where reading starts, and whether a ring was read before (then a new ring is a
/// new writer's, read from its first frame still held).
pub struct Follower {
    loc: RingLocation,
    start: StartAt,
    attached_before: bool,
    reader: Option<Box<RingReader>>,
}

impl Follower {
    /// A follower of the ring at `loc` that reads none yet.
    pub fn new(loc: RingLocation, start: StartAt) -> Self {
        Follower {
            loc,
            start,
            attached_before: false,
            reader: None,
        }
    }

    pub fn location(&self) -> &RingLocation {
        &self.loc
    }

    pub fn start(&self) -> StartAt {
        self.start
    }

    /// Changes where the first ring is read from; a ring of a later writer is always
    /// read from its first frame, whatever this says.
    pub fn set_start(&mut self, start: StartAt) {
        self.start = start;
    }

    /// Whether it read a ring before: the next one it attaches to is a re-attach.
    pub fn attached_before(&self) -> bool {
        self.attached_before
    }

    /// The reader of the ring followed now, if any.
    pub fn reader(&self) -> Option<&RingReader> {
        self.reader.as_deref()
    }

    pub fn reader_mut(&mut self) -> Option<&mut RingReader> {
        self.reader.as_deref_mut()
    }

    /// When no ring is read, waits up to `timeout` for one with a live writer (or at
    /// EOS) under the name (`attach`) and reads it from where it should start. Errors
    /// other than "not there yet" return at once.
    pub fn attach(&mut self, timeout: Duration, interrupter: &Interrupter) -> Result<Follow> {
        if self.reader.is_some() {
            return Ok(Follow::AlreadyAttached);
        }
        Ok(match attach(&self.loc, timeout, interrupter)? {
            Attach::Reader(r) => Follow::Attached(self.adopt(r)),
            Attach::TimedOut => Follow::TimedOut,
            Attach::Interrupted => Follow::Interrupted,
        })
    }

    /// Reads the ring under the name now, without waiting and whatever its writer's
    /// state (`Error::NotFound` when there is none), in place of any ring read.
    pub fn open(&mut self, interrupter: &Interrupter) -> Result<Attached> {
        let reader = RingReader::open_with(&self.loc, interrupter.clone())?;
        reader.prefault();
        Ok(self.adopt(Box::new(reader)))
    }

    /// Reads `reader`, a ring found under the name, in place of any ring read, from
    /// where it should start. For callers that wait for it (`attach`, the function)
    /// without holding the follower, so that its ring stays readable meanwhile.
    pub fn adopt(&mut self, mut reader: Box<RingReader>) -> Attached {
        let head = reader.head();
        let how = if reader.holds_units() {
            // Encoded units are read from a keyframe (`next_unit`): looking back, the
            // one at or before the moment; else the newest.
            let lookback = match self.start {
                StartAt::LookBack(ns) if ns > 0 && !self.attached_before => Some(ns),
                _ => None,
            };
            let since = lookback.map(|ns| realtime_ns().saturating_sub(ns));
            let first = since.and_then(|t| reader.keyframe_for(t).ok().flatten());
            match (lookback, first) {
                (Some(ns), Some(k)) => {
                    reader.seek_to_unit(k);
                    Attached::LookBack {
                        ns,
                        first: Some(k),
                        head,
                    }
                }
                // A new writer: from its oldest keyframe held, as frames from the
                // oldest frame held.
                _ if self.attached_before => {
                    match reader.keyframe_for(0) {
                        Ok(Some(k)) => reader.seek_to_unit(k),
                        _ => reader.seek_after(0),
                    }
                    Attached::Reattached
                }
                _ => {
                    reader.seek_after(0);
                    Attached::Newest
                }
            }
        } else if self.attached_before {
            // A new writer: take its frames from the first one still held.
            reader.seek_after(0);
            Attached::Reattached
        } else {
            match self.start {
                StartAt::LookBack(ns) if ns > 0 => {
                    // From the oldest frame captured at most `ns` ago.
                    let since = realtime_ns().saturating_sub(ns);
                    let first = reader.oldest_since(since).ok().flatten();
                    reader.seek_after(first.map_or(head, |seq| seq.saturating_sub(1)));
                    Attached::LookBack { ns, first, head }
                }
                _ => {
                    // Start with the newest frame.
                    reader.seek_after(head.saturating_sub(1));
                    Attached::Newest
                }
            }
        };
        self.attached_before = true;
        self.reader = Some(reader);
        how
    }

    /// Why the ring read is no longer written: its writer's status when neither live
    /// nor at EOS (closed, replaced, dead). None while it is, or when no ring is read.
    pub fn writer_left(&self) -> Option<WriterStatus> {
        let status = self.reader.as_ref()?.writer_status();
        (!matches!(status, WriterStatus::Live | WriterStatus::Eos)).then_some(status)
    }

    /// Whether the ring read is no longer the one written under its name: another ring
    /// has the name (a writer restarted, or replaced it), or its writer left
    /// (`writer_left`). False when no ring is read.
    pub fn is_gone(&self) -> bool {
        self.reader.as_ref().is_some_and(|r| r.is_superseded()) || self.writer_left().is_some()
    }

    /// Stops reading the ring when it is gone (`is_gone`), so that the next `attach`
    /// waits for the ring the name has then: true when it did.
    pub fn drop_if_gone(&mut self) -> bool {
        let gone = self.is_gone();
        if gone {
            self.reader = None;
        }
        gone
    }

    /// Stops reading the ring after a read said its writer is gone (`Next::WriterGone`):
    /// the next `attach` waits for the next writer.
    pub fn writer_gone(&mut self) {
        self.reader = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDir;
    use crate::{FrameMeta, Next, RingWriter, WriterConfig};

    const WAIT: Duration = Duration::from_secs(5);
    const SECOND: u64 = 1_000_000_000;

    fn config() -> WriterConfig {
        WriterConfig {
            slots: 8,
            max_frame: 64,
            ..Default::default()
        }
    }

    /// Writes frames captured `ages` seconds ago, one each.
    fn write_aged(w: &mut RingWriter, ages: &[u64]) {
        let now = realtime_ns();
        for age in ages {
            let meta = FrameMeta {
                captured_at_ns: Some(now - age * SECOND),
                ..Default::default()
            };
            w.write(&meta, b"frame").unwrap();
        }
    }

    fn write(w: &mut RingWriter, n: usize) {
        for _ in 0..n {
            w.write(&FrameMeta::default(), b"frame").unwrap();
        }
    }

    fn interrupter() -> Interrupter {
        Interrupter::new().unwrap()
    }

    /// The sequence of the next frame the follower's reader returns in order.
    fn next_seq(f: &mut Follower) -> u64 {
        let reader = f.reader_mut().expect("a ring is read");
        match reader.next(WAIT, |i| vec![0u8; i.len as usize]).unwrap() {
            Next::Frame(frame) => frame.info.seq,
            other => panic!("no frame: {other:?}"),
        }
    }

    #[test]
    fn a_first_attach_starts_at_the_newest_frame() {
        let dir = TestDir::new("follow-newest");
        let loc = dir.ring("cam");
        let mut f = Follower::new(loc.clone(), StartAt::Newest);
        let short = Duration::from_millis(50);
        assert_eq!(f.attach(short, &interrupter()).unwrap(), Follow::TimedOut);
        let stopped = interrupter();
        stopped.interrupt();
        assert_eq!(f.attach(WAIT, &stopped).unwrap(), Follow::Interrupted);
        assert!(f.reader().is_none() && !f.attached_before());

        let mut w = RingWriter::create(&loc, &config()).unwrap();
        write(&mut w, 3);
        let how = f.attach(WAIT, &interrupter()).unwrap();
        assert_eq!(how, Follow::Attached(Attached::Newest));
        assert_eq!(next_seq(&mut f), 3);
        assert_eq!(
            f.attach(WAIT, &interrupter()).unwrap(),
            Follow::AlreadyAttached
        );
        assert!(!f.drop_if_gone(), "a live writer's ring is kept");

        // A look-back of 0 starts at the newest frame too.
        let mut g = Follower::new(loc, StartAt::LookBack(0));
        assert_eq!(g.open(&interrupter()).unwrap(), Attached::Newest);
        assert_eq!(next_seq(&mut g), 3);
    }

    #[test]
    fn a_look_back_starts_at_the_oldest_frame_since() {
        let dir = TestDir::new("follow-look-back");
        let loc = dir.ring("cam");
        let mut w = RingWriter::create(&loc, &config()).unwrap();
        write_aged(&mut w, &[10, 4, 2, 0]);
        let mut f = Follower::new(loc, StartAt::LookBack(5 * SECOND));
        let how = f.attach(WAIT, &interrupter()).unwrap();
        let expected = Attached::LookBack {
            ns: 5 * SECOND,
            first: Some(2),
            head: 4,
        };
        assert_eq!(how, Follow::Attached(expected));
        assert_eq!(next_seq(&mut f), 2);
        assert_eq!(next_seq(&mut f), 3);

        // Every frame held is older than the look-back: from the next to come.
        let old = dir.ring("old");
        let mut w = RingWriter::create(&old, &config()).unwrap();
        write_aged(&mut w, &[10, 9, 8]);
        let mut f = Follower::new(old, StartAt::LookBack(5 * SECOND));
        let expected = Attached::LookBack {
            ns: 5 * SECOND,
            first: None,
            head: 3,
        };
        assert_eq!(f.open(&interrupter()).unwrap(), expected);
        write(&mut w, 1);
        assert_eq!(next_seq(&mut f), 4);
    }

    #[test]
    fn a_reattach_after_the_writer_replaced_its_ring_starts_at_the_first_frame() {
        let dir = TestDir::new("follow-replaced");
        let loc = dir.ring("cam");
        let mut w = RingWriter::create(&loc, &config()).unwrap();
        write(&mut w, 3);
        // A look-back applies to the first ring only.
        let mut f = Follower::new(loc, StartAt::LookBack(3600 * SECOND));
        assert!(matches!(
            f.attach(WAIT, &interrupter()).unwrap(),
            Follow::Attached(Attached::LookBack { first: Some(1), .. })
        ));
        let old_epoch = f.reader().unwrap().epoch();
        w.replace(&config()).unwrap();
        write(&mut w, 3);
        assert!(f.is_gone());
        assert_eq!(f.writer_left(), Some(WriterStatus::Replaced));
        // The old ring's frames are read to the end first.
        assert_eq!(
            [next_seq(&mut f), next_seq(&mut f), next_seq(&mut f)],
            [1, 2, 3]
        );
        let reader = f.reader_mut().unwrap();
        let read = reader.next(WAIT, |i| vec![0u8; i.len as usize]).unwrap();
        assert!(matches!(read, Next::WriterGone(WriterStatus::Replaced)));
        f.writer_gone();
        assert!(f.reader().is_none());
        let how = f.attach(WAIT, &interrupter()).unwrap();
        assert_eq!(how, Follow::Attached(Attached::Reattached));
        let epoch = f.reader().unwrap().epoch();
        assert_ne!(epoch, old_epoch);
        assert_eq!(epoch, w.epoch());
        assert_eq!(
            next_seq(&mut f),
            1,
            "a new writer's ring from its first frame"
        );
        assert!(!f.is_gone());
    }

    #[test]
    fn a_reader_of_a_dead_writer_is_dropped() {
        let dir = TestDir::new("follow-dead");
        let live = dir.ring("live");
        let loc = dir.ring("cam");
        let mut w = RingWriter::create(&live, &config()).unwrap();
        write(&mut w, 2);
        // A copy of a live ring that nobody locks: the ring of a writer that died
        // without closing it.
        std::fs::copy(live.path(), loc.path()).unwrap();
        drop(w);
        let mut f = Follower::new(loc.clone(), StartAt::Newest);
        let short = Duration::from_millis(50);
        assert_eq!(
            f.attach(short, &interrupter()).unwrap(),
            Follow::TimedOut,
            "a dead writer's ring is not attached to"
        );
        assert_eq!(f.open(&interrupter()).unwrap(), Attached::Newest);
        assert_eq!(f.writer_left(), Some(WriterStatus::Dead));
        assert!(f.is_gone());
        assert!(f.drop_if_gone());
        assert!(f.reader().is_none());
        assert!(!f.drop_if_gone(), "nothing left to drop");

        // The next writer takes the dead writer's ring over: read from its first frame.
        let mut w = RingWriter::create(&loc, &config()).unwrap();
        write(&mut w, 2);
        let how = f.attach(WAIT, &interrupter()).unwrap();
        assert_eq!(how, Follow::Attached(Attached::Reattached));
        assert_eq!(next_seq(&mut f), 1);
    }
}
