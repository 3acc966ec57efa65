//! Where each payload slot is, and zero-copy writing.
//!
//! A descriptor points at a payload slot; the writer keeps the others free, retired
//! (leased by a reader, or still wrapped by a buffer of this process) or lent. A lent
//! slot is one the writer handed to its own process to be filled in place (shmringsink's
//! buffer pool): committing it swaps it into the descriptor instead of copying the frame.
//! After that it belongs to the ring like any other slot, but it is not rewritten while
//! the buffer that wraps it lives.
//!
//! The book-keeping is shared by the writer and the loans (which a GStreamer memory may
//! drop on any thread), so it sits behind a mutex that nothing else is taken under.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::mapping::{Geometry, Mapping};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// A descriptor points at it.
    Ring,
    Free,
    /// No descriptor points at it, but a reader leased it or a buffer wraps it.
    Retired,
    /// Lent out, not committed yet.
    Lent,
}

pub(crate) struct Payloads {
    /// The payload slot each descriptor points at.
    payload_of: Vec<u32>,
    place: Vec<Place>,
    free: Vec<u32>,
    retired: Vec<u32>,
    /// A memory of this process wraps the slot (a loan, committed or not).
    pinned: Vec<bool>,
    pins: u32,
    /// Loans never pin more slots than this: the slots added to the ring for them. With
    /// readers within their lease budget, a busy slot then always has a free one to
    /// stand in for it.
    max_pins: u32,
    /// Scratch: which slots readers leased at the last scan.
    leased: Vec<bool>,
}

impl Payloads {
    pub(crate) fn new(geom: &Geometry, max_pins: u32) -> Self {
        let (n, count) = (geom.slot_count, geom.payload_count);
        Payloads {
            // A ring of units has one payload slot for all its descriptors (units.rs),
            // and never lends or leases it.
            payload_of: (0..n).map(|i| if i < count { i } else { 0 }).collect(),
            place: (0..count)
                .map(|p| if p < n { Place::Ring } else { Place::Free })
                .collect(),
            free: (n..count).rev().collect(),
            retired: Vec::new(),
            pinned: vec![false; count as usize],
            pins: 0,
            max_pins,
            leased: vec![false; count as usize],
        }
    }

    /// Cleared scratch for the writer's scan of the lease words; then call `settle`.
    pub(crate) fn leased_scratch(&mut self) -> &mut [bool] {
        self.leased.iter_mut().for_each(|l| *l = false);
        &mut self.leased
    }

    fn busy(&self, p: u32) -> bool {
        self.leased[p as usize] || self.pinned[p as usize]
    }

    /// Frees the retired slots that nobody holds any more (after a scan).
    pub(crate) fn settle(&mut self) {
        let mut i = 0;
        while i < self.retired.len() {
            let p = self.retired[i];
            if self.busy(p) {
                i += 1;
            } else {
                self.retired.swap_remove(i);
                self.place[p as usize] = Place::Free;
                self.free.push(p);
            }
        }
    }

    /// The slot to copy descriptor `desc`'s next frame into: its own unless held, else a
    /// free one. None when it is held and no slot is free (only when readers broke the
    /// lease budget): the frame must not be written at all.
    pub(crate) fn for_copy(&mut self, desc: usize) -> Option<u32> {
        let old = self.payload_of[desc];
        if !self.busy(old) {
            return Some(old);
        }
        let q = self.free.pop()?;
        self.place[q as usize] = Place::Ring;
        self.payload_of[desc] = q;
        self.retire(old);
        Some(q)
    }

    /// Whether `for_copy(desc)` would find a slot (after a scan).
    pub(crate) fn has_slot_for(&self, desc: usize) -> bool {
        !self.busy(self.payload_of[desc]) || !self.free.is_empty()
    }

    /// Puts lent slot `p` under descriptor `desc`; false if `p` is not lent.
    pub(crate) fn commit_lent(&mut self, desc: usize, p: u32) -> bool {
        if self.place.get(p as usize) != Some(&Place::Lent) {
            return false;
        }
        let old = std::mem::replace(&mut self.payload_of[desc], p);
        self.place[p as usize] = Place::Ring;
        if self.busy(old) {
            self.retire(old);
        } else {
            self.place[old as usize] = Place::Free;
            self.free.push(old);
        }
        true
    }

    fn retire(&mut self, p: u32) {
        self.place[p as usize] = Place::Retired;
        self.retired.push(p);
    }

    fn can_lend(&self) -> bool {
        self.pins < self.max_pins && !self.free.is_empty()
    }

