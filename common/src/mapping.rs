//! The mapped ring file and its validated geometry.
//!
//! All pointer arithmetic over the mapping is here, bounded by a `Geometry` that was
//! checked against the file.

use std::path::Path;
use std::ptr::NonNull;

use memmap2::{Mmap, MmapMut};

use crate::error::{Error, Result};
use crate::layout::*;
use crate::sigbus::Guard;

/// Slot count and sizes of one ring, checked to fit its mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Descriptors: the frames the ring holds.
    pub slot_count: u32,
    /// Payload slots: slot_count plus spares that leases may hold.
    pub payload_count: u32,
    pub slot_stride: u64,
    pub reader_table_offset: u64,
    pub payload_offset: u64,
    pub total_size: u64,
    /// Frames, or encoded units in one byte arena (payload slot 0, `slot_stride` long).
    pub kind: RingKind,
}

impl Geometry {
    /// Geometry for a new ring of `slot_count` slots holding frames up to `max_frame`,
    /// with `spares` extra payload slots for zero-copy leases.
    pub fn for_frames(slot_count: u32, spares: u32, max_frame: u64) -> Result<Self> {
        if spares > MAX_SPARES {
            return Err(Error::InvalidGeometry {
                what: format!("{spares} spare slots, at most {MAX_SPARES}"),
            });
        }
        if !(MIN_SLOTS..=MAX_SLOTS).contains(&slot_count) {
            return Err(Error::InvalidGeometry {
                what: format!("{slot_count} slots, expected {MIN_SLOTS} to {MAX_SLOTS}"),
            });
        }
        if max_frame == 0 || max_frame > MAX_SLOT_SIZE {
            return Err(Error::InvalidGeometry {
                what: format!("frames of {max_frame} bytes, expected 1 to {MAX_SLOT_SIZE}"),
            });
        }
        let slot_stride = round_up_page(max_frame);
        let payload_offset = payload_offset(slot_count);
        let payload_count = slot_count + spares;
        let total_size = payload_offset + u64::from(payload_count) * slot_stride;
        if total_size > MAX_TOTAL_SIZE {
            return Err(Error::InvalidGeometry {
                what: format!("{total_size} bytes in all, the most is {MAX_TOTAL_SIZE}"),
            });
        }
        Ok(Geometry {
            slot_count,
            payload_count,
            slot_stride,
            reader_table_offset: reader_table_offset(slot_count),
            payload_offset,
            total_size,
            kind: RingKind::Frames,
        })
    }

    /// Geometry for a new ring of `units` encoded units (descriptors) whose bytes share
    /// one arena of `arena` bytes (rounded up to a page). No spares: units are copied,
    /// never leased (units.rs).
    pub fn for_units(units: u32, arena: u64) -> Result<Self> {
        if !(MIN_SLOTS..=MAX_UNITS).contains(&units) {
            return Err(Error::InvalidGeometry {
                what: format!("{units} units, expected {MIN_SLOTS} to {MAX_UNITS}"),
            });
        }
        if arena == 0 || arena > MAX_SLOT_SIZE {
            return Err(Error::InvalidGeometry {
                what: format!("an arena of {arena} bytes, expected 1 to {MAX_SLOT_SIZE}"),
            });
        }
        let slot_stride = round_up_page(arena);
        let payload_offset = payload_offset(units);
        Ok(Geometry {
            slot_count: units,
            payload_count: 1,
            slot_stride,
            reader_table_offset: reader_table_offset(units),
            payload_offset,
            total_size: payload_offset + slot_stride,
            kind: RingKind::Units,
        })
    }

