//! The reading side: seqlock copy-outs that never return torn bytes, futex waits that
//! can be interrupted, and detection of a writer's EOS, close, death or restart.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::atomic::{compiler_fence, fence, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::error::{Error, Result};
use crate::layout::*;
use crate::location::{Handle, RingLocation};
use crate::mapping::{Geometry, Mapping, TableMapping};
use crate::sigbus;
use crate::sys;
use crate::writer::{check_private_dir, describe_type, same_file};
use crate::{FrameInfo, VideoLayout};

/// How long a wait sleeps at most before it checks that the writer is still alive.
pub const LIVENESS_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// How many torn copies in a row a read tolerates before giving up for this call.
const MAX_TORN_RETRIES: u32 = 64;

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

/// What became of a ring's writer, as seen by a reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterStatus {
    Live,
    Eos,
    /// Closed by its writer: a next writer may come under the same name.
    Closed,
    /// Replaced by a new ring under the same name (new geometry or caps).
    Replaced,
    /// The writer process is gone without closing (crash, SIGKILL).
    Dead,
}

/// One frame copied out of the ring.
#[derive(Debug)]
pub struct Frame<B> {
    pub info: FrameInfo,
    pub data: B,
    /// Frames between the previous one returned and this one that this reader never
    /// returned: skipped by `latest`, lost to the writer lapping `next`.
    pub missed: u64,
    /// Copies that were overwritten while being made and thrown away.
    pub torn_retries: u32,
}

/// A reader as its reader-table entry shows it (`RingReader::readers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderProgress {
    pub pid: u32,
    /// Sequence of the last frame it returned (0: none yet).
    pub last_seq: u64,
    pub received: u64,
    /// Frames skipped (`latest`) or lost to the writer lapping it (`next`).
    pub missed: u64,
    /// Copies overwritten while being made, thrown away and retried.
    pub torn: u64,
    /// Payload slots it holds in place now.
    pub leases: u32,
}

/// Result of a waiting read.
#[derive(Debug)]
pub enum Next<B> {
    Frame(Frame<B>),
    TimedOut,
    Interrupted,
    /// The writer ended the stream and every frame before the end was returned.
    Eos,
    /// The ring is no longer written (closed, replaced, writer dead): open it again.
    WriterGone(WriterStatus),
}

impl<B> Next<B> {
    /// The same outcome, with a frame's data turned into `f(data)`.
    pub fn map<C>(self, f: impl FnOnce(B) -> C) -> Next<C> {
        match self {
            Next::Frame(Frame {
                info,
                data,
                missed,
                torn_retries,
            }) => Next::Frame(Frame {
                info,
                data: f(data),
                missed,
                torn_retries,
            }),
            Next::TimedOut => Next::TimedOut,
            Next::Interrupted => Next::Interrupted,
            Next::Eos => Next::Eos,
            Next::WriterGone(w) => Next::WriterGone(w),
        }
    }
}

/// How `RingReader::seq_at` picks a frame by capture time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtRule {
    /// The frame captured closest to the time, before or after.
    Nearest,
    /// The last frame captured at or before the time.
    AtOrBefore,
    /// The first frame captured at or after the time.
    AtOrAfter,
}

impl std::str::FromStr for AtRule {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "nearest" => Ok(AtRule::Nearest),
            "at-or-before" => Ok(AtRule::AtOrBefore),
            "at-or-after" => Ok(AtRule::AtOrAfter),
            other => Err(format!(
                "rule {other:?}: expected nearest, at-or-before or at-or-after"
            )),
        }
    }
}

/// What `RingReader::seq_at` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The frame of this sequence.
    Frame(u64),
    /// Every frame that would do has been overwritten.
    Gone,
    /// No frame that would do is written yet.
    NotYet,
}

/// Result of a read by handle.
#[derive(Debug)]
pub enum ByHandle<B> {
    Frame(Frame<B>),
    /// Overwritten already (or the handle is of another epoch of this ring).
    Gone,
    /// Not written yet.
    NotYet,
}

enum Copy<B> {
    Ok(FrameInfo, B),
    /// The slot holds a newer frame than asked for: the asked one is gone.
    Newer,
    /// The slot holds an older frame (or is being written): the asked one is not there yet.
    Older,
    /// The writer changed the slot during our copy.
    Torn,
}

/// A reader of one ring file. Maps it read-only.
pub struct RingReader {
    loc: RingLocation,
    file: File,
    map: Arc<Mapping>,
    /// This reader's entry of the reader table, once zero-copy reads are enabled.
    leases: Option<Arc<LeaseTable>>,
    geom: Geometry,
    epoch: u64,
    /// Last sequence returned by latest/next (0: none yet).
    last: u64,
    eos_returned: bool,
    /// When the next wait with nothing new looks at the writer's lock. Kept across
    /// calls, so that callers looping with short timeouts still see a dead writer.
    liveness_due: Instant,
    interrupter: Interrupter,
}

