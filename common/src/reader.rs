//! The reading side: seqlock copy-outs that never return torn bytes.
//!
//! A `RingReader` reads the newest frame or every frame in order, a frame by handle or
//! by capture time, and sees a writer's EOS, close, death or restart. Its waits are in
//! `waits`, its leases of payload slots in place in `leases`, caps in `caps`.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::layout::*;
use crate::leases::LeaseTable;
use crate::location::RingLocation;
use crate::mapping::{Geometry, Mapping};
use crate::names::{check_private_dir, describe_type, same_file};
use crate::sys;
use crate::{FrameInfo, VideoLayout};

// The rest of the reading side's API: leased payloads, and waits.
pub use crate::leases::{LeasedPayload, Payload, RingHold};
pub use crate::lookup::{At, AtRule, ByHandle};
pub use crate::waits::{attach, Attach, Interrupter, RingWatch, LIVENESS_CHECK_INTERVAL};

/// How many torn copies in a row a read tolerates before giving up for this call.
pub(crate) const MAX_TORN_RETRIES: u32 = 64;

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

/// What became of one seqlock read of a frame.
pub(crate) enum Copy<B> {
    Ok(FrameInfo, B),
    /// The slot holds a newer frame than asked for: the asked one is gone.
    Newer,
    /// The slot holds an older frame (or is being written): the asked one is not there yet.
    Older,
    /// The writer changed the slot during our copy.
    Torn,
}

/// Which frame a waiting read takes (`RingReader::read_with`).
#[derive(Clone, Copy)]
pub(crate) enum Pick {
    /// The newest committed (`latest`): frames in between are skipped.
    Newest,
    /// The one after the last returned (`next`), or the oldest still held once the
    /// writer has lapped this reader.
    InOrder,
}

/// A frame found committed in its slot: the first half of a seqlock read
/// (`RingReader::open_frame`).
pub(crate) struct CommittedFrame<'a> {
    pub(crate) desc: &'a Descriptor,
    /// The slot's commit word as loaded (Acquire): what is read of the frame holds only
    /// if the word is unchanged afterwards.
    pub(crate) word: u64,
    pub(crate) info: FrameInfo,
}

/// A reader of one ring file. Maps it read-only.
pub struct RingReader {
    pub(crate) loc: RingLocation,
    /// Shared with the claims made of it (`claims`), for their size check.
    pub(crate) file: Arc<File>,
    pub(crate) map: Arc<Mapping>,
    /// This reader's entry of the reader table, once zero-copy reads are enabled.
    pub(crate) leases: Option<Arc<LeaseTable>>,
    pub(crate) geom: Geometry,
    epoch: u64,
    /// Last sequence returned by latest/next (0: none yet).
    pub(crate) last: u64,
    /// `last` was set by `seek_to_unit`: the next unit is `last + 1`, even after 0.
    pub(crate) unit_sought: bool,
    /// A unit claimed by this reader was overwritten during its copy (`claim_torn`): the
    /// next unit is the newest keyframe's.
    pub(crate) unit_lost: bool,
    /// Frames that claims of this reader lost (`claim_torn`), not yet counted in the
    /// `missed` of a frame returned: the next one's.
    pub(crate) missed_unreported: u64,
    pub(crate) eos_returned: bool,
    /// When the next wait with nothing new looks at the writer's lock. Kept across
    /// calls, so that callers looping with short timeouts still see a dead writer.
    pub(crate) liveness_due: Instant,
    pub(crate) interrupter: Interrupter,
}