    /// Reads and checks the geometry a ring file claims. `file_len` is what fstat said.
    pub fn from_superblock(sb: &Superblock, file_len: u64, path: &Path) -> Result<Self> {
        use std::sync::atomic::Ordering::Relaxed;
        // Relaxed: geometry is written before the file is renamed into place and never
        // changes afterwards; a hostile change is caught by the checks below.
        let magic = sb.magic.load(Relaxed);
        if magic != MAGIC {
            return Err(Error::NotARingFile {
                path: path.to_owned(),
                found: format!(
                    "magic {:02x?}, expected \"SHMRING\\0\"",
                    magic.to_le_bytes()
                ),
            });
        }
        let major = sb.layout_major.load(Relaxed);
        if major != LAYOUT_MAJOR {
            return Err(Error::UnsupportedVersion {
                path: path.to_owned(),
                found: (major, sb.layout_minor.load(Relaxed)),
                supported: LAYOUT_MAJOR,
            });
        }
        let bad = |what: String| Err(Error::corrupt(path, what));
        let raw_kind = sb.kind.load(Relaxed);
        let Some(kind) = RingKind::from_raw(raw_kind) else {
            return bad(format!(
                "ring kind {raw_kind}, expected 0 (frames) or 1 (units)"
            ));
        };
        let max_slots = match kind {
            RingKind::Frames => MAX_SLOTS,
            RingKind::Units => MAX_UNITS,
        };
        let slot_count = sb.slot_count.load(Relaxed);
        if !(MIN_SLOTS..=max_slots).contains(&slot_count) {
            return bad(format!(
                "slot count {slot_count}, expected {MIN_SLOTS} to {max_slots}"
            ));
        }
        let dsize = sb.descriptor_size.load(Relaxed);
        if u64::from(dsize) != DESCRIPTOR_SIZE {
            return bad(format!(
                "descriptor size {dsize}, expected {DESCRIPTOR_SIZE}"
            ));
        }
        let doff = sb.descriptor_offset.load(Relaxed);
        if doff != DESCRIPTOR_OFFSET {
            return bad(format!(
                "descriptor offset {doff}, expected {DESCRIPTOR_OFFSET}"
            ));
        }
        let toff = sb.reader_table_offset.load(Relaxed);
        let tlen = u64::from(sb.reader_table_len.load(Relaxed));
        if toff != reader_table_offset(slot_count) || tlen != READER_TABLE_SIZE {
            return bad(format!(
                "reader table at {toff} ({tlen} bytes), expected {} ({READER_TABLE_SIZE} bytes)",
                reader_table_offset(slot_count)
            ));
        }
        let payload_count = sb.payload_count.load(Relaxed);
        if kind == RingKind::Units && payload_count != 1 {
            return bad(format!(
                "{payload_count} payload slots in a ring of units, expected 1 (its arena)"
            ));
        }
        if kind == RingKind::Frames
            && (payload_count < slot_count || payload_count - slot_count > MAX_SPARES)
        {
            return bad(format!(
                "{payload_count} payload slots for {slot_count} slots"
            ));
        }
        let poff = sb.payload_offset.load(Relaxed);
        if poff != payload_offset(slot_count) {
            return bad(format!(
                "payload offset {poff}, expected {} for {slot_count} slots",
                payload_offset(slot_count)
            ));
        }
        let stride = sb.slot_stride.load(Relaxed);
        if stride == 0 || !stride.is_multiple_of(PAGE_SIZE) || stride > MAX_SLOT_SIZE {
            return bad(format!(
                "slot stride {stride}, expected a multiple of {PAGE_SIZE} up to {MAX_SLOT_SIZE}"
            ));
        }
        let total = sb.total_size.load(Relaxed);
        let expected = poff + u64::from(payload_count) * stride; // bounded above: no overflow
        if total != expected {
            return bad(format!("total size {total}, geometry says {expected}"));
        }
        if total > file_len {
            return bad(format!(
                "file is {file_len} bytes, its superblock claims {total} (truncated)"
            ));
        }
        if sb.epoch.load(Relaxed) == 0 {
            return bad("epoch 0".into());
        }
        Ok(Geometry {
            slot_count,
            payload_count,
            slot_stride: stride,
            reader_table_offset: toff,
            payload_offset: poff,
            total_size: total,
            kind,
        })
    }

    /// Descriptor (and payload) slot of frame `seq`.
    pub fn slot_of(&self, seq: u64) -> u32 {
        (seq % u64::from(self.slot_count)) as u32
    }

    /// The oldest frame a ring of this geometry can still hold when its head is `head`
    /// (sequences start at 1).
    pub fn oldest_held(&self, head: u64) -> u64 {
        head.saturating_sub(u64::from(self.slot_count) - 1).max(1)
    }

