//! Caps from the ring: the pad's caps follow the caps version of each frame, raw video
//! or H.264/H.265, checked against what the ring holds.

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use shmring_common::FrameInfo;

use crate::buffers::Allocator;
use crate::imp::{Negotiated, ShmRingSrc, Stream, CAT};

impl ShmRingSrc {
    /// Makes the frame's caps the pad's caps when they changed. Ok(false) when the
    /// frame outlived its caps (two caps changes came after it, overwriting them): it
    /// cannot be described, and is skipped like a lost frame.
    pub(crate) fn follow_caps(
        &self,
        stream: &mut Stream,
        info: &FrameInfo,
    ) -> Result<bool, gst::FlowError> {
        if info.caps_version == stream.caps_version && stream.caps.is_some() {
            return Ok(true);
        }
        let reader = stream.follower.reader().expect("attached");
        let text = match reader.caps(info.caps_version) {
            Ok(Some(t)) => t,
            Ok(None)
                if info.caps_version != 0
                    && reader
                        .current_caps()
                        .ok()
                        .flatten()
                        .is_some_and(|(v, _)| v != info.caps_version) =>
            {
                gst::debug!(
                    CAT,
                    imp = self,
                    "frame {} of caps version {} outlived its caps: skipped",
                    info.seq,
                    info.caps_version
                );
                return Ok(false);
            }
            Ok(None) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "Ring {} has no caps for frame {} (caps version {})",
                        stream.loc(),
                        info.seq,
                        info.caps_version
                    )
                );
                return Err(gst::FlowError::Error);
            }
            Err(e) => {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{}", e));
                return Err(gst::FlowError::Error);
            }
        };
        if self.apply_caps(stream, info.caps_version, &text)? {
            // New caps in mid-stream: query allocation again, now that downstream
            // knows what it will get.
            self.obj().src_pad().mark_reconfigure();
        }
        Ok(true)
    }

    /// Makes caps version `version` of the ring, whose text is `text`, the pad's caps.
    /// True when the pad's caps changed.
    pub(crate) fn apply_caps(
        &self,
        stream: &mut Stream,
        version: u32,
        text: &str,
    ) -> Result<bool, gst::FlowError> {
        let caps = text.parse::<gst::Caps>().ok().filter(|c| c.is_fixed());
        let encoded = caps.as_ref().is_some_and(|c| crate::units::is_encoded(c));
        let units = stream.follower.reader().is_some_and(|r| r.holds_units());
        if caps.is_some() && encoded != units {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                (
                    "Ring {} holds {} but carries caps of {}: {}",
                    stream.loc(),
                    if units {
                        "encoded units"
                    } else {
                        "decoded frames"
                    },
                    if encoded {
                        "encoded video"
                    } else {
                        "raw video"
                    },
                    text
                )
            );
            return Err(gst::FlowError::NotNegotiated);
        }
        // Encoded caps first: VideoInfo takes any video/* as a format of size 0.
        let caps = caps.and_then(|c| match encoded {
            true => Some((c, None)),
            false => gst_video::VideoInfo::from_caps(&c)
                .ok()
                .map(|i| (c, Some(i))),
        });
        let Some((caps, vinfo)) = caps else {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                (
                    "Ring {} carries caps that are neither fixed raw video nor H.264/H.265: {}",
                    stream.loc(),
                    text
                )
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let frame_duration = match &vinfo {
            Some(vinfo) => {
                let fps = vinfo.fps();
                (fps.numer() > 0)
                    .then(|| {
                        gst::ClockTime::SECOND.mul_div_floor(fps.denom() as u64, fps.numer() as u64)
                    })
                    .flatten()
            }
            None => crate::units::unit_duration(&caps),
        };
        let slots = stream
            .follower
            .reader()
            .map(|r| r.geometry().slot_count)
            .unwrap_or(1);
        // What caps queries answer changes before the caps go downstream, so that a
        // query made on receiving them already answers them.
        let latency_changed = {
            let mut n = self.negotiated.lock().unwrap();
            let changed = (n.frame_duration, n.slots) != (frame_duration, slots);
            *n = Negotiated {
                caps: Some(caps.clone()),
                frame_duration,
                slots,
            };
            changed
        };
        if latency_changed {
            // The latency this source reports depends on both: let the pipeline ask again.
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
        let changed = stream.caps.as_ref() != Some(&caps);
        if changed {
            gst::info!(CAT, imp = self, "caps from the ring: {caps}");
            self.obj().set_caps(&caps).map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("Downstream refused the ring's caps {}", caps)
                );
                gst::FlowError::NotNegotiated
            })?;
        }
        stream.allocator.stop();
        // Units vary in size: they get buffers of their own size, from no pool.
        stream.allocator = vinfo
            .as_ref()
            .map_or_else(Allocator::default, |i| Allocator::for_caps(&caps, i.size()));
        stream.caps = Some(caps);
        stream.info = vinfo;
        stream.caps_version = version;
        Ok(changed)
    }
}
