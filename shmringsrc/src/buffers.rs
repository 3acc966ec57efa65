//! Output buffers: the memory a frame lands in, and a frame made a timestamped buffer.

use std::sync::LazyLock;

use gst::prelude::*;
use gst::subclass::prelude::*;

use shmring_common::{Frame, FrameInfo, Payload};

use crate::imp::{ShmRingSrc, Stream, CAT};
use crate::timestamps::{self, Dropped, FrameTimes, Stamper};
use crate::units::UnitStamps;
use crate::{Mode, Timestamps};

/// Why a frame read from the ring does not leave the source.
#[derive(Debug)]
pub(crate) enum Skipped {
    /// It outlived its caps (two caps changes came after it).
    CapsGone,
    Dropped(Dropped),
}

/// A writable buffer for one frame, or nothing when allocation failed (the reader then
/// reports that the buffer is too small); and whether it is a slot of a shmringsink's
/// pool downstream.
pub(crate) struct OutBuf(
    pub(crate) Option<gst::MappedBuffer<gst::buffer::Writable>>,
    pub(crate) bool,
);

impl AsMut<[u8]> for OutBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Some(m) => m.as_mut_slice(),
            None => &mut [],
        }
    }
}

/// A leased frame as the memory of a GStreamer buffer. GStreamer takes the frame's
/// address and length from it once, when it wraps it, and reads the bytes as C code
/// from then on; no Rust code here reads through the slice.
struct LeaseMemory(shmring_common::LeasedPayload);

impl AsRef<[u8]> for LeaseMemory {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the slice only carries the address and length to GStreamer, which
        // keeps this LeaseMemory (and so the mapping and the lease) alive with the
        // memory, read-only.
        unsafe { self.0.as_slice() }
    }
}

/// Output buffers come from a pool of frame-sized buffers, so that the memory of each
/// frame is reused instead of freshly allocated (and page-faulted) for every frame.
#[derive(Clone, Default)]
pub(crate) struct Allocator {
    pool: Option<(gst::BufferPool, usize)>,
}

impl Allocator {
    pub(crate) fn for_caps(caps: &gst::Caps, size: usize) -> Self {
        let pool = gst::BufferPool::new();
        let mut config = pool.config();
        config.set_params(Some(caps), size as u32, 2, 0);
        let ok = pool.set_config(config).is_ok() && pool.set_active(true).is_ok();
        Allocator {
            pool: ok.then_some((pool, size)),
        }
    }

    pub(crate) fn alloc(&self, info: &FrameInfo) -> OutBuf {
        let len = info.len as usize;
        let buffer = match &self.pool {
            Some((pool, size)) if *size == len => pool.acquire_buffer(None).ok(),
            _ => None,
        }
        .or_else(|| gst::Buffer::with_size(len).ok());
        OutBuf(
            buffer.and_then(|b| b.into_mapped_buffer_writable().ok()),
            false,
        )
    }

    pub(crate) fn stop(&self) {
        if let Some((pool, _)) = &self.pool {
            let _ = pool.set_active(false);
        }
    }

    /// A buffer of `ring_pool` (a shmringsink's slots) for the frame, or of our own.
    pub(crate) fn alloc_from(&self, ring_pool: &gst::BufferPool, info: &FrameInfo) -> OutBuf {
        let slot = ring_pool
            .acquire_buffer(None)
            .ok()
            .filter(|b| b.size() == info.len as usize)
            .and_then(|b| b.into_mapped_buffer_writable().ok());
        match slot {
            Some(mapped) => OutBuf(Some(mapped), true),
            None => self.alloc(info),
        }
    }
}

