//! The bytes of a ring file: superblock, descriptor table, payload slots.
//!
//! Every field that is shared between processes is an atomic, so that holding a
//! reference to these structs over a mapping that another process writes is sound even
//! when that process is hostile: the worst it can do is hand us wrong numbers, which the
//! reader bounds before use. Only the payload bytes are plain memory; they are copied
//! through raw pointers and accepted only after the slot's commit word is re-checked.
//!
//! The full table of offsets, sizes, writers and orderings is `docs/ring-format.md`;
//! the asserts at the bottom of this file keep the two honest.

use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64};

/// `b"SHMRING\0"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMRING\0");
/// Layout major version: a reader refuses any other major.
pub const LAYOUT_MAJOR: u32 = 1;
/// Layout minor version: additions that older readers can ignore. 1.2 added rings of
/// encoded units (`Superblock::kind`); a reader older than 1.2 must not be pointed at
/// one (docs/ring-format.md).
pub const LAYOUT_MINOR: u32 = 2;

pub const PAGE_SIZE: u64 = 4096;
pub const SUPERBLOCK_SIZE: u64 = 4096;
pub const DESCRIPTOR_SIZE: u64 = 256;
/// The descriptor table starts right after the superblock.
pub const DESCRIPTOR_OFFSET: u64 = SUPERBLOCK_SIZE;

/// Fewest slots a ring may have: one being written while one stays readable.
pub const MIN_SLOTS: u32 = 2;
/// Most slots a ring of frames may have.
pub const MAX_SLOTS: u32 = 1024;
/// Most units (descriptors) a ring of encoded units may have: ten minutes at 50 fps,
/// 7.5 MiB of descriptors.
pub const MAX_UNITS: u32 = 30_000;
/// Largest payload slot: 1 GiB (an 8K RGBA64 frame is 265 MB).
pub const MAX_SLOT_SIZE: u64 = 1 << 30;
/// Largest ring file: 64 GiB.
pub const MAX_TOTAL_SIZE: u64 = 64 << 30;
/// Most planes a frame describes (GStreamer's own limit).
pub const MAX_PLANES: usize = 4;
/// Most spare payload slots (beyond one per descriptor) a ring may have for leases.
pub const MAX_SPARES: u32 = 64;
/// The reader table: one page of 64-byte entries; entry 0 is the table's header.
pub const READER_TABLE_SIZE: u64 = PAGE_SIZE;
pub const READER_ENTRY_SIZE: u64 = 64;
pub const READER_ENTRIES: usize = (READER_TABLE_SIZE / READER_ENTRY_SIZE) as usize - 1;
/// Payload slots one reader may lease at once.
pub const LEASES_PER_READER: usize = 4;

/// Bytes of caps text one caps slot holds.
pub const CAPS_CAPACITY: usize = CAPS_WORDS * 8;
const CAPS_WORDS: usize = 190;

/// What a ring holds, as stored in `Superblock::kind` (layout 1.2; 0 in older rings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingKind {
    /// Decoded frames, one per payload slot (every ring before layout 1.2).
    Frames,
    /// Encoded access units of any size, in one payload slot used as a byte arena
    /// (`Descriptor::payload_at`), with a keyframe reference per unit (units.rs).
    Units,
}

impl RingKind {
    pub fn to_raw(self) -> u32 {
        match self {
            RingKind::Frames => 0,
            RingKind::Units => 1,
        }
    }

    /// `None` for a kind this layout does not know.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(RingKind::Frames),
            1 => Some(RingKind::Units),
            _ => None,
        }
    }
}

/// What the writer of a ring is doing, as stored in `Superblock::writer_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterState {
    /// Being built; never seen by a reader because the file is renamed into place
    /// only once initialised.
    Init,
    /// Writing frames (or about to).
    Live,
    /// The stream ended; frames committed so far stay readable.
    Eos,
    /// The writer closed the ring; a next writer may appear under the same name.
    Closed,
    /// The writer replaced this ring by a new one under the same name (new geometry).
    Replaced,
}

impl WriterState {
    pub fn to_raw(self) -> u32 {
        match self {
            WriterState::Init => 0,
            WriterState::Live => 1,
            WriterState::Eos => 2,
            WriterState::Closed => 3,
            WriterState::Replaced => 4,
        }
    }

    /// `None` for a value no writer of this layout stores.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => WriterState::Init,
            1 => WriterState::Live,
            2 => WriterState::Eos,
            3 => WriterState::Closed,
            4 => WriterState::Replaced,
            _ => return None,
        })
    }
}

