//! `shmringsink`: writes raw video frames into a shmring ring in shared memory, where any
//! number of `shmringsrc` elements in other processes read them. It never waits for a
//! reader.

mod frames;
mod imp;
mod pool;
mod sizing;

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
