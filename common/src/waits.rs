//! Waiting: futex waits for frames that another thread can interrupt, and for rings.
//!
//! A reader sleeps on the ring's wake word until the writer moves head or its state,
//! looking at the writer's lock every `LIVENESS_CHECK_INTERVAL` so that a dead writer is
//! noticed on every kernel; an `Interrupter` ends its waits from another thread. `attach`
//! waits, on inotify, for a ring with a live writer to appear under a name.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::error::{Error, Result};
use crate::layout::MAX_SEQ;
use crate::location::RingLocation;
use crate::reader::{Next, RingReader, WriterStatus};
use crate::sys;

/// How long a wait sleeps at most before it checks that the writer is still alive.
pub const LIVENESS_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Wakes a reader's waits from another thread (a GStreamer `unlock`). Cloning shares it.
#[derive(Clone)]
pub struct Interrupter {
    inner: Arc<InterruptInner>,
}

struct InterruptInner {
    /// Private futex word: 1 while interrupted. Stored with Release before the wake,
    /// loaded with Acquire by the waiter before and after it sleeps.
    word: AtomicU32,
    /// The same signal for waits that use poll (waiting for a ring to appear).
    event: EventFd,
}

impl Interrupter {
    pub fn new() -> std::io::Result<Self> {
        let event =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        Ok(Interrupter {
            inner: Arc::new(InterruptInner {
                word: AtomicU32::new(0),
                event,
            }),
        })
    }

    /// Makes every current and future wait return `Interrupted` until `clear`.
    pub fn interrupt(&self) {
        self.inner.word.store(1, Ordering::Release);
        sys::futex_wake(&self.inner.word, false);
        let _ = self.inner.event.write(1);
    }

    /// Lets waits sleep again.
    pub fn clear(&self) {
        self.inner.word.store(0, Ordering::Release);
        let _ = self.inner.event.read();
    }

    pub fn is_interrupted(&self) -> bool {
        // Acquire: pairs with the Release store in `interrupt`.
        self.inner.word.load(Ordering::Acquire) != 0
    }
}

/// A ring's wake word, to sleep on without its reader (nor any lock around it): load
/// `seen` before a poll of the reader finds nothing, then `sleep` until the writer moves
/// or the interrupter fires. A wake-up between the two is not lost: the word has moved
/// past `seen`, so the sleep returns at once.
pub struct RingWatch {
    map: Arc<crate::mapping::Mapping>,
    interrupter: Interrupter,
    seen: u32,
}

impl RingWatch {
    /// Sleeps up to `timeout` unless the wake word moved since this watch was taken, or
    /// the interrupter fired. Returns early on any wake-up; the caller polls again.
    pub fn sleep(&self, timeout: Duration) {
        if self.interrupter.is_interrupted() {
            return;
        }
        sys::futex_wait2(
            &self.map.superblock().wake,
            self.seen,
            &self.interrupter.inner.word,
            0,
            timeout,
        );
    }
}

impl RingReader {
    /// The wake word as it is now, to sleep on after a poll (`timeout` zero) that found
    /// nothing, without holding the reader.
    pub fn watch(&self) -> RingWatch {
        RingWatch {
            map: Arc::clone(&self.map),
            interrupter: self.interrupter.clone(),
            // Acquire: pairs with the writer's Release increment of `wake` (after its
            // head and state stores), as in `wait_beyond`; taken before the poll.
            seen: self.map.superblock().wake.load(Ordering::Acquire),
        }
    }
}

impl RingReader {
    /// Waits up to `timeout` until frame `seq` is committed. None when it is; otherwise
    /// why not (timed out, interrupted, EOS, writer gone).
    pub fn wait_for_seq(&mut self, seq: u64, timeout: Duration) -> Result<Option<Next<()>>> {
        let deadline = Instant::now() + timeout;
        Ok(self.wait_beyond(seq.saturating_sub(1), deadline)?.err())
    }