impl ShmRingSrc {
    /// The output buffer of `frame`, or why it does not leave: its caps are gone
    /// (counted as lost or skipped), it is older than max-age (`too-late`), or a value
    /// it brings from the ring is out of range (`invalid`). The next buffer then
    /// carries a DISCONT.
    pub(crate) fn to_buffer(
        &self,
        stream: &mut Stream,
        frame: Frame<Payload<OutBuf>>,
        mode: Mode,
    ) -> Result<Result<gst::Buffer, Skipped>, gst::FlowError> {
        let units = stream.follower.reader().is_some_and(|r| r.holds_units());
        if !self.follow_caps(stream, &frame.info)? {
            stream.discont = true;
            self.resync_units(stream, units);
            self.count(|s| s.missed(mode, frame.missed.saturating_add(1)));
            return Ok(Err(Skipped::CapsGone));
        }
        if units && frame.missed > 0 && mode == Mode::Latest {
            // Jumped to the newest keyframe: live again from the newest unit.
            let newest = stream.follower.reader().and_then(crate::units::newest_time);
            stream.unit_clock.start_live(newest);
        }
        let expected = stream.info.as_ref().map(|i| i.size() as u64).unwrap_or(0);
        if !units && frame.info.len != expected {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                (
                    "Frame {} of ring {} has {} bytes, its caps need {}",
                    frame.info.seq,
                    stream.loc(),
                    frame.info.len,
                    expected
                )
            );
            return Err(gst::FlowError::Error);
        }
        let stamped = if units {
            self.stamp_unit(stream, &frame.info)
        } else {
            self.stamp(stream, &frame.info)
                .map(|(pts, duration, times)| UnitStamps {
                    pts,
                    dts: pts,
                    duration,
                    times,
                    decode_only: false,
                    discont: false,
                })
        };
        let UnitStamps {
            pts,
            dts,
            duration,
            times,
            decode_only,
            discont,
        } = match stamped {
            Ok(stamped) => stamped,
            Err(dropped) => {
                stream.discont = true;
                self.resync_units(stream, units);
                self.count(|s| s.dropped(&dropped));
                match &dropped {
                    Dropped::TooLate { .. } => gst::debug!(
                        CAT,
                        imp = self,
                        "frame {}: {}: dropped",
                        frame.info.seq,
                        dropped.reason()
                    ),
                    Dropped::Invalid(why) => gst::warning!(
                        CAT,
                        imp = self,
                        "ring {}: {why}: dropped (invalid in stats)",
                        stream.loc()
                    ),
                }
                return Ok(Err(Skipped::Dropped(dropped)));
            }
        };
        let mut buffer = match frame.data {
            Payload::Copied(OutBuf(Some(mapped), into_ring)) => {
                self.count(|s| s.into_ring += u64::from(into_ring));
                mapped.into_buffer()
            }
            Payload::Copied(OutBuf(None, _)) => return Err(gst::FlowError::Error),
            Payload::Leased(leased) => {
                self.count(|s| s.zero_copy += 1);
                // Read-only memory over the leased slot; freeing it releases the lease.
                gst::Buffer::from_slice(LeaseMemory(leased))
            }
        };
        {
            let b = buffer.get_mut().expect("new buffer is writable");
            b.set_pts(pts);
            b.set_dts(dts);
            if units && frame.info.flags & shmring_common::DELTA_UNIT_FLAG != 0 {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            if decode_only {
                b.set_flags(gst::BufferFlags::DECODE_ONLY);
            }
            if discont {
                stream.discont = true;
            }
            if units && frame.missed > 0 {
                self.count(|s| s.keyframe_jumps += 1);
            }
            b.set_offset(frame.info.seq);
            b.set_offset_end(frame.info.seq.saturating_add(1));
            b.set_duration(duration);
            if stream.discont || frame.missed > 0 {
                b.set_flags(gst::BufferFlags::DISCONT);
                stream.discont = false;
            }
            static UNIX: LazyLock<gst::Caps> =
                LazyLock::new(|| gst::Caps::new_empty_simple("timestamp/x-unix"));
            static WRITER_PTS: LazyLock<gst::Caps> =
                LazyLock::new(|| gst::Caps::new_empty_simple("timestamp/x-shmring-pts"));
            gst::ReferenceTimestampMeta::add(b, &UNIX, times.captured_at, None);
            if let Some(pts) = times.writer_pts {
                gst::ReferenceTimestampMeta::add(b, &WRITER_PTS, pts, None);
            }
        }
        self.count(|s| s.received(mode, frame.missed, frame.torn_retries));
        Ok(Ok(buffer))
    }

    /// After a unit that does not leave (its caps gone, a value out of range), the
    /// units after it up to the next keyframe cannot be decoded: read on from the
    /// newest keyframe instead.
    fn resync_units(&self, stream: &mut Stream, units: bool) {
        if let (true, Some(r)) = (units, stream.follower.reader_mut()) {
            r.seek_after(0);
        }
    }

    /// The PTS, DTS and duration of the buffer of a unit (see `units`), and its own
    /// times, checked.
    fn stamp_unit(&self, stream: &mut Stream, info: &FrameInfo) -> Result<UnitStamps, Dropped> {
        let caps_duration = self.negotiated.lock().unwrap().frame_duration;
        let now = self.obj().current_running_time();
        stream.unit_clock.stamp(info, now, caps_duration)
    }

    /// The PTS and duration of the buffer of a frame (see `timestamps`), and the
    /// frame's own times, checked.
    #[allow(clippy::type_complexity)]
    fn stamp(
        &self,
        stream: &mut Stream,
        info: &FrameInfo,
    ) -> Result<(Option<gst::ClockTime>, Option<gst::ClockTime>, FrameTimes), Dropped> {
        let times = FrameTimes::of(info)?;
        let caps_duration = self.negotiated.lock().unwrap().frame_duration;
        let now = self.obj().current_running_time();
        let (mode, max_age) = {
            let s = self.settings.lock().unwrap();
            (s.timestamps, s.max_age)
        };
        match mode {
            Timestamps::Arrival => {
                let (pts, duration) = stream.stamper.arrival(now, times.duration, caps_duration);
                Ok((pts, duration, times))
            }
            Timestamps::Capture => {
                let wall = gst::ClockTime::from_nseconds(
                    shmring_common::realtime_ns().min(timestamps::MAX_RING_TIME_NS),
                );
                let max_age = gst::ClockTime::from_nseconds(max_age);
                let pts = stream
                    .stamper
                    .capture(now, wall, times.captured_at, max_age)?;
                let duration = Stamper::nominal(times.duration, caps_duration);
                Ok((pts, duration, times))
            }
        }
    }
}
