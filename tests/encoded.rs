//! Encoded video through a ring, across processes: a camera's H.264 written by
//! `gst-launch-1.0 ... x264enc ! shmringsink` and read here, decoded from its first
//! buffer, by a reader left behind, and recorded from the past without re-encoding.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use shmring_common::testing::TestDir;

#[path = "support/processes.rs"]
mod processes;
use processes::*;

/// 30 fps H.264 with a keyframe every 15 frames (half a second), into ring `ring`.
fn camera(dir: &TestDir, ring: &str, extra: &str) -> Launch {
    Launch::start(
        dir,
        &format!(
            "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=500 \
             ! shmringsink ring={ring} {extra}"
        ),
    )
}

/// Waits until the ring `ring` exists and has committed `n` units.
fn wait_for_units(dir: &TestDir, ring: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = shmring_common::RingReader::open(&dir.ring(ring)) {
            assert!(r.holds_units(), "an encoded ring");
            if r.head() >= n {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no {n} units in ring {ring}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every warning or error a pipeline's bus has had.
fn complaints(pipeline: &gst::Element) -> Vec<String> {
    let bus = pipeline.bus().unwrap();
    std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Warning, gst::MessageType::Error]))
        .map(|m| format!("{m:?}"))
        .collect()
}

fn stat(src: &gst::Element, field: &str) -> u64 {
    src.property::<gst::Structure>("stats")
        .get::<u64>(field)
        .unwrap()
}