    /// Where reader entry `i` (0-based, after the table's header) starts in the file: the
    /// byte whose OFD lock makes the entry a reader's.
    pub fn reader_entry_offset(&self, i: usize) -> u64 {
        self.reader_table_offset + reader_entry_in_table(i)
    }
}

enum Backing {
    ReadWrite(MmapMut),
    ReadOnly(Mmap),
}

/// The reader table page of a ring, mapped read-write by a reader that leases slots.
pub struct TableMapping {
    base: NonNull<u8>,
    // Before the map: unregistered before it is unmapped.
    guard: Guard,
    _map: MmapMut,
}

// SAFETY: all atomics, as for Mapping.
unsafe impl Send for TableMapping {}
// SAFETY: as for Send.
unsafe impl Sync for TableMapping {}

impl TableMapping {
    /// Maps the reader table of `geom` from `file` (opened read-write) read-write.
    pub fn map(file: &std::fs::File, geom: &Geometry, path: &Path) -> Result<Self> {
        // SAFETY: a page of the ring file shared with other processes; accessed only as
        // the atomics of ReaderTableHeader and ReaderEntry.
        let mut m = unsafe {
            memmap2::MmapOptions::new()
                .offset(geom.reader_table_offset)
                .len(READER_TABLE_SIZE as usize)
                .map_mut(file)
        }
        .map_err(|e| Error::io(path, "mmap reader table", e))?;
        let base = NonNull::new(m.as_mut_ptr())
            .ok_or_else(|| Error::corrupt(path, "empty reader table"))?;
        let guard = Guard::register(base.as_ptr(), m.len(), true);
        Ok(TableMapping {
            base,
            guard,
            _map: m,
        })
    }

    /// Whether the file was truncated under this page, which now reads as zeros.
    pub fn truncated(&self) -> bool {
        self.guard.truncated()
    }

    /// Whether a truncation under this page makes it read as zeros (see `sigbus`)
    /// rather than raise SIGBUS.
    pub fn guarded(&self) -> bool {
        self.guard.active()
    }

    pub fn header(&self) -> &ReaderTableHeader {
        // SAFETY: the mapping is one page, page aligned; the header is its first 64 bytes.
        unsafe { &*(self.base.as_ptr() as *const ReaderTableHeader) }
    }

    pub fn entry(&self, i: usize) -> &ReaderEntry {
        let i = i % READER_ENTRIES;
        // SAFETY: entry i + 1 of 64 lies within the page; 64-byte aligned; all atomics.
        unsafe {
            &*(self.base.as_ptr().add(reader_entry_in_table(i) as usize) as *const ReaderEntry)
        }
    }
}

/// A whole ring file mapped into memory, at least one superblock long.
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
    // Before the backing: unregistered before it is unmapped.
    guard: Guard,
    _backing: Backing,
}

