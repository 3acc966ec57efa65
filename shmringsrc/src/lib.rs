//! `shmringsrc`: a live source that reads raw video from a shmring ring written by a
//! `shmringsink` in another process: the newest frame (`latest`), every frame
//! (`sequential`), or exactly the frames an application names by handle (`handle`).

mod buffers;
mod caps;
mod handles;
mod imp;
mod stats;
mod streaming;
mod timestamps;
mod units;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct ShmRingSrc(ObjectSubclass<imp::ShmRingSrc>) @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

/// Which frames the source outputs.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstShmRingSrcMode")]
pub enum Mode {
    /// The newest frame not output yet; a slow pipeline skips to the newest.
    #[default]
    #[enum_value(
        name = "Latest: the newest frame, skipping what a slow pipeline missed",
        nick = "latest"
    )]
    Latest = 0,
    /// Every frame in order; when the writer laps the reader, jump ahead with DISCONT.
    #[enum_value(
        name = "Sequential: every frame in order, DISCONT after a loss",
        nick = "sequential"
    )]
    Sequential = 1,
    /// Exactly the frames requested with the request-frame action signal.
    #[enum_value(name = "Handle: the frames named by request-frame", nick = "handle")]
    Handle = 2,
}

/// What a buffer's PTS says.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstShmRingSrcTimestamps")]
pub enum Timestamps {
    /// When the buffer leaves the source (running time at output).
    #[default]
    #[enum_value(
        name = "Arrival: the running time when the buffer leaves the source",
        nick = "arrival"
    )]
    Arrival = 0,
    /// When the frame was captured (its timestamp/x-unix time on the pipeline clock),
    /// so that aggregators line several rings up by capture.
    #[enum_value(
        name = "Capture: the frame's capture time on the pipeline clock",
        nick = "capture"
    )]
    Capture = 1,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Mode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Timestamps::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "shmringsrc",
        gst::Rank::NONE,
        ShmRingSrc::static_type(),
    )
}
