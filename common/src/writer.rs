//! The writing side: one writer per ring, never waiting for a reader.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{fence, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::caps::publish_caps;
use crate::commit::{check_mapped, publish, wake_readers};
use crate::error::{Error, Result};
use crate::layout::*;
use crate::leases::{reclaim_dead_readers, scan_leases, BudgetAudit};
use crate::lending::{Lender, Loan, Payloads, Shared};
use crate::location::{Handle, RingLocation};
use crate::mapping::{Geometry, Mapping};
use crate::names::{
    create_temp, ensure_private_dir, open_existing, pid_in, process_gone, put_in_place_of,
    same_file, NameLock,
};
use crate::FrameMeta;
use crate::{copy, sys};

// The rest of the writing side's API: the frame being written, and the clean-up of
// what dead writers left.
pub use crate::commit::SlotWriter;
pub use crate::names::{abandoned_temp_files, remove_if_dead};

/// Spare payload slots of a ring unless configured otherwise: four zero-copy readers,
/// each holding a frame downstream (a sink keeps the last one) while leasing the next.
/// With fewer, the benchmark's three readers copied part of the time.
pub const DEFAULT_SPARES: u32 = 8;

/// How often a live writer refreshes its heartbeat when it has no frames to write.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);

/// What a new ring looks like.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Number of slots (2 to 1024).
    pub slots: u32,
    /// Largest frame in bytes; slots are this, rounded up to a page.
    pub max_frame: u64,
    /// Permission bits of the ring file (0600 by default; 0640 shares with the group).
    pub perms: u32,
    /// Caps string published with the ring, if known yet.
    pub caps: Option<String>,
    /// Extra payload slots that readers may lease for zero-copy reads.
    pub spares: u32,
    /// Extra payload slots the writer lends to its own process to be filled in place
    /// (`RingWriter::lender`); with `spares`, at most 64.
    pub loans: u32,
}

impl WriterConfig {
    fn geometry(&self) -> Result<Geometry> {
        let extra = self.spares.saturating_add(self.loans);
        if extra > MAX_SPARES {
            return Err(Error::InvalidGeometry {
                what: format!(
                    "{} lease slots and {} pool slots: together at most {MAX_SPARES}",
                    self.spares, self.loans
                ),
            });
        }
        Geometry::for_frames(self.slots, extra, self.max_frame)
    }
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            slots: 8,
            max_frame: PAGE_SIZE,
            perms: 0o600,
            caps: None,
            spares: DEFAULT_SPARES,
            loans: 0,
        }
    }
}

/// How a writer came to own its ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// No ring had that name.
    Created,
    /// A ring of a dead writer (its pid) was there and was replaced.
    TookOver { dead_pid: u32 },
}

/// Stops and joins the heartbeat thread when dropped.
struct Heartbeat {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The one writer of a ring. Holds an exclusive lock on the ring file for its whole
/// life; dropping it marks the ring closed, wakes every reader and removes the file.
pub struct RingWriter {
    pub(crate) loc: RingLocation,
    file: Arc<File>,
    pub(crate) map: Arc<Mapping>,
    /// Where each payload slot is; shared with the loans of `lender()`.
    payloads: Shared,
    /// Of the payload slots beyond `slot_count`: those readers may lease, those lent.
    lease_slots: u32,
    pool_slots: u32,
    pub(crate) geom: Geometry,
    epoch: u64,
    origin: Origin,
    /// Set when a newer ring replaced this one under the same name: do not unlink.
    replaced: bool,
    /// Frames are copied in with non-temporal stores (see copy.rs).
    bypass_cache: bool,
    _heartbeat: Heartbeat,
}

impl RingWriter {
    /// Creates the ring at `loc`, or takes over the ring of a dead writer there. A live
    /// writer's ring is never touched: that is `Error::Busy` with its pid.
    pub fn create(loc: &RingLocation, config: &WriterConfig) -> Result<Self> {
        Self::create_as(loc, config, config.geometry()?)
    }