impl RingReader {
    /// Opens the ring at `loc`. Checks that it is a regular file of the right owner and
    /// permissions, maps it read-only and validates the superblock against the file.
    /// The reader counts among the ring's readers (`reader_count`) until it is dropped.
    pub fn open(loc: &RingLocation) -> Result<Self> {
        Self::open_with(
            loc,
            Interrupter::new().map_err(|e| Error::io(loc.path(), "eventfd", e))?,
        )
    }

    /// As `open`, sharing an interrupter (so one `unlock` reaches every attach attempt).
    pub fn open_with(loc: &RingLocation, interrupter: Interrupter) -> Result<Self> {
        let reader = Self::open_unannounced(loc, interrupter)?;
        // Counted among the ring's readers (`reader_count`) for as long as the file is
        // open. Only tools read the count, so a ring whose file takes no lock is still
        // read.
        let _ = sys::hold_shared_byte(&reader.file, sys::READER_PRESENCE_BYTE);
        Ok(reader)
    }

    /// As `open`, for tools that look at a ring without reading it: this one is not
    /// counted in `reader_count`.
    pub fn open_for_inspection(loc: &RingLocation) -> Result<Self> {
        let interrupter = Interrupter::new().map_err(|e| Error::io(loc.path(), "eventfd", e))?;
        Self::open_unannounced(loc, interrupter)
    }

