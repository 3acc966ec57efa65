//! The reader table: readers' entries, their leases of payload slots, and the budget.
//!
//! A reader with write access to the ring file claims an entry of the table (the OFD
//! lock on the entry's first byte) and leases payload slots in place through it, within
//! a budget of units that keeps leases fewer than the spare slots, so that the writer
//! always finds a free one. The reader's side: `enable_zero_copy`, `lease_or_copy` and
//! the `LeasedPayload` that gives its lease back when dropped. The writer's side, on its
//! heartbeat and before it reuses a slot: `scan_leases`, `reclaim_dead_readers` and
//! `BudgetAudit`.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{compiler_fence, fence, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::layout::*;
use crate::mapping::{Geometry, Mapping, TableMapping};
use crate::reader::{Copy, ReaderProgress, RingReader};
use crate::sys;
use crate::FrameInfo;

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

impl RingReader {
    /// Leases readers may still take (the spare payload slots not leased).
    pub fn lease_budget(&self) -> u32 {
        // Relaxed: informative.
        self.map
            .reader_table(&self.geom)
            .lease_budget
            .load(Ordering::Relaxed)
    }

    /// The readers that hold an entry of the reader table now (those that read in
    /// place, or could), with their progress as they last published it.
    pub fn readers(&self) -> Vec<ReaderProgress> {
        (0..READER_ENTRIES)
            .filter_map(|i| {
                let e = self.map.reader_entry(&self.geom, i);
                // Relaxed: statistics; the lock test below says whether it is live.
                let pid = e.pid.load(Ordering::Relaxed);
                let byte = self.geom.reader_entry_offset(i);
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
            let byte = self.geom.reader_entry_offset(entry);
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

    /// Publishes this reader's progress in its reader-table entry, if it has one.
    pub(crate) fn note_progress(&self, seq: u64, missed: u64, torn: u32) {
        if let Some(t) = &self.leases {
            let e = t.table.entry(t.entry);
            // Relaxed: statistics, stored only by this reader (the entry's owner).
            e.last_seq.store(seq, Ordering::Relaxed);
            e.received.fetch_add(1, Ordering::Relaxed);
            e.missed.fetch_add(missed, Ordering::Relaxed);
            e.torn.fetch_add(u64::from(torn), Ordering::Relaxed);
        }
    }

    /// The seqlock read of frame `seq`, leasing the payload in place when it can.
    pub(crate) fn lease_or_copy<B: AsMut<[u8]>>(
        &self,
        seq: u64,
        alloc: &mut impl FnMut(&FrameInfo) -> B,
    ) -> Result<Copy<Payload<B>>> {
        self.lease_or_take(seq, |r, seq| r.copy(seq, alloc))
    }

    /// Frame `seq` leased in place when it can be, else what `take` makes of it (a copy,
    /// or a claim to copy later: `claims`).
    pub(crate) fn lease_or_take<O>(
        &self,
        seq: u64,
        take: impl FnOnce(&Self, u64) -> Result<Copy<O>>,
    ) -> Result<Copy<Payload<O>>> {
        let copied = |c: Copy<O>| match c {
            Copy::Ok(info, b) => Copy::Ok(info, Payload::Copied(b)),
            Copy::Newer => Copy::Newer,
            Copy::Older => Copy::Older,
            Copy::Torn => Copy::Torn,
        };
        // Units of a ring of units share one arena, which a lease would pin whole:
        // they are small, and always copied.
        let Some(table) = self
            .leases
            .as_ref()
            .filter(|_| self.geom.kind == RingKind::Frames)
        else {
            return Ok(copied(take(self, seq)?));
        };
        let (d, c1, info) = match self.open_frame(seq)? {
            Ok(f) => (f.desc, f.word, f.info),
            Err(other) => return Ok(other),
        };
        // Once: fstat and the touch below must not both be skipped by an answer that
        // changes in between.
        let guarded = self.guarded();
        self.check_size(guarded)?;
        let Some(word) = table.try_lease(info.payload_index) else {
            return Ok(copied(take(self, seq)?)); // no lease to be had: copy
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
}

/// This reader's entry of the reader table: the read-write file that holds the entry's
/// lock, and the table page mapped read-write.
pub(crate) struct LeaseTable {
    /// Open read-write; holds the OFD lock that makes `entry` ours until dropped.
    _lock_holder: File,
    pub(crate) table: TableMapping,
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

/// Marks in `leased` every payload slot a reader holds a lease on.
pub(crate) fn scan_leases(map: &Mapping, geom: &Geometry, leased: &mut [bool]) {
    for entry in map.reader_entries(geom) {
        // Acquire: pairs with a reader's Release swap that gives the lease back, so its
        // reads of the slot happen before the writer reuses it. Ordered after the
        // writer's writing(seq) store by the SeqCst fence in begin() or
        // commit_in_place(), the other half of the readers' lease-then-fence-then-check.
        let words = entry.leases.each_ref().map(|w| w.load(Ordering::Acquire));
        if words == [0; LEASES_PER_READER] {
            continue; // most entries: one test, on the writer's path of every frame
        }
        for v in words {
            if let Some(l) = (v as usize).checked_sub(1).and_then(|p| leased.get_mut(p)) {
                *l = true; // out-of-range values (a hostile reader) are ignored
            }
        }
    }
}

/// Gives back the leases of readers that died: an entry with a pid (a reader that
/// leaves cleanly zeroes it) or with leases, whose lock nobody holds. Takes the entry's
/// lock while clearing it, so a reader claiming the entry at that moment is never
/// robbed of a fresh lease. Returns how many dead readers it cleared.
pub(crate) fn reclaim_dead_readers(map: &Mapping, geom: &Geometry, file: &File) -> u32 {
    let header = map.reader_table(geom);
    let mut dead = 0;
    for i in 0..READER_ENTRIES {
        let entry = map.reader_entry(geom, i);
        // Relaxed: a hint; the lock below decides.
        if entry.pid.load(Ordering::Relaxed) == 0
            && entry.leases.iter().all(|w| w.load(Ordering::Relaxed) == 0)
        {
            continue;
        }
        let byte = geom.reader_entry_offset(i);
        if !matches!(sys::try_lock_byte(file, byte), Ok(true)) {
            continue; // its reader is alive
        }
        for w in &entry.leases {
            // AcqRel swap: exactly one party zeroes a lease and refunds its unit.
            if w.swap(0, Ordering::AcqRel) != 0 {
                header.lease_budget.fetch_add(1, Ordering::AcqRel);
            }
        }
        entry.pid.store(0, Ordering::Relaxed);
        sys::unlock_byte(file, byte);
        dead += 1;
    }
    dead
}

/// How many heartbeats in a row the lease budget must be off by the same amount before
/// the writer corrects it (one second).
const BUDGET_AUDIT_ROUNDS: u32 = 10;

/// Keeps the lease budget true: lease slots = units left + lease words held. A reader
/// killed between taking a unit and storing its lease word, or between zeroing its word
/// and refunding the unit, loses that unit for good; a reader that lies can refund units
/// it never took. An honest reader is inside such a window for nanoseconds, so a
/// difference that stays the same for `BUDGET_AUDIT_ROUNDS` heartbeats is not one in
/// flight. Units are given back only for readers seen dead (a reader stopped inside the
/// window, by a debugger say, is not dead: its unit is not lost, only late), at most
/// `LEASES_PER_READER` each; invented units are taken away.
pub(crate) struct BudgetAudit {
    lease_slots: u32,
    /// The difference seen last time, and how many rounds in a row.
    drift: i64,
    rounds: u32,
    /// Units that readers seen dead may have lost and not been given back yet, and for
    /// how many more rounds: a loss shows at once (the unit went before the death), so
    /// what has not shown within a few seconds was not lost.
    lost_to_deaths: u64,
    lost_rounds_left: u32,
}

impl BudgetAudit {
    pub(crate) fn new(lease_slots: u32) -> Self {
        BudgetAudit {
            lease_slots,
            drift: 0,
            rounds: 0,
            lost_to_deaths: 0,
            lost_rounds_left: 0,
        }
    }

    /// One heartbeat's look; `dead` readers were cleared since the last.
    pub(crate) fn round(&mut self, map: &Mapping, geom: &Geometry, dead: u32) {
        if dead > 0 {
            self.lost_to_deaths += u64::from(dead) * LEASES_PER_READER as u64;
            self.lost_rounds_left = 3 * BUDGET_AUDIT_ROUNDS;
        } else if self.lost_rounds_left > 0 {
            self.lost_rounds_left -= 1;
        } else {
            self.lost_to_deaths = 0;
        }
        let header = map.reader_table(geom);
        // Acquire: pairs with the readers' AcqRel updates of the budget.
        let budget = i64::from(header.lease_budget.load(Ordering::Acquire));
        let held = (0..READER_ENTRIES)
            .flat_map(|i| map.reader_entry(geom, i).leases.iter())
            // Acquire: pairs with the readers' stores and Release swaps of lease words.
            .filter(|w| w.load(Ordering::Acquire) != 0)
            .count() as i64;
        let drift = i64::from(self.lease_slots) - held - budget;
        if drift == 0 || drift != self.drift {
            (self.drift, self.rounds) = (drift, 1);
            return;
        }
        self.rounds += 1;
        if self.rounds < BUDGET_AUDIT_ROUNDS {
            return;
        }
        let by = if drift > 0 {
            // What the deaths lost shows as one difference: give it back, and no more.
            let by = drift.unsigned_abs().min(self.lost_to_deaths);
            self.lost_to_deaths = 0;
            by
        } else {
            drift.unsigned_abs()
        }
        .min(u64::from(u32::MAX)) as u32;
        if by > 0 {
            // AcqRel: the budget is shared with every reader; fetch_update so that a
            // concurrent take or refund is never overwritten.
            let _ = header
                .lease_budget
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                    Some(if drift > 0 {
                        b.saturating_add(by)
                    } else {
                        b.saturating_sub(by)
                    })
                });
        }
        (self.drift, self.rounds) = (0, 0);
    }
}