/// One version of the caps string, guarded like a slot: `commit` is
/// `version << 1` while the writer fills it and `version << 1 | 1` once complete.
/// Two of these alternate (version & 1), so a reader holding a frame of caps version v
/// can still read v's text after the writer has published v + 1.
#[repr(C)]
pub struct CapsSlot {
    pub commit: AtomicU64,
    pub len: AtomicU32,
    pub _pad: AtomicU32,
    pub words: [AtomicU64; CAPS_WORDS],
}

/// The first page of a ring file.
#[repr(C)]
pub struct Superblock {
    /// `MAGIC`. Written before the file is renamed into place, never after.
    pub magic: AtomicU64,
    pub layout_major: AtomicU32,
    pub layout_minor: AtomicU32,
    /// Random per creation, never 0: a restarted writer is a new epoch.
    pub epoch: AtomicU64,
    pub slot_count: AtomicU32,
    pub descriptor_size: AtomicU32,
    pub descriptor_offset: AtomicU64,
    pub payload_offset: AtomicU64,
    /// Distance between payload slots; page aligned; the largest frame the ring holds.
    pub slot_stride: AtomicU64,
    pub total_size: AtomicU64,
    /// Wall clock (ns since the Unix epoch) at creation.
    pub created_realtime_ns: AtomicU64,
    pub writer_pid: AtomicU32,
    /// A `WriterState`. Stored with Release after the state it announces (a final
    /// commit, an EOS) is visible; readers load it with Acquire.
    pub writer_state: AtomicU32,
    /// CLOCK_MONOTONIC ns, refreshed at least every 100 ms by a live writer. Relaxed:
    /// informative only (the lock is what proves a writer alive).
    pub heartbeat_mono_ns: AtomicU64,
    /// Last committed sequence number (0: none yet). Stored with Release after the
    /// slot's commit word; readers load it with Acquire.
    pub head: AtomicU64,
    /// Futex word: incremented (Release) after every `head` store and state change,
    /// then FUTEX_WAKE. Readers load it (Acquire) before re-checking `head`, then
    /// FUTEX_WAIT on the value they loaded.
    pub wake: AtomicU32,
    /// Latest caps version (0: none). Stored with Release after its `CapsSlot`.
    pub caps_version: AtomicU32,
    /// Frames committed in this epoch (Relaxed: statistics).
    pub committed: AtomicU64,
    /// Frames begun and then abandoned (Relaxed: statistics).
    pub aborted: AtomicU64,
    /// Payload bytes committed (Relaxed: statistics).
    pub bytes_committed: AtomicU64,
    /// Where the reader table (zero-copy leases) starts, and its length.
    pub reader_table_offset: AtomicU64,
    pub reader_table_len: AtomicU32,
    /// Payload slots: slot_count plus the spares leases may hold.
    pub payload_count: AtomicU32,
    /// Frames of `committed` that upstream filled in a slot the writer lent, so they
    /// were not copied (Relaxed: statistics). Layout 1.1; zero in older writers' rings.
    pub committed_in_place: AtomicU64,
    /// A `RingKind` (layout 1.2). Written before the file is renamed into place.
    pub kind: AtomicU32,
    pub _pad: AtomicU32,
    pub _reserved: [AtomicU64; 108],
    pub caps: [CapsSlot; 2],
}

/// One slot's descriptor: what the frame in it is and whether it is complete.
#[repr(C)]
pub struct Descriptor {
    /// `seq << 1 | 1` once frame `seq` is committed, `seq << 1` while it is written
    /// (or was abandoned), 0 if never written. The seqlock of this slot: the writer
    /// stores `seq << 1` (Relaxed) then a Release fence before touching the payload,
    /// and `seq << 1 | 1` with Release after; a reader loads it with Acquire, copies,
    /// fences with Acquire and loads it again.
    pub commit: AtomicU64,
    /// Which payload slot holds the bytes (today always the descriptor's own index).
    pub payload_index: AtomicU32,
    /// Caps version the frame was written with.
    pub caps_version: AtomicU32,
    pub payload_len: AtomicU64,
    /// `u64::MAX` for none, as GStreamer's GST_CLOCK_TIME_NONE.
    pub pts: AtomicU64,
    pub dts: AtomicU64,
    pub duration: AtomicU64,
    /// Wall clock ns since the Unix epoch when the frame was captured (or committed).
    pub captured_at_ns: AtomicU64,
    /// CLOCK_MONOTONIC ns at commit.
    pub commit_mono_ns: AtomicU64,
    /// GStreamer buffer flags of the frame.
    pub flags: AtomicU32,
    /// GstVideoFormat number (0 when not video).
    pub video_format: AtomicU32,
    pub width: AtomicU32,
    pub height: AtomicU32,
    pub n_planes: AtomicU32,
    pub _pad: AtomicU32,
    pub plane_offset: [AtomicU64; MAX_PLANES],
    /// Plane strides (i32 bits).
    pub plane_stride: [AtomicU32; MAX_PLANES],
    /// Where the unit's bytes start in the payload slot (layout 1.2): always 0 in a ring
    /// of frames; in a ring of units, the unit's offset in the byte arena.
    pub payload_at: AtomicU64,
    /// In a ring of units, the sequence of the keyframe this unit depends on (its own
    /// for a keyframe; 0: none written yet). 0 in a ring of frames. Relaxed, written
    /// before the commit word like every field.
    pub keyframe_seq: AtomicU64,
    pub _reserved: [AtomicU64; 13],
}