    /// Waits until head > `after`; Err(...) carries why it did not happen. Looks at the
    /// writer's lock every `LIVENESS_CHECK_INTERVAL` while nothing comes, whatever woke
    /// the wait (a wait without futex_waitv returns early) and however short the
    /// caller's timeouts, so a dead writer is noticed within that interval on every
    /// kernel. After EOS it looks at every wake-up: the writer's last wake says it left.
    pub(crate) fn wait_beyond<B>(
        &mut self,
        after: u64,
        deadline: Instant,
    ) -> Result<std::result::Result<u64, Next<B>>> {
        let sb = self.map.superblock();
        loop {
            if self.interrupter.is_interrupted() {
                return Ok(Err(Next::Interrupted));
            }
            self.check_mapped()?;
            // Acquire: pairs with the writer's Release increment of `wake` (after its
            // head/state stores); loaded before head so no wake-up can fall between.
            let wake = sb.wake.load(Ordering::Acquire);
            let head = self.head();
            if head > after {
                if head > MAX_SEQ {
                    return Err(Error::corrupt(
                        self.loc.path(),
                        format!("head {head} is beyond any sequence a writer can commit"),
                    ));
                }
                self.eos_returned = false;
                return Ok(Ok(head));
            }
            let now = Instant::now();
            match self.writer_status_quick() {
                WriterStatus::Eos if !self.eos_returned => {
                    self.eos_returned = true;
                    return Ok(Err(Next::Eos));
                }
                WriterStatus::Eos => self.liveness_due = now, // EOS returned: is it gone?
                s @ (WriterStatus::Closed | WriterStatus::Replaced) => {
                    return Ok(Err(Next::WriterGone(s)))
                }
                _ => {}
            }
            if now >= self.liveness_due {
                // Nothing for a while: is anybody still writing?
                let status = self.writer_status();
                // A truncation (which zeroes the state too) is the news, not the writer.
                self.check_mapped()?;
                if matches!(status, WriterStatus::Dead | WriterStatus::Closed) {
                    return Ok(Err(Next::WriterGone(status)));
                }
                self.liveness_due = now + LIVENESS_CHECK_INTERVAL;
            }
            if now >= deadline {
                return Ok(Err(Next::TimedOut));
            }
            let slice = deadline.min(self.liveness_due) - now;
            sys::futex_wait2(&sb.wake, wake, &self.interrupter.inner.word, 0, slice);
        }
    }
}

/// Outcome of waiting for a ring to appear.
pub enum Attach {
    Reader(Box<RingReader>),
    TimedOut,
    Interrupted,
}

/// Opens the ring at `loc` with a live writer, waiting up to `timeout` for one to
/// appear (or to replace a dead writer's ring). Waits on inotify events of the ring
/// directory, not by polling. Errors other than "not there yet" return at once.
pub fn attach(loc: &RingLocation, timeout: Duration, interrupter: &Interrupter) -> Result<Attach> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    use std::os::fd::AsFd;

    let deadline = Instant::now() + timeout;
    let dir = loc.dir();
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .map_err(|e| Error::io(dir, "inotify", e))?;
    let mut watching = false;
    loop {
        if interrupter.is_interrupted() {
            return Ok(Attach::Interrupted);
        }
        if !watching {
            // Watch before looking, so a ring created in between is not missed.
            watching = inotify
                .add_watch(
                    dir,
                    AddWatchFlags::IN_CREATE
                        | AddWatchFlags::IN_MOVED_TO
                        | AddWatchFlags::IN_ATTRIB
                        | AddWatchFlags::IN_DELETE_SELF
                        | AddWatchFlags::IN_MOVE_SELF,
                )
                .is_ok();
        }
        match RingReader::open_with(loc, interrupter.clone()) {
            Ok(r) => match r.writer_status() {
                WriterStatus::Live | WriterStatus::Eos => {
                    r.prefault();
                    return Ok(Attach::Reader(Box::new(r)));
                }
                _ => {} // a ring nobody writes any more: wait for the next writer
            },
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Attach::TimedOut);
        }
        // Without a watch (no directory yet) look again every 100 ms.
        let wait = if watching {
            deadline - now
        } else {
            (deadline - now).min(LIVENESS_CHECK_INTERVAL)
        };
        let ms = wait.as_millis().min(u128::from(u16::MAX)) as u16;
        let mut fds = [
            PollFd::new(inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(interrupter.inner.event.as_fd(), PollFlags::POLLIN),
        ];
        let _ = poll(&mut fds, PollTimeout::from(ms));
        // Drain the events; what they say does not matter, we look again.
        while let Ok(events) = inotify.read_events() {
            if events.is_empty() {
                break;
            }
            if events.iter().any(|e| {
                e.mask.intersects(
                    nix::sys::inotify::AddWatchFlags::IN_DELETE_SELF
                        | nix::sys::inotify::AddWatchFlags::IN_MOVE_SELF
                        | nix::sys::inotify::AddWatchFlags::IN_IGNORED,
                )
            }) {
                watching = false;
            }
        }
    }
}
