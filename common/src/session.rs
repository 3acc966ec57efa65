//! `Session`: a ring reader as the language bindings (Python, Node, C) give it.
//!
//! One ring name, followed across writers (restarted, replaced, taken over), read with a
//! deadline from any thread. The policy is `Follower`'s; this adds what every binding
//! otherwise writes again:
//! - reads wait in slices of at most `SLICE`, with a caller's check between them
//!   (Ctrl-C in Python, `close()` in Node and C);
//! - the reader's state is behind one mutex, held only for a poll that does not wait
//!   and does not copy: a frame not leased in place is claimed under it and copied
//!   without it (`claims`); a read sleeps on the ring's wake word (`RingWatch`) without
//!   it, and waits for a new writer without it, so no caller waits for the lock longer
//!   than a poll takes;
//! - the writer's EOS is returned once every frame before it was, by whichever thread:
//!   not while another read still copies one;
//! - a handle of a newer writer re-attaches once before it is called gone;
//! - what the ring says of itself (`RingInfo`), with its caps' fields picked out.
//!
//! Elements keep their own loop (`shmringsrc/src/streaming.rs`): their waits are
//! unlocked by GStreamer, and their errors are GStreamer's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::follow::{Follower, StartAt};
use crate::location::{Handle, RingLocation};
use crate::reader::{
    attach, At, AtRule, Attach, ByHandle, Frame, Interrupter, Next, Payload, RingReader,
    WriterStatus, MAX_TORN_RETRIES,
};
use crate::FrameInfo;

/// The longest a read waits before it runs its caller's check: the reader's liveness
/// interval, so that each poll after a sleep looks at the writer's lock when it is due.
pub const SLICE: Duration = crate::reader::LIVENESS_CHECK_INTERVAL;

/// Which frame a read returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// The newest frame not returned yet (skipping what a slow reader missed).
    Latest,
    /// Every frame in order (`missed` counts those lost to a writer that lapped it).
    Next,
}

/// What a read came to. (Returned by value once per read and taken apart at once, as
/// `Next` is: a box would cost an allocation per frame for nothing.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Read<B = Vec<u8>> {
    Frame(Frame<Payload<B>>),
    /// No frame by the deadline.
    TimedOut,
    /// The caller's check asked to stop (the frame wait was cut short).
    Stopped,
    /// The writer ended its stream, and every frame before the end was returned.
    Eos,
    /// The writer is gone and no new one came by the deadline.
    WriterGone(WriterStatus),
}

/// What `Session::get` found for a handle.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Got<B = Vec<u8>> {
    /// The frame, copied out.
    Frame(Frame<B>),
    NotYet,
    /// Overwritten, or of a writer that is not the ring's now.
    Gone,
}

/// What the ring says of itself.
#[derive(Clone, Debug, PartialEq)]
pub struct RingInfo {
    pub caps: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub format: Option<String>,
    pub fps: Option<f64>,
    pub slots: u32,
    pub writer_pid: u32,
    pub writer_status: WriterStatus,
    pub epoch: u64,
}

struct State {
    /// Always reads a ring: opened by `Session::open`, and replaced, never dropped, when
    /// a new writer comes (so a ring whose writer is gone stays readable meanwhile).
    /// Only `open` and `adopt` are used, never `Follower::attach`, `writer_gone` or
    /// `drop_if_gone`, which may leave it without one.
    follower: Follower,
    zero_copy: bool,
    /// Frames claimed by reads of this session and not copied yet (`CopyInFlight`): the
    /// writer's EOS is not returned meanwhile, since it says every frame before it was.
    copying: u32,
}

/// One claimed frame being copied without the lock: counted in `State::copying` from
/// its claim until this is dropped (a panicking allocator included).
struct CopyInFlight<'s>(&'s Mutex<State>);

impl Drop for CopyInFlight<'_> {
    fn drop(&mut self) {
        let mut st = lock(self.0);
        st.copying = st.copying.saturating_sub(1);
    }
}

impl State {
    fn reader(&self) -> &RingReader {
        self.follower
            .reader()
            .expect("a session always reads a ring")
    }

    fn reader_mut(&mut self) -> &mut RingReader {
        self.follower
            .reader_mut()
            .expect("a session always reads a ring")
    }

