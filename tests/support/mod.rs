//! What the element test files share: GStreamer initialised once, with the plugin
//! registered statically and every GLib critical or warning fatal; harnesses of a sink
//! and a source on a ring, patterned frames, and readers that record their timestamps.
#![allow(dead_code)] // each test file uses some of these

use std::str::FromStr;
use std::sync::Once;

use gst::glib;
use gst::prelude::*;
use gst_check::Harness;
use shmring_common::testing::TestDir;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // A GLib critical or warning anywhere fails the test, whatever G_DEBUG says.
        glib::log_set_always_fatal(
            glib::LogLevels::LEVEL_CRITICAL | glib::LogLevels::LEVEL_WARNING,
        );
        gst::init().unwrap();
        gstshmring::plugin_register_static().expect("shmring plugin registers");
    });
}

pub fn sink(dir: &TestDir, ring: &str, extra: &str) -> Harness {
    Harness::new_parse(&format!(
        "shmringsink name=sink ring={ring} dir={} {extra}",
        dir.path.display()
    ))
}

pub fn src(dir: &TestDir, ring: &str, extra: &str) -> Harness {
    let mut h = Harness::new_parse(&format!(
        "shmringsrc name=src ring={ring} dir={} {extra}",
        dir.path.display()
    ));
    h.play();
    h
}

pub fn caps(format: &str, w: u32, h: u32) -> gst::Caps {
    gst::Caps::from_str(&format!(
        "video/x-raw,format={format},width={w},height={h},framerate=30/1"
    ))
    .unwrap()
}

/// A frame of `size` bytes whose bytes depend on `n`.
pub fn frame(size: usize, n: u64, pts_ms: u64) -> gst::Buffer {
    let data: Vec<u8> = (0..size)
        .map(|i| ((i as u64 * 31 + n * 7) % 251) as u8)
        .collect();
    let mut b = gst::Buffer::from_mut_slice(data);
    let bm = b.get_mut().unwrap();
    bm.set_pts(gst::ClockTime::from_mseconds(pts_ms));
    bm.set_duration(gst::ClockTime::from_mseconds(33));
    b
}

pub fn bytes(b: &gst::Buffer) -> Vec<u8> {
    b.map_readable().unwrap().as_slice().to_vec()
}

pub fn pull(h: &mut Harness) -> gst::Buffer {
    h.pull()
        .expect("a buffer from shmringsrc within the harness timeout")
}

pub fn reference_ts(b: &gst::BufferRef, name: &str) -> Option<u64> {
    b.iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|m| m.reference().structure(0).is_some_and(|s| s.name() == name))
        .map(|m| m.timestamp().nseconds())
}

pub fn stat<T: for<'a> glib::value::FromValue<'a> + 'static>(
    h: &mut Harness,
    element: &str,
    field: &str,
) -> T {
    let e = h.find_element(element).expect("element in harness");
    let s = e.property::<gst::Structure>("stats");
    s.get::<T>(field).unwrap()
}

/// Each buffer's PTS, duration and the running time it reached the sink at.
pub type Seen =
    std::sync::Arc<std::sync::Mutex<Vec<(gst::ClockTime, gst::ClockTime, gst::ClockTime)>>>;

/// `shmringsrc <extra> ! fakesink`, playing, and what reaches the sink.
pub fn timed_reader(dir: &TestDir, ring: &str, extra: &str) -> (gst::Element, Seen) {
    let pipeline = gst::parse::launch(&format!(
        "shmringsrc ring={ring} dir={} {extra} ! fakesink name=out sync=false signal-handoffs=true",
        dir.path.display()
    ))
    .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (s, p) = (seen.clone(), pipeline.clone());
    let out = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("out")
        .unwrap();
    out.connect("handoff", false, move |args| {
        let b = args[1].get::<gst::Buffer>().unwrap();
        let rt = p.current_running_time().unwrap();
        s.lock().unwrap().push((
            b.pts().expect("every buffer has a PTS"),
            b.duration().expect("and a duration"),
            rt,
        ));
        None
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    (pipeline, seen)
}

/// `frame(size, n, 0)` captured at `captured_ns` (wall clock, ns since the Unix epoch).
pub fn frame_captured(size: usize, n: u64, captured_ns: u64) -> gst::Buffer {
    let mut b = frame(size, n, n * 33);
    let unix = gst::Caps::new_empty_simple("timestamp/x-unix");
    gst::ReferenceTimestampMeta::add(
        b.get_mut().unwrap(),
        &unix,
        gst::ClockTime::from_nseconds(captured_ns),
        None,
    );
    b
}

pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