#[test]
fn a_latest_reader_decodes_from_its_first_buffer_without_an_error() {
    init();
    let dir = TestDir::new("enc-latest");
    let _cam = camera(&dir, "cam", "");
    wait_for_units(&dir, "cam", 20); // joins mid-stream, between keyframes
    let pipeline = gst::parse::launch(&format!(
        "shmringsrc name=src ring=cam dir={} ! h264parse ! avdec_h264 ! fakesink name=out signal-handoffs=true sync=false",
        dir.path.display()
    ))
    .unwrap();
    let bin = pipeline.downcast_ref::<gst::Bin>().unwrap();
    let src = bin.by_name("src").unwrap();
    let first_flags = Arc::new(Mutex::new(None));
    let f = first_flags.clone();
    src.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                f.lock().unwrap().get_or_insert(b.flags());
            }
            gst::PadProbeReturn::Ok
        });
    let decoded = Arc::new(AtomicU64::new(0));
    let d = decoded.clone();
    bin.by_name("out")
        .unwrap()
        .connect("handoff", false, move |_| {
            d.fetch_add(1, Ordering::SeqCst);
            None
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while decoded.load(Ordering::SeqCst) < 45 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let problems = complaints(&pipeline);
    let caps = src.static_pad("src").unwrap().current_caps();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
    let flags = first_flags
        .lock()
        .unwrap()
        .expect("a buffer left the source");
    assert!(
        !flags.contains(gst::BufferFlags::DELTA_UNIT),
        "first: {flags:?}"
    );
    assert!(
        decoded.load(Ordering::SeqCst) >= 45,
        "{decoded:?} frames decoded"
    );
    let caps = caps.unwrap();
    let s = caps.structure(0).unwrap();
    assert_eq!(s.name(), "video/x-h264");
    assert!(s.has_field("codec_data"), "the caps travel whole: {caps}");
}

#[test]
fn a_reader_left_behind_jumps_to_a_keyframe_and_counts_it() {
    init();
    let dir = TestDir::new("enc-behind");
    // One second of units: 40 descriptors.
    let _cam = camera(&dir, "cam", "history=1000000000");
    wait_for_units(&dir, "cam", 5);
    let pipeline = gst::parse::launch(&format!(
        "shmringsrc name=src ring=cam dir={} ! appsink name=out max-buffers=1 sync=false",
        dir.path.display()
    ))
    .unwrap();
    let bin = pipeline.downcast_ref::<gst::Bin>().unwrap();
    let src = bin.by_name("src").unwrap();
    let sink = bin.by_name("out").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let pull = || {
        sink.emit_by_name::<Option<gst::Sample>>(
            "try-pull-sample",
            &[&gst::ClockTime::from_seconds(10)],
        )
        .expect("a unit")
        .buffer_owned()
        .unwrap()
    };
    let first = pull();
    assert!(!first.flags().contains(gst::BufferFlags::DELTA_UNIT));
    // Three seconds away: the writer laps the one-second ring three times.
    std::thread::sleep(Duration::from_secs(3));
    let jumped = (0..4)
        .map(|_| pull())
        .find(|b| b.flags().contains(gst::BufferFlags::DISCONT));
    let jumps = stat(&src, "keyframe-jumps");
    let problems = complaints(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
    let jumped = jumped.expect("a DISCONT after falling behind");
    assert!(
        !jumped.flags().contains(gst::BufferFlags::DELTA_UNIT),
        "the jump lands on a keyframe: {:?}",
        jumped.flags()
    );
    assert!(
        jumped.offset() > first.offset() + 40,
        "{} after {}",
        jumped.offset(),
        first.offset()
    );
    assert_eq!(jumps, 1);
}

/// The duration of an MP4 file and the frames avdec_h264 decodes from it, failing on
/// any warning or error.
fn decode_mp4(path: &std::path::Path) -> (gst::ClockTime, u64) {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! fakesink name=out signal-handoffs=true",
        path.display()
    ))
    .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let bin = pipeline.downcast_ref::<gst::Bin>().unwrap();
    bin.by_name("out")
        .unwrap()
        .connect("handoff", false, move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            None
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let end = pipeline.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(20) * u64::from(shmring_common::testing::slowdown()),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let duration = pipeline.query_duration::<gst::ClockTime>();
    let problems = complaints(&pipeline);
    // To NULL before any assert: a pipeline dropped while playing is a GStreamer
    // critical, which would hide the failure.
    pipeline.set_state(gst::State::Null).unwrap();
    let end = end.expect("the recording plays to its end");
    assert_eq!(end.type_(), gst::MessageType::Eos, "{end:?}");
    assert!(problems.is_empty(), "{problems:#?}");
    (duration.expect("a duration"), count.load(Ordering::SeqCst))
}

#[test]
fn a_recorder_started_by_an_event_writes_the_seconds_before_it_without_encoding() {
    init();
    let dir = TestDir::new("enc-record");
    let _cam = camera(&dir, "cam-h264", "history=10000000000 bitrate=500000");
    wait_for_units(&dir, "cam-h264", 1);
    std::thread::sleep(Duration::from_secs(5)); // five seconds of history
    let out = dir.path.join("event.mp4");
    let mut cmd = Command::new(repo_file("examples/pipelines/record-on-event.sh"));
    cmd.args(["cam-h264", "3", out.to_str().unwrap()]);
    let started = Instant::now();
    let recorder = Launch::spawn(&dir, cmd);
    // A second after the event; under emulation the recorder needs longer to start.
    std::thread::sleep(Duration::from_secs(1) * shmring_common::testing::slowdown());
    interrupt(&recorder);
    let after = started.elapsed();
    recorder.finish(Duration::from_secs(30));
    let (duration, frames) = decode_mp4(&out);
    eprintln!("encoded record-on-event: {duration} and {frames} frames recorded");
    // Three seconds before the event (from the keyframe at or before: up to a GOP of
    // half a second more), and what came until the recorder was stopped.
    let gop = Duration::from_millis(500);
    let least = Duration::from_secs(3);
    let most = Duration::from_secs(3) + after + gop + Duration::from_millis(200);
    let got = Duration::from_nanos(duration.nseconds());
    assert!(
        got >= least && got <= most,
        "{got:?} recorded, expected {least:?} to {most:?}"
    );
    // Every frame of that time, or under emulation (where the writer's encoder may
    // not keep up with 30 fps) a third of them.
    let share = if shmring_common::testing::slowdown() > 1 {
        0.3
    } else {
        0.9
    };
    assert!(
        frames as f64 >= got.as_secs_f64() * 30.0 * share,
        "{frames} frames in {got:?}"
    );
}