    fn enable_zero_copy(&mut self) {
        if self.zero_copy {
            // No write access or a full reader table: frames are copies.
            let _ = self.reader_mut().enable_zero_copy();
        }
    }
}

/// A binding's reader of one ring name. `Sync`: any thread may read, one at a time.
pub struct Session {
    loc: RingLocation,
    interrupter: Interrupter,
    /// Set by `interrupt`: every read stops at its next look, whatever its caller's
    /// check says (the interrupter keeps waking the waits, so a read that went on
    /// would spin). Relaxed: the interrupter's Release/Acquire orders the wake-up.
    stopped: AtomicBool,
    state: Mutex<State>,
}

/// Locks `m`, carrying on after a panic elsewhere left it poisoned (every update under
/// the lock is complete before anything can fail).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The time left until `deadline`, at most `SLICE`.
fn slice_until(deadline: Option<Instant>) -> Duration {
    deadline.map_or(SLICE, |d| {
        d.saturating_duration_since(Instant::now()).min(SLICE)
    })
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

impl Session {
    /// Reads the ring at `loc` now, from its newest frame, as `shmringsrc` starts;
    /// `Error::NotFound` when there is none. `zero_copy`: lease frames in place where
    /// the ring lets it, else every frame is a copy.
    pub fn open(loc: RingLocation, zero_copy: bool) -> Result<Self> {
        let interrupter = Interrupter::new().map_err(|e| Error::io(loc.path(), "eventfd", e))?;
        let mut follower = Follower::new(loc.clone(), StartAt::Newest);
        follower.open(&interrupter)?;
        let mut state = State {
            follower,
            zero_copy,
            copying: 0,
        };
        state.enable_zero_copy();
        Ok(Session {
            loc,
            interrupter,
            stopped: AtomicBool::new(false),
            state: Mutex::new(state),
        })
    }

    pub fn location(&self) -> &RingLocation {
        &self.loc
    }

    /// Stops every read of this session, now and from now on (`Read::Stopped`): for
    /// `close()`.
    pub fn interrupt(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.interrupter.interrupt();
    }

    /// One frame, waiting until `deadline` (None: for ever). `stop` runs between
    /// slices of at most `SLICE`, without the lock; true ends the read (`Read::Stopped`).
    pub fn read(
        &self,
        mode: ReadMode,
        deadline: Option<Instant>,
        stop: impl FnMut() -> bool,
    ) -> Result<Read> {
        self.read_into(mode, deadline, stop, |i| vec![0u8; i.len as usize])
    }

    /// As `read`, a frame not leased in place being copied into `alloc`'s buffer (at
    /// least `info.len` bytes), which is called without the lock.
    pub fn read_into<B: AsMut<[u8]>>(
        &self,
        mode: ReadMode,
        deadline: Option<Instant>,
        mut stop: impl FnMut() -> bool,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Read<B>> {
        let mut stop = || self.stopped.load(Ordering::Relaxed) || stop();
        // Copies of claims overwritten while they were made (the frames lost are counted
        // by the reader: `claim_torn`).
        let mut torn = 0u32;
        loop {
            // A poll under the lock, then a copy and a sleep without it: no caller of this
            // session waits for the lock longer than a poll takes.
            let (next, watch, _in_flight) = {
                let mut st = lock(&self.state);
                let copying = st.copying;
                let r = st.reader_mut();
                let watch = r.watch(); // before the poll: no wake-up is lost
                let next = match mode {
                    // Encoded units: from a keyframe, every one (units.rs), in both modes.
                    _ if r.holds_units() => r.take_unit(Duration::ZERO)?.map(Payload::Copied),
                    ReadMode::Latest => r.take_latest(Duration::ZERO)?,
                    ReadMode::Next => r.take_next(Duration::ZERO)?,
                };
                let next = match next {
                    // Not yet: another read still copies a frame from before it. Looked at
                    // again after a sleep (its copy does not wake the ring's word).
                    Next::Eos if copying > 0 => {
                        r.eos_returned = false;
                        Next::TimedOut
                    }
                    other => other,
                };
                let in_flight = match &next {
                    Next::Frame(f) if matches!(f.data, Payload::Leased(_)) => {
                        let torn_retries = f.torn_retries.saturating_add(torn);
                        r.note_progress(f.info.seq, f.missed, torn_retries);
                        None
                    }
                    Next::Frame(_) => {
                        // Given back when dropped, after this guard's lock (`st`) is.
                        st.copying += 1;
                        Some(CopyInFlight(&self.state))
                    }
                    _ => None,
                };
                (next, watch, in_flight)
            };
            match next {
                Next::Frame(f) => {
                    let torn_retries = f.torn_retries.saturating_add(torn);
                    let data = match f.data {
                        Payload::Leased(l) => Payload::Leased(l),
                        Payload::Copied(claim) => {
                            let (seq, epoch) = (claim.info().seq, claim.info().epoch);
                            let copied = claim.copy(&self.loc, &mut alloc);
                            let mut st = lock(&self.state);
                            let r = st.reader_mut();
                            match copied {
                                Ok(Some((_, data))) => {
                                    if r.epoch() == epoch {
                                        r.note_progress(seq, f.missed, torn_retries);
                                    }
                                    Payload::Copied(data)
                                }
                                Ok(None) => {
                                    r.claim_torn(seq, epoch, f.missed);
                                    drop(st);
                                    torn += 1;
                                    // Retried at once, as a torn copy inside a read is.
                                    if torn >= MAX_TORN_RETRIES && passed(deadline) {
                                        return Ok(Read::TimedOut);
                                    }
                                    continue;
                                }
                                Err(e) => {
                                    r.claim_torn(seq, epoch, f.missed);
                                    return Err(e);
                                }
                            }
                        }
                    };
                    return Ok(Read::Frame(Frame {
                        info: f.info,
                        data,
                        missed: f.missed,
                        torn_retries,
                    }));
                }
                Next::Eos => return Ok(Read::Eos),
                Next::WriterGone(why) => {
                    if stop() {
                        return Ok(Read::Stopped);
                    }
                    match self.reattach(deadline, &mut stop)? {
                        Some(Read::TimedOut) => return Ok(Read::WriterGone(why)),
                        Some(other) => return Ok(other),
                        None => continue,
                    }
                }
                Next::TimedOut | Next::Interrupted => {}
            }
            if stop() {
                return Ok(Read::Stopped);
            }
            if passed(deadline) {
                return Ok(Read::TimedOut);
            }
            // At most a slice (the reader's liveness interval too): the next poll looks
            // at the writer's lock when it is due.
            watch.sleep(slice_until(deadline));
        }
    }

    /// Waits until a live ring has the name again and reads it: None when it does,
    /// else `Read::TimedOut` or `Read::Stopped`.
    fn reattach<B>(
        &self,
        deadline: Option<Instant>,
        stop: &mut impl FnMut() -> bool,
    ) -> Result<Option<Read<B>>> {
        loop {
            match attach(&self.loc, slice_until(deadline), &self.interrupter)? {
                Attach::Reader(r) => {
                    let mut st = lock(&self.state);
                    // A new writer: read from its first frame held. Unless another
                    // thread of this session adopted it meanwhile: then its reader,
                    // which may have returned frames already, stays.
                    if st.follower.is_gone() {
                        st.follower.adopt(r);
                        st.enable_zero_copy();
                    }
                    return Ok(None);
                }
                Attach::TimedOut | Attach::Interrupted => {}
            }
            if stop() {
                return Ok(Some(Read::Stopped));
            }
            if passed(deadline) {
                return Ok(Some(Read::TimedOut));
            }
        }
    }

    /// Exactly the frame `handle` names, copied, without waiting. A handle of another
    /// ring is `Error::InvalidHandle`; one of a newer writer than the one read makes the
    /// session follow it, once.
    pub fn get(&self, handle: &Handle) -> Result<Got> {
        self.get_into(handle, |i| vec![0u8; i.len as usize])
    }

    /// As `get`, the frame being copied into `alloc`'s buffer (at least `info.len`
    /// bytes), which is called without the lock.
    pub fn get_into<B: AsMut<[u8]>>(
        &self,
        handle: &Handle,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Got<B>> {
        if handle.ring != self.loc.display_name() {
            return Err(Error::InvalidHandle {
                handle: handle.to_string(),
                reason: format!(
                    "it names ring {}, this reader reads {}",
                    handle.ring,
                    self.loc.display_name()
                )
                .into(),
            });
        }
        for attempt in 0..2 {
            // Claimed under the lock, copied without it (`claims`).
            let found = lock(&self.state).reader().take_by_handle(handle)?;
            match found {
                ByHandle::Frame(f) => {
                    let epoch = f.info.epoch;
                    // Overwritten during the copy: gone, as a torn copy by handle is.
                    let Some((info, data)) = f.data.copy(&self.loc, &mut alloc)? else {
                        return Ok(Got::Gone);
                    };
                    let mut st = lock(&self.state);
                    let r = st.reader_mut();
                    if r.epoch() == epoch {
                        r.note_progress(handle.seq, 0, f.torn_retries);
                    }
                    return Ok(Got::Frame(Frame {
                        info,
                        data,
                        missed: 0,
                        torn_retries: f.torn_retries,
                    }));
                }
                ByHandle::NotYet => return Ok(Got::NotYet),
                ByHandle::Gone => {
                    let stale = {
                        let st = lock(&self.state);
                        st.reader().epoch() != handle.epoch && st.follower.is_gone()
                    };
                    if attempt == 0
                        && stale
                        && self
                            .reattach::<B>(Some(Instant::now()), &mut || false)?
                            .is_none()
                    {
                        continue;
                    }
                    return Ok(Got::Gone);
                }
            }
        }
        Ok(Got::Gone)
    }

    /// The frame captured closest to `captured_at_ns` by `rule`, copied.
    pub fn at(&self, captured_at_ns: u64, rule: AtRule) -> Result<Got> {
        let (found, epoch) = {
            let st = lock(&self.state);
            (
                st.reader().seq_at(captured_at_ns, rule)?,
                st.reader().epoch(),
            )
        };
        match found {
            At::Frame(seq) => self.get(&Handle {
                ring: self.loc.display_name().to_owned(),
                epoch,
                seq,
            }),
            At::Gone => Ok(Got::Gone),
            At::NotYet => Ok(Got::NotYet),
        }
    }

    /// What the ring read now says of itself.
    pub fn info(&self) -> Result<RingInfo> {
        let (caps, slots, writer_pid, writer_status, epoch) = {
            let st = lock(&self.state);
            let r = st.reader();
            (
                r.current_caps().map(|c| c.map(|(_, c)| c)),
                r.geometry().slot_count,
                r.writer_pid(),
                r.writer_status(),
                r.epoch(),
            )
        };
        let caps = caps?;
        let field = |name: &str| caps.as_deref().and_then(|c| caps_field(c, name));
        let fps = field("framerate").and_then(|f| {
            let (n, d) = f.split_once('/')?;
            let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
            (d != 0.0).then(|| n / d)
        });
        Ok(RingInfo {
            width: field("width").and_then(|w| w.parse().ok()),
            height: field("height").and_then(|h| h.parse().ok()),
            format: field("format").map(str::to_owned),
            fps,
            caps,
            slots,
            writer_pid,
            writer_status,
            epoch,
        })
    }
}

/// The value of field `name` in a caps string (`name=(type)value` or `name=value`), up
/// to the next `,` or `;`.
pub fn caps_field<'c>(caps: &'c str, name: &str) -> Option<&'c str> {
    let key = format!("{name}=");
    let at = caps
        .match_indices(&key)
        .find(|&(i, _)| i == 0 || matches!(caps.as_bytes()[i - 1], b' ' | b','))?
        .0
        + key.len();
    let rest = &caps[at..];
    let rest = rest
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .map_or(rest, |(_, r)| r);
    Some(rest.split([',', ';']).next()?.trim())
}

#[cfg(test)]
mod tests {
    use super::caps_field;

    #[test]
    fn caps_fields_are_found_by_whole_name() {
        let caps = "video/x-raw, format=(string)NV12, width=(int)640, height=480, \
                    pixel-aspect-ratio=(fraction)1/1, framerate=(fraction)30000/1001";
        assert_eq!(caps_field(caps, "format"), Some("NV12"));
        assert_eq!(caps_field(caps, "width"), Some("640"));
        assert_eq!(caps_field(caps, "height"), Some("480"));
        assert_eq!(caps_field(caps, "framerate"), Some("30000/1001"));
        assert_eq!(caps_field(caps, "rate"), None);
        assert_eq!(caps_field("x, a=(int", "a"), Some("(int"));
        assert_eq!(caps_field("", "width"), None);
    }
}
