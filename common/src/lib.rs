//! The shmring ring: decoded video frames shared between processes in shared memory.
//!
//! Frames go through a file in shared memory, with one writer that never waits and any
//! number of readers.
//!
//! Protocol in ten lines:
//! 1. The writer builds the ring file under a temporary name, then renames it into
//!    place, holding an exclusive OFD lock on it for as long as it lives.
//! 2. Frame `seq` (1, 2, ...) goes to slot `seq % slots`. The writer stores the slot's
//!    commit word `seq << 1` (writing), fences, copies the payload, fills the
//!    descriptor, stores `seq << 1 | 1` (Release), stores `head = seq` (Release), bumps
//!    the wake word and FUTEX_WAKEs every reader.
//! 3. A reader loads the commit word (Acquire), copies payload and descriptor out
//!    through raw pointers, fences (Acquire) and accepts the copy only if the commit word
//!    is unchanged: a torn frame is never returned.
//! 4. Readers sleep on the wake word with a futex; a free lock means the writer died; a
//!    new epoch under the same name means it restarted. Everything read from the file is
//!    bounded before use. The byte layout is `docs/ring-format.md`.

mod caps;
mod claims;
mod commit;
mod copy;
pub mod error;
mod follow;
pub mod formats;
pub mod layout;
mod leases;
mod lending;
pub mod location;
mod lookup;
mod mapping;
pub mod names;
pub mod reader;
pub mod session;
mod sigbus;
pub mod spec;
mod sys;
#[doc(hidden)]
pub mod testing;
pub mod units;
mod waits;
pub mod writer;

pub use error::{Error, Result};
pub use follow::{Attached, Follow, Follower, StartAt};
pub use layout::{RingKind, WriterState};
pub use lending::{Lender, Loan, RING_POOL_OPTION};
pub use location::{default_dir, validate_name, Handle, RingLocation};
pub use mapping::Geometry;
pub use names::{abandoned_temp_files, remove_abandoned_temp, remove_if_dead};
pub use reader::{
    attach, At, AtRule, Attach, ByHandle, Frame, Interrupter, LeasedPayload, Next, Payload,
    ReaderProgress, RingHold, RingReader, WriterStatus,
};
pub use sigbus::{
    disable as disable_sigbus_guard, install_notice as sigbus_guard_notice,
    is_installed as sigbus_guard_installed, GUARD_ENV as SIGBUS_GUARD_ENV,
};
pub use sys::{monotonic_ns, realtime_ns, wait_path, WaitPath};
pub use units::{codec_of, is_keyframe, UnitSizing, UnitStats, UnitWriter, DELTA_UNIT_FLAG};
pub use writer::{Origin, RingWriter, SlotWriter, WriterConfig};

/// How a frame's planes lie in its payload (GStreamer's video geometry, kept as numbers
/// so that non-GStreamer programs can read frames too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VideoLayout {
    /// GstVideoFormat number (0: not video / unknown).
    pub format: u32,
    pub width: u32,
    pub height: u32,
    pub n_planes: u32,
    pub offsets: [u64; layout::MAX_PLANES],
    pub strides: [i32; layout::MAX_PLANES],
}

/// What the writer says about a frame when committing it.
#[derive(Clone, Debug, Default)]
pub struct FrameMeta {
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub duration: Option<u64>,
    /// Wall clock ns since the Unix epoch at capture; None: the time of commit.
    pub captured_at_ns: Option<u64>,
    /// GStreamer buffer flags.
    pub flags: u32,
    /// Caps version of the frame; 0: the ring's latest.
    pub caps_version: u32,
    pub video: VideoLayout,
}

/// What a reader learns about a frame it copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    pub seq: u64,
    pub epoch: u64,
    /// Payload bytes.
    pub len: u64,
    pub payload_index: u32,
    /// Where the payload starts in its slot: 0 for a frame, the unit's place in the
    /// arena of a ring of units.
    pub payload_at: u64,
    /// In a ring of units, the keyframe this unit depends on (its own sequence for a
    /// keyframe; 0: none). 0 in a ring of frames.
    pub keyframe_seq: u64,
    pub caps_version: u32,
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub duration: Option<u64>,
    pub captured_at_ns: u64,
    pub commit_mono_ns: u64,
    pub flags: u32,
    pub video: VideoLayout,
}