    /// `create` with a geometry of the caller's (a ring of units, units.rs).
    pub(crate) fn create_as(
        loc: &RingLocation,
        config: &WriterConfig,
        geom: Geometry,
    ) -> Result<Self> {
        if config.perms & !0o660 != 0 || config.perms & 0o600 != 0o600 {
            return Err(Error::InvalidGeometry {
                what: format!(
                    "permissions {:04o}: the owner needs 0600, the group may have 0040 or 0060, others nothing",
                    config.perms
                ),
            });
        }
        if loc.is_managed_dir() {
            ensure_private_dir(loc.dir(), config.perms)?;
        }
        let path = loc.path();
        for attempt in 0..16 {
            match open_existing(path)? {
                None => {
                    let (file, map, epoch, tmp) = build(loc, &geom, config)?;
                    let names = NameLock::take(loc.dir());
                    let renamed = sys::rename_noreplace(&tmp, path);
                    drop(names);
                    match renamed {
                        Ok(()) => {
                            let origin = Origin::Created;
                            return Ok(Self::start(loc, file, map, geom, epoch, origin, config));
                        }
                        Err(e) => {
                            let _ = std::fs::remove_file(&tmp);
                            if e == nix::errno::Errno::EEXIST {
                                continue;
                            }
                            return Err(Error::io(path, "rename into place", e));
                        }
                    }
                }
                Some(old) => {
                    let locked =
                        sys::try_lock_exclusive(&old).map_err(|e| Error::io(path, "lock", e))?;
                    if !locked {
                        let pid = pid_in(&old).unwrap_or(0);
                        // A dead writer's ring whose lock is held for a moment: `shmring
                        // gc` removing it, or another writer taking it over. Look again
                        // shortly (150 ms in all): the name is then free, or a live
                        // writer's. (A live writer in another pid namespace looks dead
                        // from here: it is refused 150 ms later, its pid unnamed.)
                        let gone = pid != 0 && process_gone(pid);
                        if attempt < 15 && gone {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                        return Err(Error::Busy {
                            path: path.to_owned(),
                            pid: if gone { 0 } else { pid },
                        });
                    }
                    // We hold the old file's lock; make sure it is still the one under
                    // the name (another writer may have replaced it meanwhile).
                    if !same_file(&old, path) {
                        continue;
                    }
                    let dead_pid = pid_in(&old).ok_or_else(|| Error::NotARingFile {
                        path: path.to_owned(),
                        found:
                            "a file that is not a shmring ring; remove it or choose another name"
                                .into(),
                    })?;
                    let (file, map, epoch, tmp) = build(loc, &geom, config)?;
                    // Building took milliseconds: the name is taken only if it still
                    // names the dead writer's ring, looked at under the name lock and
                    // swapped, then checked, where the kernel can swap (so that a
                    // process that skips the lock cannot lose its ring either).
                    let names = NameLock::take(loc.dir());
                    let swapped = put_in_place_of(&old, &file, &tmp, path);
                    drop(names);
                    match swapped {
                        Ok(()) => {}
                        // Another ring came under the name: look at it afresh.
                        Err(Error::Busy { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                    drop(old);
                    let origin = Origin::TookOver { dead_pid };
                    return Ok(Self::start(loc, file, map, geom, epoch, origin, config));
                }
            }
        }
        Err(Error::Busy {
            path: path.to_owned(),
            pid: 0,
        })
    }

    /// Replaces this ring by a new one with other geometry under the same name (a new
    /// epoch): readers see this ring as replaced and re-attach to the new one.
    /// On an error this ring stays as it was: live, written, with its readers.
    pub fn replace(&mut self, config: &WriterConfig) -> Result<()> {
        self.replace_as(config, config.geometry()?)
    }

    /// As `replace`, with a geometry of any kind (a ring of units for one of frames,
    /// or the other way round).
    pub(crate) fn replace_as(&mut self, config: &WriterConfig, geom: Geometry) -> Result<()> {
        let (file, map, epoch, tmp) = build(&self.loc, &geom, config)?;
        {
            let _names = NameLock::take(self.loc.dir());
            put_in_place_of(&self.file, &file, &tmp, self.loc.path())?;
        }
        let new = Self::start(&self.loc, file, map, geom, epoch, Origin::Created, config);
        let mut old = std::mem::replace(self, new);
        old.replaced = true;
        old.set_state(WriterState::Replaced);
        Ok(())
    }

    fn start(
        loc: &RingLocation,
        file: File,
        map: Mapping,
        geom: Geometry,
        epoch: u64,
        origin: Origin,
        config: &WriterConfig,
    ) -> Self {
        let map = Arc::new(map);
        let file = Arc::new(file);
        let (stop, stopped) = mpsc::channel::<()>();
        let (hb_map, hb_file) = (map.clone(), file.clone());
        let mut audit = BudgetAudit::new(config.spares);
        let thread = std::thread::Builder::new()
            .name("shmring-heartbeat".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(HEARTBEAT_INTERVAL)
                {
                    // Relaxed: the heartbeat is informative; liveness is the lock.
                    hb_map
                        .superblock()
                        .heartbeat_mono_ns
                        .store(sys::monotonic_ns(), Ordering::Relaxed);
                    let dead = reclaim_dead_readers(&hb_map, &geom, &hb_file);
                    audit.round(&hb_map, &geom, dead);
                }
            })
            .ok();
        RingWriter {
            loc: loc.clone(),
            file,
            map,
            payloads: Shared::new(Payloads::new(&geom, config.loans)),
            lease_slots: config.spares,
            pool_slots: config.loans,
            geom,
            epoch,
            origin,
            replaced: false,
            // The writer cycles through `slot_count` payloads; a spare only takes a
            // slot's place while a reader holds that slot's payload, so the spares do
            // not add to how far back the slot written next was last touched.
            bypass_cache: copy::bypass_cache_for(match geom.kind {
                RingKind::Frames => u64::from(geom.slot_count).saturating_mul(geom.slot_stride),
                RingKind::Units => geom.slot_stride, // one arena, written in order
            }),
            _heartbeat: Heartbeat {
                stop: Some(stop),
                thread,
            },
        }
    }

    /// Whether `SlotWriter::copy_into` writes around the cache: chosen when the ring is
    /// made, for rings whose slots take more than half the last-level cache.
    pub fn bypasses_cache(&self) -> bool {
        self.bypass_cache
    }

    /// Overrides that choice, until the ring is replaced.
    pub fn set_bypass_cache(&mut self, on: bool) {
        self.bypass_cache = on;
    }

    pub fn location(&self) -> &RingLocation {
        &self.loc
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    pub fn geometry(&self) -> Geometry {
        self.geom
    }

    /// Extra payload slots readers may lease (`WriterConfig::spares`).
    pub fn lease_slots(&self) -> u32 {
        self.lease_slots
    }

    /// Extra payload slots `lender()` lends (`WriterConfig::loans`).
    pub fn pool_slots(&self) -> u32 {
        self.pool_slots
    }

    /// Largest frame a slot holds.
    pub fn slot_capacity(&self) -> u64 {
        self.geom.slot_stride
    }

    /// Sequence number of the last committed frame (0: none).
    pub fn head(&self) -> u64 {
        // Relaxed: only this writer stores head.
        self.map.superblock().head.load(Ordering::Relaxed)
    }

    /// The handle of frame `seq` of this ring.
    pub fn handle(&self, seq: u64) -> Handle {
        Handle {
            ring: self.loc.display_name().to_owned(),
            epoch: self.epoch,
            seq,
        }
    }

    /// Publishes a caps string as a new caps version and returns that version. Frames
    /// committed after this carry it.
    pub fn set_caps(&mut self, caps: &str) -> Result<u32> {
        publish_caps(self.map.superblock(), caps)
    }

    /// Latest caps version (0: none yet).
    pub fn caps_version(&self) -> u32 {
        self.map.superblock().caps_version.load(Ordering::Relaxed)
    }

    /// Starts writing the next frame: its slot is marked as being written (so readers
    /// holding an older frame of that slot will see their copy fail) and its payload is
    /// handed out for filling. Never waits. `Error::SlotsHeld` when every payload slot
    /// the frame could go to is held by somebody (only readers that broke the lease
    /// budget cause it): the frame is dropped, counted, and the next one may succeed.
    pub fn begin(&mut self) -> Result<SlotWriter<'_>> {
        check_mapped(&self.map, self.loc.path())?;
        if self.geom.kind != RingKind::Frames {
            return Err(Error::InvalidGeometry {
                what: "a ring of units takes units (UnitWriter::write), not frames".into(),
            });
        }
        // Look before marking the slot, which would end its old frame for readers: when
        // nothing can be written, that frame stays readable.
        let next = self.map.superblock().head.load(Ordering::Relaxed) + 1;
        let desc = self.geom.slot_of(next) as usize;
        let has_slot = {
            let mut payloads = self.payloads.lock();
            self.see_leases(&mut payloads);
            payloads.has_slot_for(desc)
        };
        if !has_slot {
            return Err(self.dropped_held(next));
        }
        let (seq, index) = self.mark_next_writing();
        let Some(payload_index) = self.choose_payload_slot(index as usize) else {
            // A lease came between the two looks. The descriptor stays `writing(seq)`,
            // as after an abort: its old frame is gone, `seq` is written again next.
            return Err(self.dropped_held(seq));
        };
        // SAFETY: we are the lock-holding writer on a read-write mapping, and the &mut
        // borrow of self keeps this the only view of the slot in this process.
        let payload = unsafe { self.map.payload_mut(&self.geom, payload_index) };
        Ok(SlotWriter {
            seq,
            index,
            payload_index,
            payload,
            writer_map: &self.map,
            path: self.loc.path(),
            geom: self.geom,
            bypass_cache: self.bypass_cache,
            done: false,
        })
    }

    /// Counts frame `seq` as dropped for want of a slot nobody holds.
    fn dropped_held(&self, seq: u64) -> Error {
        // Relaxed: statistics.
        self.map
            .reader_table(&self.geom)
            .frames_dropped_held
            .fetch_add(1, Ordering::Relaxed);
        Error::SlotsHeld {
            path: self.loc.path().to_owned(),
            seq,
        }
    }

    /// Brings `payloads` up to date with the readers' leases: marks the leased slots and
    /// frees the retired ones nobody holds any more. After `mark_next_writing`.
    fn see_leases(&self, payloads: &mut Payloads) {
        scan_leases(&self.map, &self.geom, payloads.leased_scratch());
        payloads.settle();
    }

    /// Marks the slot of the next frame as being written; returns the frame's sequence
    /// and the slot.
    pub(crate) fn mark_next_writing(&self) -> (u64, u32) {
        let seq = self.map.superblock().head.load(Ordering::Relaxed) + 1;
        let index = self.geom.slot_of(seq);
        let desc = self.map.descriptor(&self.geom, index);
        // Relaxed: ordered before every payload byte, and before the lease scan, by the
        // fence that follows.
        desc.commit.store(writing(seq), Ordering::Relaxed);
        // Pairs with the reader's Acquire fence before its second commit-word load: a
        // reader that copied any byte written after this (or of a slot swapped in) will
        // see `writing(seq)`. SeqCst rather than Release: it is also the writer's half of
        // the lease handshake (see ReaderEntry::leases), ordering this store before the
        // lease loads that follow.
        fence(Ordering::SeqCst);
        (seq, index)
    }

    /// The payload slot for descriptor `desc`: its current one unless a reader leases
    /// it or a buffer of ours wraps it, else a free one (the held one retires until
    /// it is let go). None when it is held and no slot is free.
    fn choose_payload_slot(&mut self, desc: usize) -> Option<u32> {
        let mut payloads = self.payloads.lock();
        self.see_leases(&mut payloads);
        payloads.for_copy(desc)
    }

    /// Lends free payload slots of this ring, to be filled in place and committed with
    /// `commit_in_place`. At most `WriterConfig::loans` are out (or still wrapped by
    /// a buffer after their commit) at a time.
    pub fn lender(&self) -> Lender {
        Lender::new(
            self.map.clone(),
            self.geom,
            self.payloads.clone(),
            self.epoch,
        )
    }

    /// Whether `bytes` start at a slot of this ring that `lender()` lent and that is not
    /// committed yet.
    pub fn is_lent(&self, bytes: &[u8]) -> bool {
        self.map
            .payload_index_at(&self.geom, bytes)
            .is_some_and(|p| self.payloads.lock().is_lent(p))
    }

    /// Commits the frame in `bytes` without copying it if `bytes` is a slot of this
    /// ring lent by `lender()` and not committed yet; None (nothing done) otherwise.
    /// The caller must not write the bytes again: readers may be reading them.
    pub fn commit_in_place(&mut self, bytes: &[u8], meta: &FrameMeta) -> Result<Option<u64>> {
        let Some(p) = self.map.payload_index_at(&self.geom, bytes) else {
            return Ok(None);
        };
        self.commit_slot(p, bytes.len() as u64, meta)
    }

    /// As `commit_in_place`, for the first `len` bytes of `loan`, without a slice over
    /// them: None when the loan is of another ring (or committed already) or `len` is
    /// more than it holds.
    pub fn commit_loan(
        &mut self,
        loan: &Loan,
        len: usize,
        meta: &FrameMeta,
    ) -> Result<Option<u64>> {
        if !loan.is_of(&self.map) || len > loan.len() {
            return Ok(None);
        }
        self.commit_slot(loan.slot(), len as u64, meta)
    }

    /// Commits lent payload slot `p`, filled with `len` bytes, if it is lent and not
    /// committed yet.
    fn commit_slot(&mut self, p: u32, len: u64, meta: &FrameMeta) -> Result<Option<u64>> {
        check_mapped(&self.map, self.loc.path())?;
        // Held until the slot is in its descriptor: the loan cannot go back meanwhile.
        let mut payloads = self.payloads.lock();
        if !payloads.is_lent(p) {
            return Ok(None);
        }
        let (seq, index) = self.mark_next_writing();
        self.see_leases(&mut payloads);
        payloads.commit_lent(index as usize, p);
        drop(payloads);
        publish(&self.map, &self.geom, index, seq, p, meta, len)?;
        // Relaxed: statistics.
        self.map
            .superblock()
            .committed_in_place
            .fetch_add(1, Ordering::Relaxed);
        Ok(Some(seq))
    }

    /// Copies `data` into the next slot and commits it. Returns the frame's sequence.
    pub fn write(&mut self, meta: &FrameMeta, data: &[u8]) -> Result<u64> {
        if data.len() as u64 > self.geom.slot_stride {
            return Err(Error::FrameTooLarge {
                len: data.len() as u64,
                capacity: self.geom.slot_stride,
            });
        }
        let mut slot = self.begin()?;
        slot.copy_into(0, data)?;
        slot.commit(meta, data.len() as u64)
    }

    /// Announces a state (EOS, or live again) to every reader.
    pub fn set_state(&mut self, state: WriterState) {
        let sb = self.map.superblock();
        // Release: pairs with the readers' Acquire load of writer_state, so a reader that
        // sees EOS also sees every frame committed before it.
        sb.writer_state.store(state.to_raw(), Ordering::Release);
        wake_readers(sb);
    }

    /// Frames committed, frames abandoned, bytes committed and frames committed in
    /// place (not copied) in this epoch.
    pub fn counters(&self) -> (u64, u64, u64, u64) {
        let sb = self.map.superblock();
        (
            sb.committed.load(Ordering::Relaxed),
            sb.aborted.load(Ordering::Relaxed),
            sb.bytes_committed.load(Ordering::Relaxed),
            sb.committed_in_place.load(Ordering::Relaxed),
        )
    }
}

impl Drop for RingWriter {
    fn drop(&mut self) {
        if !self.replaced {
            // A stream that ended stays ended: readers still owe their pipelines an EOS.
            // Relaxed: only this writer stores the state.
            let state = self.map.superblock().writer_state.load(Ordering::Relaxed);
            let ended = state == WriterState::Eos.to_raw();
            if !ended {
                self.set_state(WriterState::Closed);
            }
            // Remove the name only while it is still ours (under our lock, and the
            // directory's name lock around the check and the removal).
            {
                let _names = NameLock::take(self.loc.dir());
                if same_file(&self.file, self.loc.path()) {
                    let _ = std::fs::remove_file(self.loc.path());
                }
            }
            if ended {
                // EOS and a free lock read as closed: let go of the lock now rather than
                // when the file closes, and wake the readers, so that those waiting
                // after their EOS learn at once that this writer is gone.
                sys::unlock_byte(&*self.file, sys::WRITER_LOCK_BYTE);
                wake_readers(self.map.superblock());
            }
        }
    }
}

fn random_epoch() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // No entropy source: time and pid still differ between creations.
        b = (sys::realtime_ns() ^ (u64::from(std::process::id()) << 40)).to_le_bytes();
    }
    u64::from_le_bytes(b).max(1)
}

/// Builds a complete ring under a temporary dot-name in the ring's directory
/// (`create_temp`), locked, and returns it with that name (to be renamed into place).
fn build(
    loc: &RingLocation,
    geom: &Geometry,
    config: &WriterConfig,
) -> Result<(File, Mapping, u64, PathBuf)> {
    let (file, tmp) = create_temp(loc, config.perms)?;
    let cleanup = |e: Error| {
        let _ = std::fs::remove_file(&tmp);
        e
    };
    file.set_permissions(std::fs::Permissions::from_mode(config.perms))
        .map_err(|e| cleanup(Error::io(&tmp, "chmod", e)))?;
    if !sys::try_lock_exclusive(&file).map_err(|e| cleanup(Error::io(&tmp, "lock", e)))? {
        return Err(cleanup(Error::Busy {
            path: tmp.clone(),
            pid: 0,
        }));
    }
    file.set_len(geom.total_size)
        .map_err(|e| cleanup(Error::io(&tmp, "size", e)))?;
    let map = Mapping::read_write(&file, &tmp).map_err(cleanup)?;
    // Reserve the memory now: a full /dev/shm is an error here, not a SIGBUS later.
    map.reserve(&file).map_err(|e| {
        cleanup(Error::io(
            &tmp,
            "reserve shared memory (is /dev/shm full?) for",
            e,
        ))
    })?;
    let epoch = random_epoch();
    let sb = map.superblock();
    // Relaxed stores throughout: nobody can see this file before it is renamed into
    // place, and the rename orders everything before it.
    sb.magic.store(MAGIC, Ordering::Relaxed);
    sb.layout_major.store(LAYOUT_MAJOR, Ordering::Relaxed);
    sb.layout_minor.store(LAYOUT_MINOR, Ordering::Relaxed);
    sb.epoch.store(epoch, Ordering::Relaxed);
    sb.slot_count.store(geom.slot_count, Ordering::Relaxed);
    sb.descriptor_size
        .store(DESCRIPTOR_SIZE as u32, Ordering::Relaxed);
    sb.descriptor_offset
        .store(DESCRIPTOR_OFFSET, Ordering::Relaxed);
    sb.payload_offset
        .store(geom.payload_offset, Ordering::Relaxed);
    sb.slot_stride.store(geom.slot_stride, Ordering::Relaxed);
    sb.total_size.store(geom.total_size, Ordering::Relaxed);
    sb.created_realtime_ns
        .store(sys::realtime_ns(), Ordering::Relaxed);
    sb.writer_pid.store(std::process::id(), Ordering::Relaxed);
    sb.reader_table_offset
        .store(geom.reader_table_offset, Ordering::Relaxed);
    sb.reader_table_len
        .store(READER_TABLE_SIZE as u32, Ordering::Relaxed);
    sb.payload_count
        .store(geom.payload_count, Ordering::Relaxed);
    sb.kind.store(geom.kind.to_raw(), Ordering::Relaxed);
    map.reader_table(geom)
        .lease_budget
        .store(config.spares, Ordering::Relaxed);
    sb.heartbeat_mono_ns
        .store(sys::monotonic_ns(), Ordering::Relaxed);
    if let Some(caps) = &config.caps {
        publish_caps(sb, caps).map_err(cleanup)?;
    }
    sb.writer_state
        .store(WriterState::Live.to_raw(), Ordering::Relaxed);
    Ok((file, map, epoch, tmp))
}

#[cfg(test)]
mod tests;