/// The header of the reader table (its entry 0). Readers map the table page read-write.
#[repr(C)]
pub struct ReaderTableHeader {
    /// Leases readers may still take: starts at the number of spare payload slots. A
    /// reader takes one unit (CAS) before it leases; whoever zeroes a lease word (with a
    /// swap) gives one back. So leases never outnumber the spares, and the writer always
    /// finds a free payload slot.
    pub lease_budget: AtomicU32,
    pub _pad: AtomicU32,
    /// Frames the writer dropped because every payload slot they could go to was held
    /// (only readers that broke the budget can cause it; before 0.2 such a frame was
    /// written over a leased slot). Relaxed: statistics.
    pub frames_dropped_held: AtomicU64,
    pub _reserved: [AtomicU64; 6],
}

/// One reader's entry in the reader table, owned by whoever holds the OFD write lock on
/// the entry's first byte.
#[repr(C)]
pub struct ReaderEntry {
    pub pid: AtomicU32,
    pub _pad: AtomicU32,
    /// Leased payload slots, as index + 1 (0: none). A reader stores one (Relaxed), then
    /// a SeqCst fence, then re-checks the frame's commit word; the writer stores the
    /// commit word `writing(seq)`, then a SeqCst fence, then loads these. One of the two
    /// sees the other's store, so a leased slot is never reused.
    pub leases: [AtomicU32; LEASES_PER_READER],
    /// The reader's progress (layout 1.1), stored by the entry's owner after each frame
    /// it returns, for tools to show: the sequence of that frame, frames returned,
    /// frames it skipped or lost between them, and torn copies it threw away. Relaxed:
    /// statistics; whoever claims the entry zeroes them.
    pub last_seq: AtomicU64,
    pub received: AtomicU64,
    pub missed: AtomicU64,
    pub torn: AtomicU64,
    pub _reserved: [AtomicU64; 1],
}

/// Where the reader table starts for `slot_count` slots: after the descriptor table,
/// rounded up to a page.
pub fn reader_table_offset(slot_count: u32) -> u64 {
    round_up_page(DESCRIPTOR_OFFSET + u64::from(slot_count) * DESCRIPTOR_SIZE)
}

/// Where payload slot 0 starts for `slot_count` slots: after the reader table.
pub fn payload_offset(slot_count: u32) -> u64 {
    reader_table_offset(slot_count) + READER_TABLE_SIZE
}

/// Where reader entry `i` (0-based, after the header) starts within the reader table.
pub const fn reader_entry_in_table(i: usize) -> u64 {
    (i as u64 + 1) * READER_ENTRY_SIZE
}

