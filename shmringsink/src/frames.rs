//! Writing a buffer into the ring: committed in place when it is a slot our pool lent,
//! else copied plane by plane; and what the ring records of it besides its bytes.

use gst::glib;
use gst::glib::translate::IntoGlib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::VideoInfo;
use shmring_common::{FrameMeta, RingWriter, VideoLayout};

use crate::imp::{ShmRingSink, State, CAT};

impl ShmRingSink {
    /// Commits `buffer` without a copy if it is one of the ring slots our pool lent,
    /// filled in GStreamer's default layout for `info`. None: it is not; copy it.
    fn commit_in_place(
        &self,
        writer: &mut RingWriter,
        buffer: &gst::BufferRef,
        info: &VideoInfo,
        meta: &FrameMeta,
    ) -> shmring_common::Result<Option<u64>> {
        if buffer.n_memory() != 1 {
            return Ok(None);
        }
        if let Some(m) = buffer.meta::<gst_video::VideoMeta>() {
            let n = info.n_planes() as usize;
            if m.offset()[..n] != info.offset()[..n] || m.stride()[..n] != info.stride()[..n] {
                return Ok(None);
            }
        }
        let memory = buffer.peek_memory(0);
        if memory.parent().is_some() {
            return Ok(None); // a part of another memory, which others may still write
        }
        let Ok(map) = memory.map_readable() else {
            return Ok(None);
        };
        let Some(bytes) = map.as_slice().get(..info.size()) else {
            return Ok(None);
        };
        if !writer.is_lent(bytes) {
            return Ok(None);
        }
        // From here on nothing may write the slot: readers read it in place. One more
        // exclusive holder makes the memory read-only to every GStreamer API (a buffer
        // made writable maps a copy of it instead), for as long as the memory lives.
        // The lock fails while somebody still has the memory mapped for writing (a
        // decoder keeping a reference picture mapped, say): that frame is copied, since
        // its writer may go on writing the slot.
        // SAFETY: `memory` is a live memory of a buffer we hold a reference to;
        // gst_mini_object_lock only changes its lock state atomically. The hold is never
        // released: the lock state goes with the memory when it is freed.
        let frozen = unsafe {
            gst::ffi::gst_mini_object_lock(
                memory.as_ptr() as *mut gst::ffi::GstMiniObject,
                gst::ffi::GST_LOCK_FLAG_EXCLUSIVE,
            )
        };
        if frozen == glib::ffi::GFALSE {
            gst::debug!(
                CAT,
                imp = self,
                "a ring slot pushed while still mapped for writing: copied, not committed in place"
            );
            return Ok(None);
        }
        writer.commit_in_place(bytes, meta)
    }

