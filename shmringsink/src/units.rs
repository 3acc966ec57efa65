//! Encoded video: H.264 and H.265 access units written into a ring of units
//! (`shmring_common::units`), sized by `history` at the `bitrate` hint, with their caps
//! (codec_data included) published like raw video's.

use gst::subclass::prelude::*;
use shmring_common::{FrameMeta, UnitSizing, UnitWriter};

use crate::imp::{ShmRingSink, State, CAT};

/// With `history=0`, a ring of units keeps this much video.
pub(crate) const DEFAULT_UNIT_HISTORY_NS: u64 = 30_000_000_000;
/// The bit rate a ring of units is sized for unless told (`bitrate`): a 1080p camera's.
pub(crate) const DEFAULT_BITRATE: u64 = 8_000_000;

/// The encoded caps the sink takes: whole access units, in any stream format. avc and
/// hvc1 first, so that a parser free to choose puts SPS and PPS in the caps
/// (codec_data), where a reader starting at any keyframe finds them; byte-stream
/// carries them in the units, where h264parse config-interval=-1 repeats them.
pub(crate) fn encoded_caps() -> gst::Caps {
    let mut caps = gst::Caps::builder("video/x-h264")
        .field(
            "stream-format",
            gst::List::new(["avc", "byte-stream", "avc3"]),
        )
        .field("alignment", "au")
        .build();
    caps.merge(
        gst::Caps::builder("video/x-h265")
            .field(
                "stream-format",
                gst::List::new(["hvc1", "byte-stream", "hev1"]),
            )
            .field("alignment", "au")
            .build(),
    );
    caps
}

/// Whether `caps` are encoded video, written as units.
pub(crate) fn is_encoded(caps: &gst::CapsRef) -> bool {
    caps.structure(0)
        .is_some_and(|s| shmring_common::codec_of(s.name()).is_some())
}

/// How big a ring of units for `caps` is: `history` (or 30 s) at `bitrate`, at the
/// caps' frame rate (or, without one, `UnitSizing::rate_unknown`).
pub(crate) fn unit_sizing(caps: &gst::CapsRef, history: u64, bitrate: u64) -> UnitSizing {
    let history_ns = if history == 0 {
        DEFAULT_UNIT_HISTORY_NS
    } else {
        history
    };
    let fps = caps
        .structure(0)
        .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map_or_else(
            || UnitSizing::rate_unknown(history_ns),
            |f| f.numer() as f64 / f.denom() as f64,
        );
    UnitSizing {
        history_ns,
        bitrate,
        fps,
    }
}