pub fn round_up_page(n: u64) -> u64 {
    n.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// The largest sequence a commit word can carry (`seq << 1 | 1` must fit in 64 bits). A
/// `head` beyond it is a corrupt ring, and a reader's `last + 1` cannot overflow.
pub const MAX_SEQ: u64 = u64::MAX >> 1;

/// The commit word of a committed frame.
pub const fn committed(seq: u64) -> u64 {
    (seq << 1) | 1
}

/// The commit word of a slot being written with frame `seq`.
pub const fn writing(seq: u64) -> u64 {
    seq << 1
}

const _: () = {
    assert!(size_of::<CapsSlot>() == 1536);
    assert!(size_of::<Superblock>() == SUPERBLOCK_SIZE as usize);
    assert!(size_of::<Descriptor>() == DESCRIPTOR_SIZE as usize);
    assert!(offset_of!(Superblock, magic) == 0);
    assert!(offset_of!(Superblock, layout_major) == 8);
    assert!(offset_of!(Superblock, layout_minor) == 12);
    assert!(offset_of!(Superblock, epoch) == 16);
    assert!(offset_of!(Superblock, slot_count) == 24);
    assert!(offset_of!(Superblock, descriptor_size) == 28);
    assert!(offset_of!(Superblock, descriptor_offset) == 32);
    assert!(offset_of!(Superblock, payload_offset) == 40);
    assert!(offset_of!(Superblock, slot_stride) == 48);
    assert!(offset_of!(Superblock, total_size) == 56);
    assert!(offset_of!(Superblock, created_realtime_ns) == 64);
    assert!(offset_of!(Superblock, writer_pid) == 72);
    assert!(offset_of!(Superblock, writer_state) == 76);
    assert!(offset_of!(Superblock, heartbeat_mono_ns) == 80);
    assert!(offset_of!(Superblock, head) == 88);
    assert!(offset_of!(Superblock, wake) == 96);
    assert!(offset_of!(Superblock, caps_version) == 100);
    assert!(offset_of!(Superblock, committed) == 104);
    assert!(offset_of!(Superblock, aborted) == 112);
    assert!(offset_of!(Superblock, bytes_committed) == 120);
    assert!(offset_of!(Superblock, reader_table_offset) == 128);
    assert!(offset_of!(Superblock, reader_table_len) == 136);
    assert!(offset_of!(Superblock, payload_count) == 140);
    assert!(offset_of!(Superblock, committed_in_place) == 144);
    assert!(offset_of!(Superblock, kind) == 152);
    assert!(size_of::<ReaderTableHeader>() == READER_ENTRY_SIZE as usize);
    assert!(size_of::<ReaderEntry>() == READER_ENTRY_SIZE as usize);
    assert!(offset_of!(ReaderEntry, leases) == 8);
    assert!(offset_of!(ReaderEntry, last_seq) == 24);
    assert!(offset_of!(ReaderEntry, torn) == 48);
    assert!(offset_of!(Superblock, caps) == 1024);
    assert!(offset_of!(CapsSlot, commit) == 0);
    assert!(offset_of!(CapsSlot, len) == 8);
    assert!(offset_of!(CapsSlot, words) == 16);
    assert!(offset_of!(Descriptor, commit) == 0);
    assert!(offset_of!(Descriptor, payload_index) == 8);
    assert!(offset_of!(Descriptor, caps_version) == 12);
    assert!(offset_of!(Descriptor, payload_len) == 16);
    assert!(offset_of!(Descriptor, pts) == 24);
    assert!(offset_of!(Descriptor, dts) == 32);
    assert!(offset_of!(Descriptor, duration) == 40);
    assert!(offset_of!(Descriptor, captured_at_ns) == 48);
    assert!(offset_of!(Descriptor, commit_mono_ns) == 56);
    assert!(offset_of!(Descriptor, flags) == 64);
    assert!(offset_of!(Descriptor, video_format) == 68);
    assert!(offset_of!(Descriptor, width) == 72);
    assert!(offset_of!(Descriptor, height) == 76);
    assert!(offset_of!(Descriptor, n_planes) == 80);
    assert!(offset_of!(Descriptor, plane_offset) == 88);
    assert!(offset_of!(Descriptor, plane_stride) == 120);
    assert!(offset_of!(Descriptor, payload_at) == 136);
    assert!(offset_of!(Descriptor, keyframe_seq) == 144);
    assert!(offset_of!(Descriptor, _reserved) == 152);
    // Little-endian hosts only: the file format is little-endian and read in place.
    assert!(cfg!(target_endian = "little"));
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_starts_on_a_page_after_the_descriptors() {
        assert_eq!(reader_table_offset(2), 8192);
        assert_eq!(payload_offset(2), 12288);
        assert_eq!(payload_offset(16), 12288);
        assert_eq!(payload_offset(17), 16384);
        assert_eq!(payload_offset(MAX_SLOTS), 4096 + 1024 * 256 + 4096);
    }

    #[test]
    fn commit_words_distinguish_writing_from_committed() {
        assert_eq!(committed(5), 11);
        assert_eq!(writing(5), 10);
        assert_ne!(committed(0), writing(0));
        assert_eq!(committed(7) >> 1, 7);
    }

    #[test]
    fn writer_state_round_trips_and_rejects_unknown_values() {
        for s in [
            WriterState::Init,
            WriterState::Live,
            WriterState::Eos,
            WriterState::Closed,
            WriterState::Replaced,
        ] {
            assert_eq!(WriterState::from_raw(s.to_raw()), Some(s));
        }
        assert_eq!(WriterState::from_raw(5), None);
        assert_eq!(WriterState::from_raw(u32::MAX), None);
    }
}