    /// Writes `buffer` into the ring, in place or copied: its sequence, whether in place,
    /// its size and the ring's epoch (its handle, made only when asked for: readers are
    /// woken already, and wait for this thread to leave the CPU); None when it was
    /// dropped (every slot held).
    #[allow(clippy::type_complexity)]
    pub(crate) fn write_frame(
        &self,
        state: &mut State,
        buffer: &gst::Buffer,
    ) -> Result<Option<(u64, bool, usize, u64)>, gst::FlowError> {
        let State {
            writer: Some(writer),
            info: Some(info),
            caps_version,
            ..
        } = state
        else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Buffer before caps"));
            return Err(gst::FlowError::NotNegotiated);
        };
        let meta = frame_meta(buffer, info, *caps_version);
        let (seq, in_place) = match self.commit_in_place(writer, buffer, info, &meta) {
            Ok(Some(seq)) => (seq, true),
            Ok(None) => match self.copy_in(writer, buffer, info, &meta)? {
                Some(seq) => (seq, false),
                None => return Ok(None),
            },
            Err(e) => {
                gst::element_imp_error!(self, gst::ResourceError::Write, ("{}", e));
                return Err(gst::FlowError::Error);
            }
        };
        Ok(Some((seq, in_place, info.size(), writer.epoch())))
    }

    /// Copies `buffer` into the next slot, plane by plane in the default layout for
    /// `info`, and commits it. None: dropped, every slot it could go to being held.
    fn copy_in(
        &self,
        writer: &mut RingWriter,
        buffer: &gst::Buffer,
        info: &VideoInfo,
        meta: &FrameMeta,
    ) -> Result<Option<u64>, gst::FlowError> {
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info)
            .map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "Buffer of {} bytes does not hold a {}x{} {} frame",
                        buffer.size(),
                        info.width(),
                        info.height(),
                        info.format()
                    )
                );
                gst::FlowError::Error
            })?;
        // The planes must lie inside the buffer before any of them is read: a VideoMeta
        // may claim strides and offsets that the buffer's memory does not hold.
        let offsets: Vec<usize> = match buffer.meta::<gst_video::VideoMeta>() {
            Some(m) => m.offset().to_vec(),
            None => info.offset().to_vec(),
        };
        let needed = (0..frame.n_planes())
            .map(|p| {
                let src_stride = frame.plane_stride()[p as usize].max(0) as usize;
                let row = src_stride.min(info.stride()[p as usize].max(0) as usize);
                let rows = frame.plane_height(p) as usize;
                let offset = offsets.get(p as usize).copied().unwrap_or(0);
                offset + rows.saturating_sub(1) * src_stride + row
            })
            .max()
            .unwrap_or(0);
        if buffer.size() < needed {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                (
                    "Buffer of {} bytes is shorter than its {}x{} {} frame: the planes need {} bytes",
                    buffer.size(),
                    info.width(),
                    info.height(),
                    info.format(),
                    needed
                )
            );
            return Err(gst::FlowError::Error);
        }
        let write_error = |e| {
            gst::element_imp_error!(self, gst::ResourceError::Write, ("{}", e));
            gst::FlowError::Error
        };
        let mut slot = match writer.begin() {
            Ok(slot) => slot,
            Err(e @ shmring_common::Error::SlotsHeld { .. }) => {
                gst::warning!(CAT, imp = self, "{e}");
                return Ok(None);
            }
            Err(e) => return Err(write_error(e)),
        };
        let copied = (0..frame.n_planes()).try_for_each(|p| {
            let src = frame.plane_data(p).map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "Plane {} of a {}x{} {} buffer cannot be read",
                        p,
                        info.width(),
                        info.height(),
                        info.format()
                    )
                );
                gst::FlowError::Error
            })?;
            let src_stride = frame.plane_stride()[p as usize] as usize;
            let dst_stride = info.stride()[p as usize] as usize;
            let dst_off = info.offset()[p as usize];
            let rows = frame.plane_height(p) as usize;
            let row = src_stride.min(dst_stride);
            if src_stride == dst_stride && src.len() >= rows * dst_stride {
                slot.copy_into(dst_off, &src[..rows * dst_stride])
                    .map_err(write_error)
            } else {
                (0..rows)
                    .map(|r| (r * src_stride, dst_off + r * dst_stride))
                    .try_for_each(|(s, d)| slot.copy_into(d, &src[s..s + row]))
                    .map_err(write_error)
            }
        });
        if let Err(e) = copied {
            slot.abort();
            return Err(e);
        }
        slot.commit(meta, info.size() as u64)
            .map(Some)
            .map_err(write_error)
    }

    pub(crate) fn post_handle(&self, handle: &str, seq: u64, pts: Option<gst::ClockTime>) {
        let s = gst::Structure::builder("shmringsink-handle")
            .field("handle", handle)
            .field("seq", seq)
            .field("pts", pts.map(|p| p.nseconds()).unwrap_or(u64::MAX))
            .build();
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }
}

/// The capture time of `buffer` (ns since the Unix epoch): its `timestamp/x-unix`
/// reference timestamp meta, as rtspsrc and shmringsrc add it. None: the time of commit.
pub(crate) fn captured_at(buffer: &gst::BufferRef) -> Option<u64> {
    buffer
        .meta::<gst::ReferenceTimestampMeta>()
        .into_iter()
        .chain(buffer.iter_meta::<gst::ReferenceTimestampMeta>())
        .find(|m| {
            m.reference()
                .structure(0)
                .is_some_and(|s| s.name() == "timestamp/x-unix")
        })
        .map(|m| m.timestamp().nseconds())
}

/// What the ring records of `buffer`, a frame of `info`, besides its bytes.
fn frame_meta(buffer: &gst::BufferRef, info: &VideoInfo, caps_version: u32) -> FrameMeta {
    let captured_at_ns = captured_at(buffer);
    let mut video = VideoLayout {
        format: info.format().into_glib() as u32,
        width: info.width(),
        height: info.height(),
        n_planes: info.n_planes(),
        ..Default::default()
    };
    for p in 0..info.n_planes() as usize {
        video.offsets[p] = info.offset()[p] as u64;
        video.strides[p] = info.stride()[p];
    }
    FrameMeta {
        pts: buffer.pts().map(|t| t.nseconds()),
        dts: buffer.dts().map(|t| t.nseconds()),
        duration: buffer.duration().map(|t| t.nseconds()),
        captured_at_ns,
        flags: buffer.flags().bits(),
        caps_version,
        video,
    }
}