impl ShmRingSink {
    /// Makes the ring of units for encoded `caps`, or publishes new caps in it (a new
    /// SPS/PPS, say, or codec_data). A ring of frames written so far is replaced by it
    /// under the same name; if that fails, the ring of frames stays as it was.
    pub(crate) fn set_caps_units(
        &self,
        state: &mut State,
        caps: &gst::Caps,
        sizing: &UnitSizing,
        perms: u32,
    ) -> Result<(), gst::LoggableError> {
        let text = caps.to_string();
        if let Some(w) = state.units.as_mut() {
            state.caps_version = w.ring_mut().set_caps(&text).map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{}", e));
                gst::loggable_error!(CAT, "{e}")
            })?;
            self.note_caps_change();
            return Ok(());
        }
        let made = match state.writer.take() {
            Some(frames) => {
                UnitWriter::replacing(frames, sizing, perms, Some(text)).map_err(|failed| {
                    let (e, frames) = *failed;
                    state.writer = Some(frames);
                    e
                })
            }
            None => UnitWriter::create(&state.loc, sizing, perms, Some(text)),
        };
        let w = made.map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::ResourceError::OpenWrite,
                ("Cannot create ring {} for {}: {}", state.loc, caps, e)
            );
            gst::loggable_error!(CAT, "{e}")
        })?;
        state.info = None;
        let g = w.ring().geometry();
        gst::info!(
            CAT,
            imp = self,
            "ring {} epoch {:016x}: {} units in an arena of {} bytes ({} s at {} bit/s) for {caps}",
            state.loc,
            w.ring().epoch(),
            g.slot_count,
            g.slot_stride,
            sizing.history_ns / 1_000_000_000,
            sizing.bitrate
        );
        state.caps_version = w.ring().caps_version();
        self.note_ring(w.ring());
        state.units = Some(w);
        Ok(())
    }

    /// Writes `buffer`, one access unit, into the ring of units: its sequence, false
    /// (never in place), its size and the ring's epoch; None when it was dropped (larger than
    /// the whole arena, or after such a unit until the next keyframe: counted in
    /// `frames-dropped`).
    #[allow(clippy::type_complexity)]
    pub(crate) fn write_unit(
        &self,
        state: &mut State,
        buffer: &gst::Buffer,
    ) -> Result<Option<(u64, bool, usize, u64)>, gst::FlowError> {
        let Some(w) = state.units.as_mut() else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Buffer before caps"));
            return Err(gst::FlowError::NotNegotiated);
        };
        let map = buffer.map_readable().map_err(|_| {
            gst::element_imp_error!(self, gst::ResourceError::Read, ("Cannot map a unit"));
            gst::FlowError::Error
        })?;
        let meta = FrameMeta {
            pts: buffer.pts().map(|t| t.nseconds()),
            dts: buffer.dts().map(|t| t.nseconds()),
            duration: buffer.duration().map(|t| t.nseconds()),
            captured_at_ns: crate::frames::captured_at(buffer),
            flags: buffer.flags().bits(),
            caps_version: state.caps_version,
            ..Default::default()
        };
        match w.write(&meta, &map) {
            Ok(Some(seq)) => Ok(Some((seq, false, map.size(), w.ring().epoch()))),
            Ok(None) => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "a unit whose GOP lost a unit: dropped until the next keyframe"
                );
                Ok(None)
            }
            Err(shmring_common::Error::FrameTooLarge { len, capacity }) => {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Encode,
                    (
                        "An access unit of {} bytes is larger than the ring's whole arena of {} bytes: dropped. Raise bitrate or history.",
                        len,
                        capacity
                    )
                );
                Ok(None)
            }
            Err(e) => {
                gst::element_imp_error!(self, gst::ResourceError::Write, ("{}", e));
                Err(gst::FlowError::Error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delta_flag_of_the_ring_is_gstreamers() {
        assert_eq!(
            shmring_common::DELTA_UNIT_FLAG,
            gst::BufferFlags::DELTA_UNIT.bits()
        );
    }

    #[test]
    fn sizing_takes_the_caps_frame_rate_and_the_defaults() {
        gst::init().unwrap();
        let caps = gst::Caps::builder("video/x-h264")
            .field("framerate", gst::Fraction::new(25, 1))
            .build();
        let s = unit_sizing(&caps, 0, DEFAULT_BITRATE);
        assert_eq!(
            (s.history_ns, s.bitrate, s.fps),
            (DEFAULT_UNIT_HISTORY_NS, DEFAULT_BITRATE, 25.0)
        );
        // No frame rate (or a variable one): sized for a fast stream, as far as the
        // units of a ring go, never below the common 30 fps.
        let bare = gst::Caps::builder("video/x-h265").build();
        let s = unit_sizing(&bare, 60_000_000_000, 2_000_000);
        assert_eq!((s.history_ns, s.fps), (60_000_000_000, 120.0));
        let variable = gst::Caps::builder("video/x-h264")
            .field("framerate", gst::Fraction::new(0, 1))
            .build();
        let s = unit_sizing(&variable, 0, DEFAULT_BITRATE);
        assert_eq!(s.fps, 120.0);
        s.geometry().expect("30 s at 120 fps fits a ring");
        let s = unit_sizing(&bare, 600_000_000_000, 2_000_000);
        assert!(s.fps < 120.0 && s.fps > 30.0, "{}", s.fps);
        s.geometry().expect("as many units as a ring holds");
        let s = unit_sizing(&bare, 3_600_000_000_000, 2_000_000);
        assert_eq!(s.fps, 30.0);
        assert!(is_encoded(&bare) && is_encoded(&caps));
        assert!(!is_encoded(&gst::Caps::builder("video/x-raw").build()));
    }
}
