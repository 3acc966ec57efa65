//! `shmringsink`: writes raw video frames (or H.264/H.265 access units) into a shmring ring in shared memory, where any
//! number of `shmringsrc` elements in other processes read them. It never waits for a
//! reader.

mod frames;
mod imp;
mod pool;
mod sizing;
mod units;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct ShmRingSink(ObjectSubclass<imp::ShmRingSink>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "shmringsink",
        gst::Rank::NONE,
        ShmRingSink::static_type(),
    )
}