// SAFETY: the mapping is plain shared memory; every shared field is an atomic and the
// payload is only reached through the raw-pointer copies below, so using it from
// several threads is as safe as using it from several processes.
unsafe impl Send for Mapping {}
// SAFETY: as for Send.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `file` read-write (the writer).
    pub fn read_write(file: &std::fs::File, path: &Path) -> Result<Self> {
        // SAFETY: the file is a ring file in shared memory that other processes map too;
        // we never form references to non-atomic bytes of it except the writer's own
        // payload view, which only the lock-holding writer writes.
        let mut m = unsafe { MmapMut::map_mut(file) }.map_err(|e| Error::io(path, "mmap", e))?;
        // Where the ring's tmpfs is mounted `huge=advise`, this backs it with 2 MiB pages,
        // which large frames are copied in and out of faster (docs/design.md, "Huge
        // pages"). Elsewhere it changes nothing, and its error (no huge pages in this
        // kernel) means nothing: the ring works the same with small pages.
        let _ = m.advise(memmap2::Advice::HugePage);
        let base =
            NonNull::new(m.as_mut_ptr()).ok_or_else(|| Error::corrupt(path, "empty mapping"))?;
        let guard = Guard::register(base.as_ptr(), m.len(), true);
        Self::checked(base, m.len(), guard, Backing::ReadWrite(m), path)
    }

    /// Maps `file` read-only (a reader).
    pub fn read_only(file: &std::fs::File, path: &Path) -> Result<Self> {
        // SAFETY: as for read_write; a reader only ever loads atomics and copies bytes
        // out through raw pointers, so concurrent changes by the writer are expected.
        let m = unsafe { Mmap::map(file) }.map_err(|e| Error::io(path, "mmap", e))?;
        let base = NonNull::new(m.as_ptr() as *mut u8)
            .ok_or_else(|| Error::corrupt(path, "empty mapping"))?;
        let guard = Guard::register(base.as_ptr(), m.len(), false);
        Self::checked(base, m.len(), guard, Backing::ReadOnly(m), path)
    }

    fn checked(
        base: NonNull<u8>,
        len: usize,
        guard: Guard,
        backing: Backing,
        path: &Path,
    ) -> Result<Self> {
        if (len as u64) < SUPERBLOCK_SIZE {
            return Err(Error::corrupt(
                path,
                format!("file is {len} bytes, smaller than the {SUPERBLOCK_SIZE}-byte superblock"),
            ));
        }
        Ok(Mapping {
            base,
            len,
            guard,
            _backing: backing,
        })
    }

    /// Allocates every page of a new ring file (the writer's mapping), so that a full
    /// filesystem is an error now and not a SIGBUS at the first frame. Through the
    /// mapping (MADV_POPULATE_WRITE, Linux 5.14), so that the huge-page advice applies
    /// to the allocation; with posix_fallocate on older kernels, which do not know it.
    pub fn reserve(&self, file: &std::fs::File) -> std::io::Result<()> {
        let Backing::ReadWrite(m) = &self._backing else {
            return Err(std::io::Error::from_raw_os_error(libc::EBADF));
        };
        settle_reservation(
            m.advise(memmap2::Advice::PopulateWrite),
            file,
            self.len as u64,
        )
    }

    /// Maps the first `len` bytes of a reader's mapping into its page tables now
    /// (MADV_POPULATE_READ, Linux 5.14), faulting in every page as a read would: in a
    /// hole of a tmpfs file that allocates a page, so the caller checks the file has
    /// none (`RingReader::prefault`). At most the mapping's length. The kernel's
    /// answer: EINVAL before 5.14, EFAULT (not SIGBUS) past a file shrunk meanwhile,
    /// ENOMEM, EINTR. A writer's mapping is left alone (Ok): `reserve` allocated it.
    pub fn prefault(&self, len: u64) -> std::io::Result<()> {
        let Backing::ReadOnly(m) = &self._backing else {
            return Ok(());
        };
        let len = usize::try_from(len).unwrap_or(usize::MAX).min(self.len);
        m.advise_range(memmap2::Advice::PopulateRead, 0, len)
    }

    pub fn len(&self) -> u64 {
        self.len as u64
    }

    /// Whether the file was truncated under the mapping, which now reads as zeros (see
    /// `sigbus`). Frames read or written since are lost.
    pub fn truncated(&self) -> bool {
        self.guard.truncated()
    }

    /// Whether a truncation under the mapping makes it read as zeros (see `sigbus`)
    /// rather than raise SIGBUS.
    pub fn guarded(&self) -> bool {
        self.guard.active()
    }

    pub fn superblock(&self) -> &Superblock {
        // SAFETY: the mapping is page aligned and at least SUPERBLOCK_SIZE long (checked
        // at construction); Superblock is all atomics, valid for any bit pattern.
        unsafe { &*(self.base.as_ptr() as *const Superblock) }
    }

    /// Descriptor of slot `index`; `geom` must have been validated against this mapping.
    pub fn descriptor(&self, geom: &Geometry, index: u32) -> &Descriptor {
        let index = index % geom.slot_count;
        let off = DESCRIPTOR_OFFSET + u64::from(index) * DESCRIPTOR_SIZE;
        assert!(
            off + DESCRIPTOR_SIZE <= self.len as u64,
            "descriptor outside the mapping"
        );
        // SAFETY: in bounds (asserted), 8-byte aligned (page base + multiple of 256),
        // Descriptor is all atomics, valid for any bit pattern.
        unsafe { &*(self.base.as_ptr().add(off as usize) as *const Descriptor) }
    }

    /// The reader table's header; `geom` must have been validated against this mapping.
    pub fn reader_table(&self, geom: &Geometry) -> &ReaderTableHeader {
        let off = geom.reader_table_offset;
        assert!(
            off + READER_TABLE_SIZE <= self.len as u64,
            "reader table outside the mapping"
        );
        // SAFETY: in bounds (asserted), page aligned, all atomics.
        unsafe { &*(self.base.as_ptr().add(off as usize) as *const ReaderTableHeader) }
    }

    /// Reader entry `i` (0-based, after the header).
    pub fn reader_entry(&self, geom: &Geometry, i: usize) -> &ReaderEntry {
        let i = i % READER_ENTRIES;
        let off = geom.reader_entry_offset(i);
        assert!(
            off + READER_ENTRY_SIZE <= self.len as u64,
            "reader entry outside the mapping"
        );
        // SAFETY: in bounds (asserted), 64-byte aligned, all atomics.
        unsafe { &*(self.base.as_ptr().add(off as usize) as *const ReaderEntry) }
    }

    /// Every reader entry, in order: one bounds check for the whole table.
    pub fn reader_entries(&self, geom: &Geometry) -> &[ReaderEntry] {
        let off = geom.reader_entry_offset(0);
        assert!(
            off + READER_ENTRIES as u64 * READER_ENTRY_SIZE <= self.len as u64,
            "reader table outside the mapping"
        );
        // SAFETY: READER_ENTRIES entries in bounds (asserted), each READER_ENTRY_SIZE
        // bytes (asserted in layout.rs); the table starts on a page and entries on
        // multiples of 64 bytes, beyond ReaderEntry's alignment of 8; all atomics.
        unsafe {
            std::slice::from_raw_parts(
                self.base.as_ptr().add(off as usize) as *const ReaderEntry,
                READER_ENTRIES,
            )
        }
    }

    /// Start of payload slot `index` if `len` bytes of it lie in the mapping.
    pub fn payload_start(&self, geom: &Geometry, index: u32, len: u64) -> Option<*const u8> {
        self.payload_ptr(geom, index, len).map(|p| p as *const u8)
    }

    /// The payload slot that `bytes` start at the beginning of and fit in, if any.
    pub fn payload_index_at(&self, geom: &Geometry, bytes: &[u8]) -> Option<u32> {
        let first = self.payload_ptr(geom, 0, 0)? as usize;
        let off = (bytes.as_ptr() as usize).checked_sub(first)? as u64;
        let index = u32::try_from(off / geom.slot_stride).ok()?;
        let start = self.payload_ptr(geom, index, bytes.len() as u64)?;
        std::ptr::eq(start, bytes.as_ptr()).then_some(index)
    }

    fn payload_ptr(&self, geom: &Geometry, index: u32, len: u64) -> Option<*mut u8> {
        if index >= geom.payload_count || len > geom.slot_stride {
            return None;
        }
        let off = geom.payload_offset + u64::from(index) * geom.slot_stride;
        if off + len > self.len as u64 {
            return None;
        }
        // SAFETY: off + len is within the mapping (checked just above).
        Some(unsafe { self.base.as_ptr().add(off as usize) })
    }

    /// Reads the last of the first `len` bytes of payload slot `index`, so that a file
    /// shrunk below them faults now, while the caller can still check `truncated`, and
    /// not in a consumer of the payload. Only for a `guarded` mapping: unguarded, that
    /// fault is a SIGBUS that kills. Nothing if the bytes lie outside the mapping.
    pub fn touch_payload_end(&self, geom: &Geometry, index: u32, len: u64) {
        if let (Some(start), true) = (self.payload_ptr(geom, index, len), len > 0) {
            // SAFETY: start + len - 1 is inside the mapping (payload_ptr checked the
            // range). The byte may be written concurrently by another process: it is
            // read once through a raw pointer, volatile so that the read is not elided,
            // and its value is not used.
            unsafe { std::ptr::read_volatile(start.add(len as usize - 1)) };
        }
    }

    /// Copies `dst.len()` bytes of payload slot `index`, from byte `at` of it, into
    /// `dst`. The bytes may be changing under us (the writer may be reusing the slot);
    /// the caller accepts them only after re-checking the slot's commit word. None if
    /// out of bounds.
    pub fn copy_payload(&self, geom: &Geometry, index: u32, at: u64, dst: &mut [u8]) -> Option<()> {
        let end = at.checked_add(dst.len() as u64)?;
        let slot = self.payload_ptr(geom, index, end)?;
        // SAFETY: slot..slot+end is inside the mapping (payload_ptr), so is slot+at.
        let src = unsafe { slot.add(at as usize) };
        // SAFETY: src..src+len is inside the mapping (payload_ptr) and cannot overlap
        // `dst`, which is memory of this process outside any ring mapping. The source
        // may be written concurrently by another process: this is the seqlock's racy
        // read, which we never turn into a reference and validate before use.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Some(())
    }

    /// The writer's view of payload slot `index`.
    ///
    /// # Safety
    /// Only the lock-holding writer may call this, on a read-write mapping, and only
    /// while no other view of the same slot exists in this process.
    // The bytes are the ring's shared payload, not data owned by `self`: exclusivity
    // comes from the writer's lock and its `&mut RingWriter` borrow, per the contract.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn payload_mut(&self, geom: &Geometry, index: u32) -> &mut [u8] {
        let ptr = self
            .payload_ptr(geom, index, geom.slot_stride)
            .expect("slot inside mapping");
        // SAFETY: in bounds (payload_ptr); exclusive per the caller's contract; readers in
        // other processes only copy out of it and validate through the commit word.
        unsafe { std::slice::from_raw_parts_mut(ptr, geom.slot_stride as usize) }
    }
}