/// The largest ring a reader maps whole when it attaches (`RingReader::prefault`).
pub const PREFAULT_MAX: u64 = 1 << 30;

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

    /// Makes this reader's page tables for the whole ring now, rather than a few
    /// hundred page faults in each of the first frames it reads from each slot, which
    /// were a reader's slowest (`docs/latency.md`, "The first pass over the ring"):
    /// 3 ms for a 1080p ring of 16 slots, 70 ms for one of 1 GiB. The follow policy
    /// calls it for the ring it reads (`attach`, `Follower::open`), not for the dead
    /// writers' rings `attach` passes over, and tools that only look never do. Advice:
    /// nothing is reported.
    /// - Only a ring in memory (tmpfs, hugetlbfs, ramfs: `sys::is_in_memory`). A ring
    ///   directory on a disk (`SHMRING_DIR`) would have the whole file read from it at
    ///   attach, in a call that nothing, `unlock` included, can cut short; there the
    ///   pages fault in as they are read.
    /// - Only a ring without holes (`SEEK_HOLE`): on tmpfs a read fault in a hole
    ///   allocates a page, so a sparse file (hand-made or hostile) is faulted in only as
    ///   far as it is read. A writer reserves every page of its ring. Filesystems that
    ///   report no holes at all (ramfs) are taken at their word.
    /// - Only rings up to `PREFAULT_MAX`: larger ones (up to 64 GiB) would hold the
    ///   process's memory map for seconds and take megabytes of page tables at once.
    /// - A kernel before 5.14 or a profile refusing it, or a file shrunk meanwhile
    ///   (EFAULT, no SIGBUS), leaves the pages to fault in as they are read.
    pub fn prefault(&self) {
        let len = self.geom.total_size;
        if len > PREFAULT_MAX || !sys::is_in_memory(&self.file) {
            return;
        }
        // The first hole at or after byte 0: the file's end when there is none.
        let first_hole = nix::unistd::lseek(&self.file, 0, nix::unistd::Whence::SeekHole);
        if first_hole.is_ok_and(|h| u64::try_from(h).is_ok_and(|h| h >= len)) {
            let _ = self.map.prefault(len);
        }
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
            file: Arc::new(file),
            map,
            leases: None,
            geom,
            epoch,
            last: 0,
            unit_sought: false,
            unit_lost: false,
            missed_unreported: 0,
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

    /// Makes the next `next` start after `seq` (0: from the oldest frame still held;
    /// for `next_unit`, from the newest keyframe).
    pub fn seek_after(&mut self, seq: u64) {
        self.last = seq;
        self.unit_sought = false;
        self.unit_lost = false;
    }

    /// Makes the next `next_unit` return unit `seq` (a keyframe from `keyframe_for`),
    /// then the units after it.
    pub fn seek_to_unit(&mut self, seq: u64) {
        self.last = seq.saturating_sub(1);
        self.unit_sought = true;
        self.unit_lost = false;
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

    /// The newest committed frame not returned yet, waiting up to `timeout` for one.
    /// `alloc` gives a buffer of at least `info.len` bytes for the copy.
    pub fn latest<B: AsMut<[u8]>>(
        &mut self,
        timeout: Duration,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Next<B>> {
        self.read_noted(Pick::Newest, timeout, |r, seq| r.copy(seq, &mut alloc))
    }

    /// As `latest`, but the frame's payload is leased in place when zero-copy reads are
    /// enabled and a lease is to be had; otherwise copied into `alloc`'s buffer.
    pub fn latest_zero_copy<B: AsMut<[u8]>>(
        &mut self,
        timeout: Duration,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Next<Payload<B>>> {
        self.read_noted(Pick::Newest, timeout, |r, seq| {
            r.lease_or_copy(seq, &mut alloc)
        })
    }

    /// Every frame in order from the attach point (or from `seek_after`). When the
    /// writer has lapped this reader, jumps to the oldest frame still in the ring and
    /// reports how many were lost in `missed`.
    pub fn next<B: AsMut<[u8]>>(
        &mut self,
        timeout: Duration,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Next<B>> {
        self.read_noted(Pick::InOrder, timeout, |r, seq| r.copy(seq, &mut alloc))
    }

    /// As `next`, leasing payloads in place where it can (see `latest_zero_copy`).
    pub fn next_zero_copy<B: AsMut<[u8]>>(
        &mut self,
        timeout: Duration,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<Next<Payload<B>>> {
        self.read_noted(Pick::InOrder, timeout, |r, seq| {
            r.lease_or_copy(seq, &mut alloc)
        })
    }

    /// `read_with`, publishing the reader's progress when it returns a frame.
    fn read_noted<O>(
        &mut self,
        pick: Pick,
        timeout: Duration,
        take: impl FnMut(&RingReader, u64) -> Result<Copy<O>>,
    ) -> Result<Next<O>> {
        let next = self.read_with(pick, timeout, take)?;
        Ok(self.noted(next))
    }

    /// `next`, its frame's progress published (if it returns one).
    pub(crate) fn noted<O>(&self, next: Next<O>) -> Next<O> {
        if let Next::Frame(f) = &next {
            self.note_progress(f.info.seq, f.missed, f.torn_retries);
        }
        next
    }

    /// The read of `latest` and `next`: `pick` says which frame, `take` copies, leases or
    /// claims it. The reader's progress is the caller's to publish.
    pub(crate) fn read_with<O>(
        &mut self,
        pick: Pick,
        timeout: Duration,
        mut take: impl FnMut(&RingReader, u64) -> Result<Copy<O>>,
    ) -> Result<Next<O>> {
        let deadline = Instant::now() + timeout;
        let mut torn = 0;
        let previous = self.last;
        let mut want = self.last.saturating_add(1);
        loop {
            let after = match pick {
                Pick::Newest => previous,
                Pick::InOrder => want - 1,
            };
            let head = match self.wait_beyond(after, deadline)? {
                Ok(head) => head,
                Err(other) => return Ok(other),
            };
            let seq = match pick {
                Pick::Newest => head,
                Pick::InOrder => {
                    // Lapped while away: the oldest frame still held is the next one.
                    want = want.max(self.geom.oldest_held(head));
                    want
                }
            };
            match take(self, seq)? {
                Copy::Ok(info, data) => {
                    let skipped = if previous == 0 { 0 } else { seq - previous - 1 };
                    let missed =
                        skipped.saturating_add(std::mem::take(&mut self.missed_unreported));
                    self.last = seq;
                    return Ok(Next::Frame(Frame {
                        info,
                        data,
                        missed,
                        torn_retries: torn,
                    }));
                }
                Copy::Torn | Copy::Newer => {
                    torn += 1;
                    match pick {
                        // The writer lapped the whole ring during our copy: take the
                        // newest again, for as long as the caller lets us wait.
                        Pick::Newest => {}
                        // Overwritten while we copied it: this reader is slower than the
                        // writer. The oldest frames are the next to be overwritten, so aim
                        // at the newest, which leaves the whole ring as headroom.
                        Pick::InOrder => want = self.head().max(want.saturating_add(1)),
                    }
                    // A torn copy is retried at once, however short the timeout (a
                    // poll's is zero): the deadline bounds waits, and giving up here
                    // would aim the next call at the same slot the writer takes next.
                    if torn >= MAX_TORN_RETRIES && Instant::now() >= deadline {
                        return Ok(Next::TimedOut);
                    }
                }
                Copy::Older => {
                    return Err(match pick {
                        // An honest writer commits a frame before it stores head: the slot
                        // of head holds that frame or a newer one, never an older.
                        Pick::Newest => {
                            self.check_mapped()?; // a truncation zeroes the slot too
                            Error::corrupt(
                                self.loc.path(),
                                format!("head is {head} but its slot holds no such frame"),
                            )
                        }
                        // head says committed but the slot disagrees: only a hostile writer.
                        Pick::InOrder => Error::corrupt(
                            self.loc.path(),
                            format!("head is {head} but frame {want} is not committed in its slot"),
                        ),
                    });
                }
            }
        }
    }

    /// What the ring says about frame `seq`, without copying its payload: None when the
    /// slot does not hold that frame committed (yet or any more).
    pub fn peek(&self, seq: u64) -> Result<Option<FrameInfo>> {
        if seq == 0 {
            return Ok(None);
        }
        let Ok(CommittedFrame {
            desc: d,
            word: c1,
            info,
        }) = self.open_frame::<()>(seq)?
        else {
            return Ok(None);
        };
        // Pairs with the writer's Release fence after it marks the slot as writing.
        fence(Ordering::Acquire);
        Ok((d.commit.load(Ordering::Relaxed) == c1).then_some(info))
    }

    /// Whether the writer said its stream ended (EOS), whether or not it is still there.
    pub fn stream_ended(&self) -> bool {
        self.writer_status_quick() == WriterStatus::Eos
    }

    /// State from the superblock alone (no syscall): the hot path of a wait.
    pub(crate) fn writer_status_quick(&self) -> WriterStatus {
        // Acquire: pairs with the writer's Release store of its state.
        match WriterState::from_raw(self.map.superblock().writer_state.load(Ordering::Acquire)) {
            Some(WriterState::Eos) => WriterStatus::Eos,
            Some(WriterState::Closed) => WriterStatus::Closed,
            Some(WriterState::Replaced) => WriterStatus::Replaced,
            _ => WriterStatus::Live,
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

    /// The file's size checked right before a copy or lease (`claims::check_size`).
    /// `guarded`: `guarded()`.
    pub(crate) fn check_size(&self, guarded: bool) -> Result<()> {
        let leases = self.leases.as_deref();
        crate::claims::check_size(
            &self.map, leases, &self.file, &self.geom, &self.loc, guarded,
        )
    }

    /// Whether every mapping this reader touches is guarded: a shrink of the file reads
    /// as zeros there, and is then reported by `check_mapped`, rather than kill us.
    pub(crate) fn guarded(&self) -> bool {
        crate::claims::guarded(&self.map, self.leases.as_deref())
    }

    /// Whether a shrink of the file under the mapping zeroed it (no syscall).
    pub(crate) fn check_mapped(&self) -> Result<()> {
        crate::claims::check_mapped(&self.map, self.leases.as_deref(), &self.loc)
    }

    /// The first half of the seqlock read of frame `seq`: its slot's descriptor, commit
    /// word and what the descriptor says, if the slot holds that frame committed;
    /// otherwise `Copy::Newer` or `Copy::Older`. The caller reads what it needs, then
    /// accepts it only if the commit word is still `word`.
    pub(crate) fn open_frame<O>(
        &self,
        seq: u64,
    ) -> Result<std::result::Result<CommittedFrame<'_>, Copy<O>>> {
        let index = self.geom.slot_of(seq);
        let d = self.map.descriptor(&self.geom, index);
        // Acquire: pairs with the writer's Release store of `committed(seq)`.
        let c1 = d.commit.load(Ordering::Acquire);
        if self.geom.kind == RingKind::Units && c1 == writing(seq) {
            // A unit's own `writing(seq)` after its commit: the writer ended it to
            // write over its bytes (units.rs). Gone, as if a newer unit had its slot.
            return Ok(Err(Copy::Newer));
        }
        if c1 != committed(seq) {
            self.check_mapped()?; // a truncated mapping reads 0 here
            return Ok(Err(if c1 >> 1 > seq {
                Copy::Newer
            } else {
                Copy::Older
            }));
        }
        Ok(Ok(CommittedFrame {
            desc: d,
            word: c1,
            info: self.read_descriptor(d, seq, index)?,
        }))
    }

    /// The seqlock read of frame `seq`: a claim on it, copied at once (`claims`).
    pub(crate) fn copy<B: AsMut<[u8]>>(
        &self,
        seq: u64,
        alloc: &mut impl FnMut(&FrameInfo) -> B,
    ) -> Result<Copy<B>> {
        let claim = match self.claim(seq)? {
            Ok(c) => c,
            Err(other) => return Ok(other),
        };
        Ok(match claim.copy(&self.loc, alloc)? {
            Some((info, data)) => Copy::Ok(info, data),
            None => Copy::Torn,
        })
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
        let payload_at = d.payload_at.load(Ordering::Relaxed);
        let keyframe_seq = d.keyframe_seq.load(Ordering::Relaxed);
        if self.geom.kind == RingKind::Frames && (payload_at != 0 || keyframe_seq != 0) {
            return bad(format!(
                "a frame at byte {payload_at} of its slot, keyframe {keyframe_seq}: a ring of frames has neither"
            ));
        }
        if keyframe_seq > seq {
            return bad(format!("its keyframe {keyframe_seq} comes after it"));
        }
        if payload_at
            .checked_add(len)
            .is_none_or(|end| end > self.geom.slot_stride)
        {
            return bad(format!(
                "payload of {len} bytes at byte {payload_at} of a slot of {}",
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
            payload_at,
            keyframe_seq,
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