    fn open_unannounced(loc: &RingLocation, interrupter: Interrupter) -> Result<Self> {
        let path = loc.path();
        if loc.is_managed_dir() {
            match check_private_dir(loc.dir()) {
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::NotFound {
                        path: path.to_owned(),
                    })
                }
                r => r?,
            }
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => Error::NotFound {
                    path: path.to_owned(),
                },
                Some(libc::ELOOP) => Error::NotARingFile {
                    path: path.to_owned(),
                    found: "a symbolic link".into(),
                },
                _ => Error::io(path, "open", e),
            })?;
        let md = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
        if !md.file_type().is_file() {
            return Err(Error::NotARingFile {
                path: path.to_owned(),
                found: describe_type(&md),
            });
        }
        let me = nix::unistd::geteuid().as_raw();
        if md.uid() != me && loc.is_managed_dir() {
            return Err(Error::Insecure {
                path: path.to_owned(),
                what: format!("owned by uid {}, not by uid {me}", md.uid()),
            });
        }
        if md.mode() & 0o022 != 0 {
            return Err(Error::Insecure {
                path: path.to_owned(),
                what: format!("mode {:04o} lets others write to it", md.mode() & 0o7777),
            });
        }
        let map = Arc::new(Mapping::read_only(&file, path)?);
        let geom = Geometry::from_superblock(map.superblock(), map.len(), path)?;
        // Relaxed: fixed for the life of the file, validated non-zero above.
        let epoch = map.superblock().epoch.load(Ordering::Relaxed);
        Ok(RingReader {
            loc: loc.clone(),
            file,
            map,
            leases: None,
            geom,
            epoch,
            last: 0,
            eos_returned: false,
            liveness_due: Instant::now() + LIVENESS_CHECK_INTERVAL,
            interrupter,
        })
    }

    pub fn location(&self) -> &RingLocation {
        &self.loc
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn geometry(&self) -> Geometry {
        self.geom
    }

    pub fn interrupter(&self) -> Interrupter {
        self.interrupter.clone()
    }

    /// Last committed sequence (0: none).
    pub fn head(&self) -> u64 {
        // Acquire: pairs with the writer's Release store of head after a commit.
        self.map.superblock().head.load(Ordering::Acquire)
    }

    /// Makes the next `next` start after `seq` (0: from the oldest frame still held).
    pub fn seek_after(&mut self, seq: u64) {
        self.last = seq;
    }

    /// Leases readers may still take (the spare payload slots not leased).
    pub fn lease_budget(&self) -> u32 {
        // Relaxed: informative.
        self.map
            .reader_table(&self.geom)
            .lease_budget
            .load(Ordering::Relaxed)
    }

    /// The writer's pid as the ring records it.
    pub fn writer_pid(&self) -> u32 {
        // Relaxed: informative.
        self.map.superblock().writer_pid.load(Ordering::Relaxed)
    }

    /// The superblock, for tools that show it. All of it is untrusted.
    pub fn superblock(&self) -> &Superblock {
        self.map.superblock()
    }

    /// What the writer is doing. `Dead` means the ring's lock is free while the ring
    /// says it is live: the writer process ended without closing it.
    pub fn writer_status(&self) -> WriterStatus {
        // Acquire: pairs with the writer's Release store of its state.
        let raw = self.map.superblock().writer_state.load(Ordering::Acquire);
        let stated = match WriterState::from_raw(raw) {
            Some(WriterState::Eos) => WriterStatus::Eos,
            Some(WriterState::Closed) => return WriterStatus::Closed,
            Some(WriterState::Replaced) => return WriterStatus::Replaced,
            _ => WriterStatus::Live,
        };
        match sys::is_write_locked(&self.file) {
            // Ended, then the writer went away: a ring closed after EOS.
            Ok(false) if stated == WriterStatus::Eos => WriterStatus::Closed,
            Ok(false) => WriterStatus::Dead,
            _ => stated,
        }
    }

    /// True when the ring's name now points at another file (a new writer took over).
    pub fn is_superseded(&self) -> bool {
        !same_file(&self.file, self.loc.path())
    }

    /// Caps text of caps version `version`; None when it has been overwritten by a
    /// later version already (the frame is stale) or was never published.
    pub fn caps(&self, version: u32) -> Result<Option<String>> {
        self.check_mapped()?; // a truncated ring has no caps, not "none yet"
        if version == 0 {
            return Ok(None);
        }
        let slot = &self.map.superblock().caps[(version & 1) as usize];
        for _ in 0..MAX_TORN_RETRIES {
            // Acquire: pairs with the writer's Release store of the caps commit word.
            let c1 = slot.commit.load(Ordering::Acquire);
            if c1 != committed(u64::from(version)) {
                return Ok(None);
            }
            // Relaxed loads of the caps slot: validated by the commit re-check below.
            let len = slot.len.load(Ordering::Relaxed) as usize;
            if len > CAPS_CAPACITY {
                return Err(Error::corrupt(
                    self.loc.path(),
                    format!("caps length {len} > {CAPS_CAPACITY}"),
                ));
            }
            let mut bytes = Vec::with_capacity(len + 8);
            for w in slot.words.iter().take(len.div_ceil(8)) {
                bytes.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
            }
            bytes.truncate(len);
            // Pairs with the writer's Release fence after it marks the slot as writing.
            fence(Ordering::Acquire);
            if slot.commit.load(Ordering::Relaxed) != c1 {
                continue;
            }
            return String::from_utf8(bytes).map(Some).map_err(|_| {
                Error::corrupt(
                    self.loc.path(),
                    format!("caps version {version} is not UTF-8"),
                )
            });
        }
        Ok(None)
    }

    /// The latest caps version and its text.
    pub fn current_caps(&self) -> Result<Option<(u32, String)>> {
        // Acquire: pairs with the writer's Release store of caps_version.
        let v = self.map.superblock().caps_version.load(Ordering::Acquire);
        Ok(self.caps(v)?.map(|c| (v, c)))
    }

    /// The newest committed frame not returned yet, waiting up to `timeout` for one.
    /// `alloc` gives a buffer of at least `info.len` bytes for the copy.
    pub fn latest<B: AsMut<[u8]>>(
        &mut self,
        timeout: Duration,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Next<B>> {
        self.latest_with(timeout, |r, seq| r.copy(seq, &mut alloc))
    }

    /// As `latest`, but the frame's payload is leased in place when zero-copy reads are
    /// enabled and a lease is to be had; otherwise copied into `alloc`'s buffer.
    pub fn latest_zero_copy<B: AsMut<[u8]>>(
        &mut self,
        timeout: Duration,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Next<Payload<B>>> {
        self.latest_with(timeout, |r, seq| r.lease_or_copy(seq, &mut alloc))
    }

    fn latest_with<O>(
        &mut self,
        timeout: Duration,
        mut take: impl FnMut(&RingReader, u64) -> Result<Copy<O>>,
    ) -> Result<Next<O>> {
        let deadline = Instant::now() + timeout;
        let mut torn = 0;
        loop {
            let head = match self.wait_beyond(self.last, deadline)? {
                Ok(head) => head,
                Err(other) => return Ok(other),
            };
            match take(self, head)? {
                Copy::Ok(info, data) => {
                    let missed = if self.last == 0 {
                        0
                    } else {
                        head - self.last - 1
                    };
                    self.last = head;
                    self.note_progress(head, missed, torn);
                    return Ok(Next::Frame(Frame {
                        info,
                        data,
                        missed,
                        torn_retries: torn,
                    }));
                }
                // The writer lapped the whole ring during our copy: take the newest again,
                // for as long as the caller lets us wait.
                Copy::Torn | Copy::Newer => {
                    torn += 1;
                    if Instant::now() >= deadline {
                        return Ok(Next::TimedOut);
                    }
                }
                // An honest writer commits a frame before it stores head: the slot of
                // head holds that frame or a newer one, never an older.
                Copy::Older => {
                    self.check_mapped()?; // a truncation zeroes the slot too
                    return Err(Error::corrupt(
                        self.loc.path(),
                        format!("head is {head} but its slot holds no such frame"),
                    ));
                }
            }
        }
    }

    /// Every frame in order from the attach point (or from `seek_after`). When the
    /// writer has lapped this reader, jumps to the oldest frame still in the ring and
    /// reports how many were lost in `missed`.
    pub fn next<B: AsMut<[u8]>>(
        &mut self,
        timeout: Duration,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Next<B>> {
        self.next_with(timeout, |r, seq| r.copy(seq, &mut alloc))
    }

    /// As `next`, leasing payloads in place where it can (see `latest_zero_copy`).
    pub fn next_zero_copy<B: AsMut<[u8]>>(
        &mut self,
        timeout: Duration,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Next<Payload<B>>> {
        self.next_with(timeout, |r, seq| r.lease_or_copy(seq, &mut alloc))
    }

    fn next_with<O>(
        &mut self,
        timeout: Duration,
        mut take: impl FnMut(&RingReader, u64) -> Result<Copy<O>>,
    ) -> Result<Next<O>> {
        let deadline = Instant::now() + timeout;
        let mut torn = 0;
        let previous = self.last;
        let mut want = self.last.saturating_add(1);
        loop {
            let head = match self.wait_beyond(want - 1, deadline)? {
                Ok(head) => head,
                Err(other) => return Ok(other),
            };
            // Lapped while away: the oldest frame still held is the next one.
            let oldest = head
                .saturating_sub(u64::from(self.geom.slot_count) - 1)
                .max(1);
            want = want.max(oldest);
            match take(self, want)? {
                Copy::Ok(info, data) => {
                    self.last = want;
                    let missed = if previous == 0 {
                        0
                    } else {
                        want - previous - 1
                    };
                    self.note_progress(want, missed, torn);
                    return Ok(Next::Frame(Frame {
                        info,
                        data,
                        missed,
                        torn_retries: torn,
                    }));
                }
                Copy::Torn | Copy::Newer => {
                    // Overwritten while we copied it: this reader is slower than the
                    // writer. The oldest frames are the next to be overwritten, so aim at
                    // the newest, which leaves the whole ring as headroom.
                    torn += 1;
                    want = self.head().max(want.saturating_add(1));
                    if Instant::now() >= deadline {
                        return Ok(Next::TimedOut);
                    }
                }
                Copy::Older => {
                    // head says committed but the slot disagrees: only a hostile writer.
                    return Err(Error::corrupt(
                        self.loc.path(),
                        format!("head is {head} but frame {want} is not committed in its slot"),
                    ));
                }
            }
        }
    }

    /// Exactly the frame a handle names, without waiting.
    pub fn by_handle<B: AsMut<[u8]>>(
        &mut self,
        handle: &Handle,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<ByHandle<B>> {
        self.check_mapped()?; // a truncated ring holds no frame: not "not yet"
        if handle.epoch != self.epoch {
            return Ok(ByHandle::Gone);
        }
        for torn in 0..MAX_TORN_RETRIES {
            if handle.seq > self.head() {
                return Ok(ByHandle::NotYet);
            }
            match self.copy(handle.seq, &mut alloc)? {
                Copy::Ok(info, data) => {
                    self.note_progress(handle.seq, 0, torn);
                    return Ok(ByHandle::Frame(Frame {
                        info,
                        data,
                        missed: 0,
                        torn_retries: torn,
                    }));
                }
                Copy::Newer | Copy::Torn => return Ok(ByHandle::Gone),
                Copy::Older => continue,
            }
        }
        Ok(ByHandle::NotYet)
    }

    /// The frame of this ring captured closest to `captured_at_ns` (wall clock, ns
    /// since the Unix epoch) by `rule`, among the frames it holds now. Capture times are
    /// the writer's: they need not rise with the sequence, so every held frame is
    /// looked at (at most the ring's slots, descriptors only).
    pub fn seq_at(&self, captured_at_ns: u64, rule: AtRule) -> Result<At> {
        self.check_mapped()?; // a truncated ring reads head 0: not "not yet"
        let head = self.head().min(MAX_SEQ);
        if head == 0 {
            return Ok(At::NotYet);
        }
        let oldest = head
            .saturating_sub(u64::from(self.geom.slot_count) - 1)
            .max(1);
        let (mut best, mut any) = (None::<(u64, u64)>, false);
        for seq in oldest..=head {
            let Some(info) = self.peek(seq)? else {
                continue; // being rewritten: no longer held
            };
            let t = info.captured_at_ns;
            any = true;
            let fits = match rule {
                AtRule::Nearest => true,
                AtRule::AtOrBefore => t <= captured_at_ns,
                AtRule::AtOrAfter => t >= captured_at_ns,
            };
            let distance = t.abs_diff(captured_at_ns);
            if fits && best.is_none_or(|(_, d)| distance < d) {
                best = Some((seq, distance));
            }
        }
        Ok(match best {
            Some((seq, _)) => At::Frame(seq),
            None if !any => At::NotYet,
            // Every frame held is newer than asked (at-or-before): those before are gone.
            None if rule == AtRule::AtOrBefore => At::Gone,
            // Every frame held is older (at-or-after): the one asked for is to come.
            None => At::NotYet,
        })
    }

    /// The oldest frame held that was captured at or after `captured_at_ns` (wall
    /// clock), for a reader that starts from a moment in the past (look-back); None
    /// when every frame held is older.
    pub fn oldest_since(&self, captured_at_ns: u64) -> Result<Option<u64>> {
        self.check_mapped()?; // as in seq_at
        let head = self.head().min(MAX_SEQ);
        let oldest = head
            .saturating_sub(u64::from(self.geom.slot_count) - 1)
            .max(1);
        for seq in oldest..=head {
            if let Some(info) = self.peek(seq)? {
                if info.captured_at_ns >= captured_at_ns {
                    return Ok(Some(seq));
                }
            }
        }
        Ok(None)
    }

    /// What the ring says about frame `seq`, without copying its payload: None when the
    /// slot does not hold that frame committed (yet or any more).
    pub fn peek(&self, seq: u64) -> Result<Option<FrameInfo>> {
        if seq == 0 {
            return Ok(None);
        }
        let index = self.geom.slot_of(seq);
        let d = self.map.descriptor(&self.geom, index);
        // Acquire: pairs with the writer's Release store of `committed(seq)`.
        let c1 = d.commit.load(Ordering::Acquire);
        if c1 != committed(seq) {
            self.check_mapped()?; // a truncated mapping reads 0 here
            return Ok(None);
        }
        let info = self.read_descriptor(d, seq, index)?;
        // Pairs with the writer's Release fence after it marks the slot as writing.
        fence(Ordering::Acquire);
        Ok((d.commit.load(Ordering::Relaxed) == c1).then_some(info))
    }

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
    fn wait_beyond<B>(
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

    /// Whether the writer said its stream ended (EOS), whether or not it is still there.
    pub fn stream_ended(&self) -> bool {
        self.writer_status_quick() == WriterStatus::Eos
    }

    /// State from the superblock alone (no syscall): the hot path of a wait.
    fn writer_status_quick(&self) -> WriterStatus {
        // Acquire: pairs with the writer's Release store of its state.
        match WriterState::from_raw(self.map.superblock().writer_state.load(Ordering::Acquire)) {
            Some(WriterState::Eos) => WriterStatus::Eos,
            Some(WriterState::Closed) => WriterStatus::Closed,
            Some(WriterState::Replaced) => WriterStatus::Replaced,
            _ => WriterStatus::Live,
        }
    }

    /// Publishes this reader's progress in its reader-table entry, if it has one.
    fn note_progress(&self, seq: u64, missed: u64, torn: u32) {
        if let Some(t) = &self.leases {
            let e = t.table.entry(t.entry);
            // Relaxed: statistics, stored only by this reader (the entry's owner).
            e.last_seq.store(seq, Ordering::Relaxed);
            e.received.fetch_add(1, Ordering::Relaxed);
            e.missed.fetch_add(missed, Ordering::Relaxed);
            e.torn.fetch_add(u64::from(torn), Ordering::Relaxed);
        }
    }

    /// How many readers have this ring file open now: every `RingReader` opened with
    /// `open`, `open_with` or `attach`, in any process, those without write access
    /// (which have no entry in the reader table) included. None where the kernel's lock
    /// table (/proc/locks) cannot be read.
    pub fn reader_count(&self) -> Option<usize> {
        let id = sys::file_id(&self.file).ok()?;
        sys::shared_locks_on(id, sys::READER_PRESENCE_BYTE)
    }

    /// The readers that hold an entry of the reader table now (those that read in
    /// place, or could), with their progress as they last published it.
    pub fn readers(&self) -> Vec<ReaderProgress> {
        (0..READER_ENTRIES)
            .filter_map(|i| {
                let e = self.map.reader_entry(&self.geom, i);
                // Relaxed: statistics; the lock test below says whether it is live.
                let pid = e.pid.load(Ordering::Relaxed);
                let byte = self.geom.reader_table_offset + (i as u64 + 1) * READER_ENTRY_SIZE;
                if pid == 0 || !sys::is_byte_locked(&self.file, byte).unwrap_or(false) {
                    return None;
                }
                Some(ReaderProgress {
                    pid,
                    last_seq: e.last_seq.load(Ordering::Relaxed),
                    received: e.received.load(Ordering::Relaxed),
                    missed: e.missed.load(Ordering::Relaxed),
                    torn: e.torn.load(Ordering::Relaxed),
                    leases: e
                        .leases
                        .iter()
                        .filter(|w| w.load(Ordering::Relaxed) != 0)
                        .count() as u32,
                })
            })
            .collect()
    }

    /// Lets `latest_zero_copy` and `next_zero_copy` lease payload slots in place. Needs
    /// write access to the ring file (the reader table is written); Ok(false), with
    /// copies as before, when this user has none or every entry of the table is taken.
    pub fn enable_zero_copy(&mut self) -> Result<bool> {
        if self.leases.is_some() {
            return Ok(true);
        }
        let path = self.loc.path();
        let rw = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(false),
            Err(e) => return Err(Error::io(path, "open read-write", e)),
        };
        // The name may point at a newer ring by now: lease only in the file we read.
        if sys::file_id(&rw).ok() != sys::file_id(&self.file).ok() {
            return Ok(false);
        }
        let table = TableMapping::map(&rw, &self.geom, path)?;
        for entry in 0..READER_ENTRIES {
            let byte = self.geom.reader_table_offset + (entry as u64 + 1) * READER_ENTRY_SIZE;
            if !sys::try_lock_byte(&rw, byte)
                .map_err(|e| Error::io(path, "lock reader entry", e))?
            {
                continue;
            }
            let t = LeaseTable {
                _lock_holder: rw,
                table,
                entry,
            };
            t.clear();
            let e = t.table.entry(entry);
            // Relaxed: statistics of the entry's previous owner, if any.
            for counter in [&e.last_seq, &e.received, &e.missed, &e.torn] {
                counter.store(0, Ordering::Relaxed);
            }
            e.pid.store(std::process::id(), Ordering::Relaxed);
            self.leases = Some(Arc::new(t));
            return Ok(true);
        }
        Ok(false)
    }

    /// The seqlock read of frame `seq`, leasing the payload in place when it can.
    fn lease_or_copy<B: AsMut<[u8]>>(
        &self,
        seq: u64,
        alloc: &mut impl FnMut(&FrameInfo) -> B,
    ) -> Result<Copy<Payload<B>>> {
        let copied = |c: Copy<B>| match c {
            Copy::Ok(info, b) => Copy::Ok(info, Payload::Copied(b)),
            Copy::Newer => Copy::Newer,
            Copy::Older => Copy::Older,
            Copy::Torn => Copy::Torn,
        };
        let Some(table) = &self.leases else {
            return Ok(copied(self.copy(seq, alloc)?));
        };
        let index = self.geom.slot_of(seq);
        let d = self.map.descriptor(&self.geom, index);
        // Acquire: pairs with the writer's Release store of `committed(seq)`.
        let c1 = d.commit.load(Ordering::Acquire);
        if c1 != committed(seq) {
            self.check_mapped()?; // a truncated mapping reads 0 here
            return Ok(if c1 >> 1 > seq {
                Copy::Newer
            } else {
                Copy::Older
            });
        }
        let info = self.read_descriptor(d, seq, index)?;
        // Once: fstat and the touch below must not both be skipped by an answer that
        // changes in between.
        let guarded = self.guarded();
        self.check_size(guarded)?;
        let Some(word) = table.try_lease(info.payload_index) else {
            return Ok(copied(self.copy(seq, alloc)?)); // no lease to be had: copy
        };
        // try_lease ended with a SeqCst fence: the reader's half of the handshake. If
        // the frame is still committed, the writer will see our lease before it reuses
        // the slot.
        let lease = Lease {
            table: table.clone(),
            word,
        };
        if guarded {
            // A file shrunk below this frame's last page faults here, rather than in
            // whoever reads the lease: the guard zeroes the whole mapping, commit word
            // included, so the check below fails. This replaces an fstat per frame.
            self.map
                .touch_payload_end(&self.geom, info.payload_index, info.len);
            // The fault's handler runs on this thread: keep the load below after it.
            compiler_fence(Ordering::SeqCst);
        }
        if d.commit.load(Ordering::Relaxed) != c1 {
            // A truncation (ours or another thread's) or the writer moving on.
            self.check_mapped()?;
            return Ok(Copy::Torn); // dropping the lease gives it back
        }
        let ptr = self
            .map
            .payload_start(&self.geom, info.payload_index, info.len)
            .ok_or_else(|| {
                Error::corrupt(
                    self.loc.path(),
                    format!("frame {seq} lies outside the file"),
                )
            })?;
        let leased = LeasedPayload {
            _map: self.map.clone(),
            ptr,
            len: info.len as usize,
            _lease: lease,
        };
        Ok(Copy::Ok(info, Payload::Leased(leased)))
    }

    /// A writer of the same user could shrink the file under us; reading past its end
    /// would be a SIGBUS. Checked right before each copy or lease (see docs/security.md).
    /// Where the guard covers this reader's mappings, a shrink turns them into zeros
    /// instead (`sigbus`): a copy then fails its seqlock check, a lease is touched
    /// before it is handed out (`lease_or_copy`), and `check_mapped` reports either with
    /// no syscall. Unguarded, the size is checked with fstat. `guarded`: `guarded()`.
    fn check_size(&self, guarded: bool) -> Result<()> {
        self.check_mapped()?;
        if guarded {
            return Ok(());
        }
        let size = sys::file_size(&self.file).map_err(|e| Error::io(self.loc.path(), "stat", e))?;
        if size < self.geom.total_size {
            return Err(Error::corrupt(
                self.loc.path(),
                format!(
                    "file shrank to {size} bytes under the reader (ring needs {})",
                    self.geom.total_size
                ),
            ));
        }
        Ok(())
    }

    /// Whether every mapping this reader touches is guarded: a shrink of the file reads
    /// as zeros there, and is then reported by `check_mapped`, rather than kill us.
    fn guarded(&self) -> bool {
        self.map.guarded()
            && self.leases.as_ref().is_none_or(|t| t.table.guarded())
            && sigbus::still_ours()
    }

    /// Whether a shrink of the file under the mapping zeroed it (no syscall).
    fn check_mapped(&self) -> Result<()> {
        let zeroed =
            self.map.truncated() || self.leases.as_ref().is_some_and(|t| t.table.truncated());
        if zeroed {
            return Err(Error::Truncated {
                path: self.loc.path().to_owned(),
                role: "reader",
            });
        }
        Ok(())
    }

    /// The seqlock read of frame `seq`.
    fn copy<B: AsMut<[u8]>>(
        &self,
        seq: u64,
        alloc: &mut impl FnMut(&FrameInfo) -> B,
    ) -> Result<Copy<B>> {
        let index = self.geom.slot_of(seq);
        let d = self.map.descriptor(&self.geom, index);
        // Acquire: pairs with the writer's Release store of `committed(seq)`.
        let c1 = d.commit.load(Ordering::Acquire);
        if c1 != committed(seq) {
            self.check_mapped()?; // a truncated mapping reads 0 here
            return Ok(if c1 >> 1 > seq {
                Copy::Newer
            } else {
                Copy::Older
            });
        }
        let info = self.read_descriptor(d, seq, index)?;
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
        self.check_size(self.guarded())?;
        let payload_index = info.payload_index;
        self.map
            .copy_payload(&self.geom, payload_index, &mut dst[..info.len as usize])
            .ok_or_else(|| {
                Error::corrupt(
                    self.loc.path(),
                    format!("frame {seq} lies outside the file"),
                )
            })?;
        // Pairs with the writer's Release fence after it stores `writing(seq')`: if any
        // byte we copied came from a newer write, the load below sees the new word.
        fence(Ordering::Acquire);
        if d.commit.load(Ordering::Relaxed) != c1 {
            // A file shrunk under the copy reads as zeros from then on, commit word
            // included: that is the news, not the writer lapping us.
            self.check_mapped()?;
            return Ok(Copy::Torn);
        }
        Ok(Copy::Ok(info, data))
    }

    fn read_descriptor(&self, d: &Descriptor, seq: u64, index: u32) -> Result<FrameInfo> {
        let bad = |what: String| {
            Err(Error::corrupt(
                self.loc.path(),
                format!("frame {seq} (slot {index}): {what}"),
            ))
        };
        let opt = |v: u64| (v != u64::MAX).then_some(v);
        // Relaxed loads: ordered after the Acquire commit load, validated by the re-check.
        let payload_index = d.payload_index.load(Ordering::Relaxed);
        if payload_index >= self.geom.payload_count {
            return bad(format!(
                "payload slot {payload_index} of {}",
                self.geom.payload_count
            ));
        }
        let len = d.payload_len.load(Ordering::Relaxed);
        if len > self.geom.slot_stride {
            return bad(format!(
                "payload of {len} bytes in a slot of {}",
                self.geom.slot_stride
            ));
        }
        let n_planes = d.n_planes.load(Ordering::Relaxed);
        if n_planes as usize > MAX_PLANES {
            return bad(format!("{n_planes} planes, at most {MAX_PLANES}"));
        }
        let mut video = VideoLayout {
            format: d.video_format.load(Ordering::Relaxed),
            width: d.width.load(Ordering::Relaxed),
            height: d.height.load(Ordering::Relaxed),
            n_planes,
            ..Default::default()
        };
        for p in 0..MAX_PLANES {
            video.offsets[p] = d.plane_offset[p].load(Ordering::Relaxed);
            video.strides[p] = d.plane_stride[p].load(Ordering::Relaxed) as i32;
        }
        Ok(FrameInfo {
            seq,
            epoch: self.epoch,
            len,
            payload_index,
            caps_version: d.caps_version.load(Ordering::Relaxed),
            pts: opt(d.pts.load(Ordering::Relaxed)),
            dts: opt(d.dts.load(Ordering::Relaxed)),
            duration: opt(d.duration.load(Ordering::Relaxed)),
            captured_at_ns: d.captured_at_ns.load(Ordering::Relaxed),
            commit_mono_ns: d.commit_mono_ns.load(Ordering::Relaxed),
            flags: d.flags.load(Ordering::Relaxed),
            video,
        })
    }
}

/// A frame's payload: copied into the caller's buffer, or leased in place.
#[derive(Debug)]
pub enum Payload<B> {
    Copied(B),
    Leased(LeasedPayload),
}

impl<B: AsRef<[u8]>> Payload<B> {
    /// A copy of the frame's bytes, wherever they are.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Payload::Copied(b) => b.as_ref().to_vec(),
            Payload::Leased(l) => l.to_vec(),
        }
    }
}

/// This reader's entry of the reader table: the read-write file that holds the entry's
/// lock, and the table page mapped read-write.
struct LeaseTable {
    /// Open read-write; holds the OFD lock that makes `entry` ours until dropped.
    _lock_holder: File,
    table: TableMapping,
    entry: usize,
}

impl LeaseTable {
    /// Takes a unit of the lease budget and records a lease of `payload_index` in a free
    /// word of our entry, then fences (SeqCst). None when no budget or word is free.
    fn try_lease(&self, payload_index: u32) -> Option<usize> {
        let budget = &self.table.header().lease_budget;
        // AcqRel CAS: the budget is shared by every reader and the writer's reclaimer.
        budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| b.checked_sub(1))
            .ok()?;
        let entry = self.table.entry(self.entry);
        for (i, w) in entry.leases.iter().enumerate() {
            // Relaxed CAS: this reader's own word (leases drop on other threads);
            // ordered before the commit re-check by the SeqCst fence below.
            if w.compare_exchange(0, payload_index + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                // The reader's half of the handshake with the writer's SeqCst fence in
                // begin(): lease store, fence, then the caller re-checks the commit word.
                fence(Ordering::SeqCst);
                return Some(i);
            }
        }
        budget.fetch_add(1, Ordering::AcqRel);
        None
    }

    /// Gives lease word `i` back (and its unit of budget, if we were the one to zero it).
    fn release(&self, i: usize) {
        // Release swap: our reads of the leased bytes happen before the writer may see
        // the slot free (pairs with its loads after its SeqCst fence).
        if self.table.entry(self.entry).leases[i].swap(0, Ordering::Release) != 0 {
            self.table
                .header()
                .lease_budget
                .fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Drops whatever a previous owner of the entry left behind.
    fn clear(&self) {
        for i in 0..LEASES_PER_READER {
            self.release(i);
        }
    }
}

impl Drop for LeaseTable {
    fn drop(&mut self) {
        self.clear();
        // Relaxed: read by the writer's reclaimer only as a hint, under the entry's
        // lock. A zero pid says this reader left cleanly: nothing of the budget is lost.
        self.table.entry(self.entry).pid.store(0, Ordering::Relaxed);
        // Closing `file` releases the entry's lock.
    }
}

/// One leased payload word; released when dropped.
struct Lease {
    table: Arc<LeaseTable>,
    word: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.table.release(self.word);
    }
}

/// A frame's bytes in the ring itself, which an honest writer does not reuse while this
/// lives. They lie in memory that another process could still change (a writer that
/// breaks the protocol, or a truncation that turns the mapping into zeros:
/// docs/security.md), so they are not handed out as a `&[u8]`: read them with `copy_to`
/// or `to_vec`, which copy through raw pointers as the seqlock copy does, or give the
/// pointer to C code.
pub struct LeasedPayload {
    _map: Arc<Mapping>,
    ptr: *const u8,
    len: usize,
    _lease: Lease,
}

// SAFETY: the bytes live in a shared mapping kept alive by `_map`; nothing about them is
// tied to the thread that leased them.
unsafe impl Send for LeasedPayload {}
// SAFETY: only reads are offered, through raw pointers.
unsafe impl Sync for LeasedPayload {}

impl LeasedPayload {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first byte; `len()` bytes from it stay mapped while this lives.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// Copies the frame's bytes into `dst`, as many as both hold; returns how many.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len);
        // SAFETY: ptr..ptr+len lies in the mapping (payload_start checked it) that `_map`
        // keeps alive, and `dst` is memory of this process outside any ring mapping, so
        // they do not overlap. The bytes are read through a raw pointer, never a
        // reference: if a process breaking the protocol changes them meanwhile, the
        // copy is wrong, which is the contained racy read of the seqlock copy
        // (docs/design.md, "Shared bytes are never Rust references").
        unsafe { std::ptr::copy_nonoverlapping(self.ptr, dst.as_mut_ptr(), n) };
        n
    }

    /// A copy of the frame's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        self.copy_to(&mut v);
        v
    }

    /// Gives the lease back but keeps the ring mapped: views of the bytes made before
    /// stay valid memory for as long as the returned value lives, though the writer may
    /// now rewrite them (Python's frames after their `with` block).
    pub fn release(self) -> RingHold {
        RingHold {
            _map: self._map.clone(),
        }
    }

    /// The bytes as a slice, for an API that only passes the pointer on to C code, as
    /// `gst::Buffer::from_slice` does.
    ///
    /// # Safety
    /// Rust code must not read through the slice: the bytes are shared memory another
    /// process could change (see the type's documentation). Hand it to C code only.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is mapped while self lives (see copy_to); what may be done
        // with the slice is the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Keeps a ring's mapping alive, nothing more (`LeasedPayload::release`).
pub struct RingHold {
    _map: Arc<Mapping>,
}

impl std::fmt::Debug for LeasedPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeasedPayload({} bytes)", self.len)
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
                WriterStatus::Live | WriterStatus::Eos => return Ok(Attach::Reader(Box::new(r))),
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