/// What `Mapping::reserve` makes of MADV_POPULATE_WRITE's answer: a kernel that does not
/// know it (EINVAL, before 5.14) reserves the file with posix_fallocate instead; a page
/// that could not be allocated (EFAULT: the filesystem is full) is ENOSPC.
fn settle_reservation(
    populated: std::io::Result<()>,
    file: &std::fs::File,
    len: u64,
) -> std::io::Result<()> {
    match populated {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let len = libc::off_t::try_from(len)
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EFBIG))?;
            nix::fcntl::posix_fallocate(file, 0, len).map_err(std::io::Error::from)
        }
        Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::settle_reservation;
    use crate::testing::TestDir;
    use std::io::Error;
    use std::os::unix::fs::MetadataExt;

    /// A file of `len` bytes, none allocated, in a private directory on /dev/shm.
    fn sized_file(dir: &TestDir, len: u64) -> std::fs::File {
        let file = std::fs::File::create_new(dir.path.join("reserve")).unwrap();
        file.set_len(len).unwrap();
        file
    }

    #[test]
    fn a_kernel_without_populate_write_gets_the_file_reserved_by_fallocate() {
        let (dir, len) = (TestDir::new("reserve-fallback"), 3 << 20);
        let file = sized_file(&dir, len);
        assert_eq!(
            file.metadata().unwrap().blocks(),
            0,
            "set_len allocates nothing"
        );
        settle_reservation(Err(Error::from_raw_os_error(libc::EINVAL)), &file, len).unwrap();
        assert!(
            file.metadata().unwrap().blocks() * 512 >= len,
            "every byte allocated"
        );
    }

    #[test]
    fn a_page_that_cannot_be_allocated_is_no_space_and_other_answers_pass_through() {
        let dir = TestDir::new("reserve-answers");
        let file = sized_file(&dir, 4096);
        let full = settle_reservation(Err(Error::from_raw_os_error(libc::EFAULT)), &file, 4096);
        assert_eq!(full.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        let other = settle_reservation(Err(Error::from_raw_os_error(libc::ENOMEM)), &file, 4096);
        assert_eq!(other.unwrap_err().raw_os_error(), Some(libc::ENOMEM));
        settle_reservation(Ok(()), &file, 4096).unwrap();
        assert_eq!(
            file.metadata().unwrap().blocks(),
            0,
            "Ok means already done"
        );
    }
}