    fn lend(&mut self) -> Option<u32> {
        if self.pins >= self.max_pins {
            return None;
        }
        let p = self.free.pop()?;
        self.place[p as usize] = Place::Lent;
        self.pinned[p as usize] = true;
        self.pins += 1;
        Some(p)
    }

    fn unpin(&mut self, p: u32) {
        if !std::mem::replace(&mut self.pinned[p as usize], false) {
            return;
        }
        self.pins -= 1;
        if self.place[p as usize] == Place::Lent {
            self.place[p as usize] = Place::Free;
            self.free.push(p);
        }
        // Ring: stays. Retired: freed by the next settle().
    }

    pub(crate) fn is_lent(&self, p: u32) -> bool {
        self.place.get(p as usize) == Some(&Place::Lent)
    }
}

/// The shared book-keeping of one ring.
#[derive(Clone)]
pub(crate) struct Shared(Arc<Mutex<Payloads>>);

impl Shared {
    pub(crate) fn new(payloads: Payloads) -> Self {
        Shared(Arc::new(Mutex::new(payloads)))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Payloads> {
        // A panic elsewhere under this lock leaves consistent vectors (every method
        // finishes its updates before it can fail): carry on rather than poison the sink.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The buffer pool option that says a pool's buffers are slots of a ring, committed
/// without a copy. `shmringsink`'s pool has it; `shmringsrc` copies frames straight into
/// such a pool instead of handing out leased slots that a later element would copy.
pub const RING_POOL_OPTION: &str = "GstBufferPoolOptionShmRingSlot";

/// Lends free payload slots of one ring to be filled in place. Cheap to clone; what it
/// lends stays valid after the ring is closed or replaced (it is then only a buffer).
#[derive(Clone)]
pub struct Lender {
    map: Arc<Mapping>,
    geom: Geometry,
    payloads: Shared,
    epoch: u64,
}

impl Lender {
    pub(crate) fn new(map: Arc<Mapping>, geom: Geometry, payloads: Shared, epoch: u64) -> Self {
        Lender {
            map,
            geom,
            payloads,
            epoch,
        }
    }

    /// The epoch of the ring this lends from.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A free slot of `len` bytes to fill, or None: `len` is larger than a slot, or the
    /// slots set aside for lending are all lent or still wrapped by buffers.
    pub fn lend(&self, len: usize) -> Option<Loan> {
        if len as u64 > self.geom.slot_stride {
            return None;
        }
        let index = self.payloads.lock().lend()?;
        let mut loan = Loan {
            lender: self.clone(),
            index,
            ptr: std::ptr::null_mut(),
            len,
        };
        // None cannot happen for a slot of this geometry; dropping the loan gives it back.
        loan.ptr = self.map.payload_start(&self.geom, index, len as u64)? as *mut u8;
        Some(loan)
    }

    /// The most bytes a lent slot holds.
    pub fn slot_capacity(&self) -> u64 {
        self.geom.slot_stride
    }

    /// Whether a slot could be lent now.
    pub fn can_lend(&self) -> bool {
        self.payloads.lock().can_lend()
    }

    /// Whether `bytes` start at a payload slot of this ring.
    pub fn is_slot(&self, bytes: &[u8]) -> bool {
        self.map.payload_index_at(&self.geom, bytes).is_some()
    }

    /// The slot that `bytes` are the start of, if it is lent and not committed yet.
    pub fn lent_slot(&self, bytes: &[u8]) -> Option<u32> {
        let index = self.map.payload_index_at(&self.geom, bytes)?;
        self.payloads.lock().is_lent(index).then_some(index)
    }
}

/// A payload slot lent out for filling in place (`write`), or handed to a GStreamer
/// memory through `as_mut_slice`. Dropping it gives the slot back, or, once the frame
/// in it was committed, lets the ring rewrite it.
pub struct Loan {
    lender: Lender,
    index: u32,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the pointer is into a mapping the loan keeps alive (Arc), and the slot is this
// loan's alone to write (see write); nothing about it is tied to a thread.
unsafe impl Send for Loan {}

impl Loan {
    /// The payload slot lent.
    pub fn slot(&self) -> u32 {
        self.index
    }

    /// Whether the slot is of the ring mapped by `map`.
    pub(crate) fn is_of(&self, map: &Arc<Mapping>) -> bool {
        Arc::ptr_eq(&self.lender.map, map)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first byte of the slot; `len()` bytes from it stay mapped while this lives.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// Copies `src` into the slot at byte `at`.
    pub fn write(&mut self, at: usize, src: &[u8]) -> crate::Result<()> {
        if at.checked_add(src.len()).is_none_or(|end| end > self.len) {
            return Err(crate::Error::FrameTooLarge {
                len: at as u64 + src.len() as u64,
                capacity: self.len as u64,
            });
        }
        // SAFETY: at..at+src.len() lies in the slot (checked above), which the lender's
        // Arc keeps mapped and which only this loan writes: the writer neither copies
        // into nor lends a pinned slot (Payloads::busy). `src` is not this slot, so they
        // do not overlap. Written through a raw pointer, never a reference (see
        // `as_slice`).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(at), src.len()) };
        Ok(())
    }

    /// Copies the slot's bytes into `dst`, as many as both hold; returns how many.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len);
        // SAFETY: as for `write`; read through a raw pointer, as LeasedPayload::copy_to.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr, dst.as_mut_ptr(), n) };
        n
    }

    /// A copy of the slot's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        self.copy_to(&mut v);
        v
    }

    /// The slot as a slice, for APIs that only pass its address on: to C code
    /// (`gst::Memory::from_mut_slice`, shmringsink's pool) or to `commit_in_place`,
    /// which reads nothing through it.
    ///
    /// # Safety
    /// Rust code must not read or write through the slice: the bytes are shared memory
    /// that a process of the ring's user could change by writing or truncating the file
    /// (docs/security.md). Use `write`, `copy_to` or `to_vec` to reach the bytes.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: mapped while self lives; what is done with it is the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// As `as_slice`, for APIs that write through the address they are given.
    ///
    /// # Safety
    /// As for `as_slice`.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for as_slice; `&mut self` makes it the only view in this process.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        self.lender.payloads.lock().unpin(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(slots: u32, extra: u32) -> Geometry {
        Geometry::for_frames(slots, extra, 4096).unwrap()
    }

    #[test]
    fn a_committed_loan_takes_the_place_of_the_slot_it_replaces() {
        let mut p = Payloads::new(&geom(2, 3), 2);
        let a = p.lend().unwrap();
        assert!(p.is_lent(a));
        p.leased_scratch();
        assert!(p.commit_lent(0, a));
        assert!(!p.is_lent(a));
        assert!(!p.commit_lent(1, a), "a slot is committed once");
        assert_eq!(p.payload_of[0], a);
        assert_eq!(p.place[0], Place::Free, "slot 0 was not held");
    }

    #[test]
    fn a_slot_wrapped_by_a_live_buffer_is_never_copied_into() {
        let mut p = Payloads::new(&geom(2, 2), 1);
        let a = p.lend().unwrap();
        p.leased_scratch();
        assert!(p.commit_lent(1, a));
        // The buffer still wraps `a`: the next frame of descriptor 1 goes elsewhere.
        p.leased_scratch();
        p.settle();
        let q = p.for_copy(1).expect("a free slot");
        assert!(q != a);
        assert_eq!(p.place[a as usize], Place::Retired);
        // Once the buffer is gone, `a` is free again.
        p.unpin(a);
        p.leased_scratch();
        p.settle();
        assert_eq!(p.place[a as usize], Place::Free);
    }

    #[test]
    fn a_held_slot_with_no_free_one_to_stand_in_is_never_chosen() {
        let mut p = Payloads::new(&geom(2, 1), 0);
        p.leased_scratch()[0] = true;
        p.settle();
        assert_eq!(
            p.for_copy(0),
            Some(2),
            "the spare stands in for leased slot 0"
        );
        // Now a reader beyond its budget holds every slot.
        p.leased_scratch().iter_mut().for_each(|l| *l = true);
        p.settle();
        assert!(!p.has_slot_for(1));
        assert_eq!(p.for_copy(1), None);
        assert_eq!(p.payload_of[1], 1, "nothing moved");
        // Once one comes free, frames flow again.
        p.leased_scratch()[1] = true;
        p.settle();
        assert_eq!(p.for_copy(1), Some(0));
    }

    #[test]
    fn loans_stop_at_their_share_of_the_slots() {
        let mut p = Payloads::new(&geom(2, 4), 2);
        let (a, b) = (p.lend().unwrap(), p.lend().unwrap());
        assert_eq!(p.lend(), None, "two pins at most");
        p.unpin(a);
        assert!(p.lend().is_some(), "an unused loan comes back");
        p.unpin(b);
        p.unpin(b);
        assert_eq!(p.pins, 1, "unpinning twice counts once");
    }
}
