//! gst-check tests of shmringsink and shmringsrc: formats, strides, metadata, modes,
//! EOS, caps changes, flushing and errors. Writer and reader map the ring separately,
//! as two processes would.

mod support;

use std::str::FromStr;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_check::Harness;
use shmring_common::testing::TestDir;
use support::init;

fn sink(dir: &TestDir, ring: &str, extra: &str) -> Harness {
    Harness::new_parse(&format!(
        "shmringsink name=sink ring={ring} dir={} {extra}",
        dir.path.display()
    ))
}

fn src(dir: &TestDir, ring: &str, extra: &str) -> Harness {
    let mut h = Harness::new_parse(&format!(
        "shmringsrc name=src ring={ring} dir={} {extra}",
        dir.path.display()
    ));
    h.play();
    h
}

fn caps(format: &str, w: u32, h: u32) -> gst::Caps {
    gst::Caps::from_str(&format!(
        "video/x-raw,format={format},width={w},height={h},framerate=30/1"
    ))
    .unwrap()
}

/// A frame of `size` bytes whose bytes depend on `n`.
fn frame(size: usize, n: u64, pts_ms: u64) -> gst::Buffer {
    let data: Vec<u8> = (0..size)
        .map(|i| ((i as u64 * 31 + n * 7) % 251) as u8)
        .collect();
    let mut b = gst::Buffer::from_mut_slice(data);
    let bm = b.get_mut().unwrap();
    bm.set_pts(gst::ClockTime::from_mseconds(pts_ms));
    bm.set_duration(gst::ClockTime::from_mseconds(33));
    b
}

fn bytes(b: &gst::Buffer) -> Vec<u8> {
    b.map_readable().unwrap().as_slice().to_vec()
}

fn pull(h: &mut Harness) -> gst::Buffer {
    h.pull()
        .expect("a buffer from shmringsrc within the harness timeout")
}

fn reference_ts(b: &gst::BufferRef, name: &str) -> Option<u64> {
    b.iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|m| m.reference().structure(0).is_some_and(|s| s.name() == name))
        .map(|m| m.timestamp().nseconds())
}

fn stat<T: for<'a> glib::value::FromValue<'a> + 'static>(
    h: &mut Harness,
    element: &str,
    field: &str,
) -> T {
    let e = h.find_element(element).expect("element in harness");
    let s = e.property::<gst::Structure>("stats");
    s.get::<T>(field).unwrap()
}

use gst::glib;

#[test]
fn every_common_format_round_trips_byte_for_byte() {
    init();
    let dir = TestDir::new("formats");
    for (i, format) in ["I420", "NV12", "RGB", "BGR", "RGBA", "GRAY8", "GRAY16_LE"]
        .iter()
        .enumerate()
    {
        let ring = format!("fmt{i}");
        // Odd sizes make the default strides padded.
        let c = caps(format, 66, 38);
        let info = gst_video::VideoInfo::from_caps(&c).unwrap();
        let mut w = sink(&dir, &ring, "");
        w.set_src_caps(c.clone());
        let sent = frame(info.size(), i as u64, 0);
        assert_eq!(w.push(sent.clone()), Ok(gst::FlowSuccess::Ok));
        let mut r = src(&dir, &ring, "");
        let got = pull(&mut r);
        assert_eq!(bytes(&got), bytes(&sent), "{format}");
        let out_caps = r.sinkpad().unwrap().current_caps().unwrap();
        assert_eq!(out_caps, c, "{format}: caps come from the ring");
    }
}

#[test]
fn an_upstream_free_to_choose_negotiates_i420() {
    init();
    let dir = TestDir::new("default-format");
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 ! shmringsink name=sink ring=f dir={}",
        dir.path.display()
    ))
    .unwrap();
    let sink = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("sink")
        .unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    let (result, ..) = pipeline.state(gst::ClockTime::from_seconds(10));
    result.unwrap();
    let caps = sink.static_pad("sink").unwrap().current_caps().unwrap();
    let format = caps.structure(0).unwrap().get::<&str>("format").unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(format, "I420", "negotiated {caps}");
}

#[test]
fn padded_strides_are_copied_row_by_row() {
    init();
    let dir = TestDir::new("strides");
    let c = caps("GRAY8", 10, 4);
    let info = gst_video::VideoInfo::from_caps(&c).unwrap();
    assert_eq!(info.stride()[0], 12, "GRAY8 rows are padded to 4 bytes");
    // Upstream frame with 32-byte rows described by a VideoMeta.
    let mut padded = vec![0xEEu8; 32 * 4];
    for row in 0..4 {
        for x in 0..10 {
            padded[row * 32 + x] = (row * 10 + x) as u8;
        }
    }
    let mut buf = gst::Buffer::from_mut_slice(padded);
    gst_video::VideoMeta::add_full(
        buf.get_mut().unwrap(),
        gst_video::VideoFrameFlags::empty(),
        gst_video::VideoFormat::Gray8,
        10,
        4,
        &[0],
        &[32],
    )
    .unwrap();
    let mut w = sink(&dir, "pad", "");
    w.set_src_caps(c);
    w.push(buf).unwrap();
    let mut r = src(&dir, "pad", "");
    let got = bytes(&pull(&mut r));
    assert_eq!(got.len(), 48);
    for row in 0..4 {
        let expected: Vec<u8> = (0..10).map(|x| (row * 10 + x) as u8).collect();
        assert_eq!(&got[row * 12..row * 12 + 10], &expected[..], "row {row}");
    }
}

#[test]
fn large_rings_are_written_around_the_cache_byte_for_byte() {
    init();
    let dir = TestDir::new("large");
    let c = caps("I420", 1920, 1080);
    let info = gst_video::VideoInfo::from_caps(&c).unwrap();
    let mut w = sink(&dir, "large", "slots=64");
    w.set_src_caps(c.clone());
    // Contiguous planes, then rows of 2048 bytes described by a VideoMeta (row by row).
    let plain = frame(info.size(), 1, 0);
    assert_eq!(w.push(plain.clone()), Ok(gst::FlowSuccess::Ok));
    let bypass: bool = stat(&mut w, "shmringsink", "bypass-cache");
    assert_eq!(
        bypass,
        cfg!(target_arch = "x86_64"),
        "64 slots of 1080p (200 MB) are larger than half of any cache"
    );
    let mut r = src(&dir, "large", "mode=sequential");
    assert_eq!(bytes(&pull(&mut r)), bytes(&plain));

    let strides = [2048usize, 1024, 1024];
    let heights = [1080usize, 540, 540];
    let offsets = [0, 2048 * 1080, 2048 * 1080 + 1024 * 540];
    let padded_size = offsets[2] + 1024 * 540;
    let mut padded = gst::Buffer::from_mut_slice(bytes(&frame(padded_size, 2, 33)));
    gst_video::VideoMeta::add_full(
        padded.get_mut().unwrap(),
        gst_video::VideoFrameFlags::empty(),
        gst_video::VideoFormat::I420,
        1920,
        1080,
        &offsets,
        &strides.map(|s| s as i32),
    )
    .unwrap();
    let sent = bytes(&padded);
    assert_eq!(w.push(padded), Ok(gst::FlowSuccess::Ok));
    let got = bytes(&pull(&mut r));
    assert_eq!(got.len(), info.size());
    for p in 0..3 {
        let width = info.comp_width(p as u8) as usize;
        for row in 0..heights[p] {
            let (s, d) = (
                offsets[p] + row * strides[p],
                info.offset()[p] + row * info.stride()[p] as usize,
            );
            assert_eq!(
                &got[d..d + width],
                &sent[s..s + width],
                "plane {p} row {row}"
            );
        }
    }
}

#[test]
fn small_rings_are_written_through_the_cache() {
    init();
    let dir = TestDir::new("small");
    let c = caps("GRAY8", 64, 48);
    let info = gst_video::VideoInfo::from_caps(&c).unwrap();
    let mut w = sink(&dir, "small", "");
    w.set_src_caps(c);
    assert_eq!(w.push(frame(info.size(), 1, 0)), Ok(gst::FlowSuccess::Ok));
    let bypass: bool = stat(&mut w, "shmringsink", "bypass-cache");
    assert!(!bypass, "a ring of 3 KiB frames fits any cache");
}

#[test]
fn pts_capture_time_and_sequence_travel_with_the_frame() {
    init();
    let dir = TestDir::new("meta");
    let c = caps("GRAY8", 16, 16);
    let mut w = sink(&dir, "meta", "");
    w.set_src_caps(c);
    let mut b = frame(256, 1, 1234);
    let unix = gst::Caps::new_empty_simple("timestamp/x-unix");
    gst::ReferenceTimestampMeta::add(
        b.get_mut().unwrap(),
        &unix,
        gst::ClockTime::from_nseconds(1_700_000_000_123_456_789),
        None,
    );
    w.push(frame(256, 0, 1000)).unwrap();
    w.push(b).unwrap();
    let mut r = src(&dir, "meta", "");
    let got = pull(&mut r);
    assert_eq!(got.offset(), 2, "offset is the ring sequence");
    assert_eq!(got.offset_end(), 3);
    assert!(
        got.flags().contains(gst::BufferFlags::DISCONT),
        "first buffer after attaching"
    );
    assert_eq!(
        reference_ts(&got, "timestamp/x-unix"),
        Some(1_700_000_000_123_456_789)
    );
    assert_eq!(
        reference_ts(&got, "timestamp/x-shmring-pts"),
        Some(1_234_000_000)
    );
    assert_eq!(got.duration(), Some(gst::ClockTime::from_mseconds(33)));
    assert!(got.pts().is_some(), "live source buffers are timestamped");
    // A frame without a capture time gets the commit time: close to now.
    w.push(frame(256, 3, 2000)).unwrap();
    let got = pull(&mut r);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let captured = reference_ts(&got, "timestamp/x-unix").unwrap();
    assert!(
        now - captured < 10_000_000_000,
        "captured {captured} vs now {now}"
    );
}

/// Each buffer's PTS, duration and the running time it reached the sink at.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(gst::ClockTime, gst::ClockTime, gst::ClockTime)>>>;

/// `shmringsrc <extra> ! fakesink`, playing, and what reaches the sink.
fn timed_reader(dir: &TestDir, ring: &str, extra: &str) -> (gst::Element, Seen) {
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

#[test]
fn every_pts_is_the_running_time_of_its_output_even_without_do_timestamp() {
    init();
    let dir = TestDir::new("pts-window");
    let mut w = sink(&dir, "t", "");
    w.set_src_caps(caps("GRAY8", 16, 16));
    w.push(frame(256, 1, 0)).unwrap();
    let (pipeline, seen) = timed_reader(&dir, "t", "do-timestamp=false");
    let mut written = vec![];
    let arrived = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.lock().unwrap().len() < n {
            assert!(Instant::now() < deadline, "frame {n} never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    for n in 2..=20u64 {
        arrived(n as usize - 1);
        // Frames further apart than their 33 ms duration, as a camera's are.
        std::thread::sleep(Duration::from_millis(40));
        written.push(
            pipeline
                .current_running_time()
                .unwrap_or(gst::ClockTime::ZERO),
        );
        w.push(frame(256, n, n * 33)).unwrap();
    }
    arrived(20);
    pipeline.set_state(gst::State::Null).unwrap();
    let seen = seen.lock().unwrap();
    for (i, (pts, _, arrived)) in seen.iter().skip(1).enumerate() {
        assert!(
            written[i] <= *pts && pts <= arrived,
            "frame {}: pts {pts} outside [{}, {arrived}]",
            i + 2,
            written[i]
        );
    }
}

#[test]
fn stamps_stay_with_the_clock_when_frames_come_faster_than_their_duration() {
    init();
    let dir = TestDir::new("pts-drift");
    let mut w = sink(&dir, "d", "slots=64");
    w.set_src_caps(caps("GRAY8", 16, 16));
    w.push(frame(256, 1, 0)).unwrap();
    let (pipeline, seen) = timed_reader(&dir, "d", "mode=sequential");
    // 25 ms apart, each saying it lasts 33 ms: a camera faster than it claims.
    for n in 2..=60u64 {
        std::thread::sleep(Duration::from_millis(25));
        w.push(frame(256, n, n * 33)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 60 {
        assert!(Instant::now() < deadline, "frames missing");
        std::thread::sleep(Duration::from_millis(1));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let seen = seen.lock().unwrap();
    let lead = seen
        .iter()
        .map(|(pts, _, arrived)| pts.saturating_sub(*arrived))
        .max()
        .unwrap();
    assert!(
        lead < gst::ClockTime::from_mseconds(34),
        "stamps ran {lead} ahead of the clock"
    );
    for pair in seen.windows(2) {
        assert!(pair[0].0 + pair[0].1 <= pair[1].0, "overlapping buffers");
    }
}

#[test]
fn a_burst_from_a_sequential_backlog_never_overlaps() {
    init();
    let dir = TestDir::new("pts-burst");
    let mut w = sink(&dir, "b", "slots=64");
    w.set_src_caps(caps("GRAY8", 16, 16));
    w.push(frame(256, 1, 0)).unwrap();
    let (pipeline, seen) = timed_reader(&dir, "b", "mode=sequential");
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no first frame");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Forty frames at once: the reader outputs them as fast as it can.
    for n in 2..=41u64 {
        w.push(frame(256, n, n * 33)).unwrap();
    }
    while seen.lock().unwrap().len() < 41 {
        assert!(Instant::now() < deadline, "the burst did not arrive");
        std::thread::sleep(Duration::from_millis(1));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let seen = seen.lock().unwrap();
    for pair in seen.windows(2) {
        let ((pts, duration, _), (next, ..)) = (pair[0], pair[1]);
        assert!(
            pts + duration <= next,
            "[{pts}, +{duration}) overlaps the next buffer at {next}"
        );
    }
}

#[test]
fn latest_mode_skips_to_the_newest_frame_and_counts_skips() {
    init();
    let dir = TestDir::new("latest");
    let mut w = sink(&dir, "l", "");
    w.set_src_caps(caps("GRAY8", 8, 8));
    for n in 1..=10 {
        w.push(frame(64, n, n * 33)).unwrap();
    }
    let mut r = src(&dir, "l", "");
    let first = pull(&mut r);
    assert_eq!(first.offset(), 10);
    assert_eq!(bytes(&first), bytes(&frame(64, 10, 0)));
    for n in 11..=13 {
        w.push(frame(64, n, n * 33)).unwrap();
    }
    // The source may have taken 11 already; either way the newest comes and skips count.
    let mut last = pull(&mut r);
    while last.offset() < 13 {
        last = pull(&mut r);
    }
    assert_eq!(bytes(&last), bytes(&frame(64, 13, 0)));
    let received: u64 = stat(&mut r, "shmringsrc", "received");
    let skipped: u64 = stat(&mut r, "shmringsrc", "skipped");
    assert_eq!(
        received + skipped,
        13 - 10 + 1,
        "every frame since attaching is received or skipped"
    );
}

#[test]
fn sequential_mode_delivers_every_frame_in_order() {
    init();
    let dir = TestDir::new("seq");
    let mut w = sink(&dir, "s", "slots=64");
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    let mut r = src(&dir, "s", "mode=sequential");
    assert_eq!(pull(&mut r).offset(), 1);
    for n in 2..=40 {
        w.push(frame(64, n, n * 33)).unwrap();
    }
    for n in 2..=40 {
        let b = pull(&mut r);
        assert_eq!(b.offset(), n);
        assert_eq!(bytes(&b), bytes(&frame(64, n, 0)));
        assert!(!b.flags().contains(gst::BufferFlags::DISCONT));
    }
    assert_eq!(stat::<u64>(&mut r, "shmringsrc", "lost"), 0);
}

#[test]
fn handle_mode_outputs_exactly_the_named_frames() {
    init();
    let dir = TestDir::new("handle");
    let mut w = sink(&dir, "h", "slots=8 post-handles=true");
    w.set_src_caps(caps("GRAY8", 8, 8));
    let mut handles = vec![];
    for n in 1..=5 {
        w.push(frame(64, n, 0)).unwrap();
        let e = w.find_element("shmringsink").unwrap();
        handles.push(e.property::<Option<String>>("last-handle").unwrap());
    }
    // The element message carries the same handle.
    let bus = gst::Bus::new();
    w.find_element("shmringsink").unwrap().set_bus(Some(&bus));
    w.push(frame(64, 6, 0)).unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Element],
        )
        .unwrap();
    let s = msg.structure().unwrap();
    assert_eq!(s.name(), "shmringsink-handle");
    assert_eq!(s.get::<u64>("seq").unwrap(), 6);
    assert!(s.get::<String>("handle").unwrap().ends_with(":6"));

    let mut r = src(&dir, "h", "mode=handle timeout=50000000");
    let element = r.find_element("shmringsrc").unwrap();
    let rbus = gst::Bus::new();
    element.set_bus(Some(&rbus));
    assert!(element.emit_by_name::<bool>("request-frame", &[&handles[2]]));
    let b = pull(&mut r);
    assert_eq!(b.offset(), 3);
    assert_eq!(bytes(&b), bytes(&frame(64, 3, 0)));
    assert!(element.emit_by_name::<bool>("request-frame", &[&handles[0]]));
    assert!(!element.emit_by_name::<bool>("request-frame", &[&"not a handle"]));
    let statuses: Vec<String> = std::iter::from_fn(|| {
        rbus.timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Element],
        )
    })
    .filter_map(|m| {
        m.structure()
            .filter(|s| s.name() == "shmringsrc-handle")
            .and_then(|s| s.get::<String>("status").ok())
    })
    .take(3)
    .collect();
    assert!(statuses.contains(&"delivered".to_string()), "{statuses:?}");
    assert!(statuses.contains(&"invalid".to_string()), "{statuses:?}");
    // Frame 1 is still in an 8-slot ring: it is delivered too.
    assert_eq!(pull(&mut r).offset(), 1);
    // A handle of a frame long overwritten is "gone".
    for n in 7..=20 {
        w.push(frame(64, n, 0)).unwrap();
    }
    assert!(element.emit_by_name::<bool>("request-frame", &[&handles[1]]));
    let gone = std::iter::from_fn(|| {
        rbus.timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Element],
        )
    })
    .filter_map(|m| m.structure().map(|s| s.to_owned()))
    .find(|s| {
        s.name() == "shmringsrc-handle"
            && s.get::<String>("status").ok().as_deref() != Some("delivered")
    })
    .unwrap();
    assert_eq!(gone.get::<String>("status").unwrap(), "gone");
    assert_eq!(stat::<u64>(&mut r, "shmringsrc", "handles-gone"), 1);
    assert_eq!(stat::<u64>(&mut r, "shmringsrc", "handles-invalid"), 1);
}

#[test]
fn handle_mode_follows_a_replaced_ring_and_ends_at_the_writers_eos() {
    init();
    let dir = TestDir::new("handle-replace");
    let mut w = sink(&dir, "hr", "slots=4");
    let last_handle = |w: &mut Harness| -> String {
        let e = w.find_element("shmringsink").unwrap();
        e.property::<Option<String>>("last-handle").unwrap()
    };
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    let mut r = src(&dir, "hr", "mode=handle timeout=50000000");
    let element = r.find_element("shmringsrc").unwrap();
    assert!(element.emit_by_name::<bool>("request-frame", &[&last_handle(&mut w)]));
    assert_eq!(bytes(&pull(&mut r)), bytes(&frame(64, 1, 0)));
    // Larger frames: the ring is replaced by one of a new epoch.
    w.set_src_caps(caps("GRAY8", 64, 64));
    w.push(frame(64 * 64, 2, 33)).unwrap();
    let handle = last_handle(&mut w);
    assert!(element.emit_by_name::<bool>("request-frame", &[&handle]));
    let b = pull(&mut r);
    assert_eq!(
        bytes(&b),
        bytes(&frame(64 * 64, 2, 0)),
        "the new ring's frame"
    );
    assert_eq!(
        r.sinkpad().unwrap().current_caps().unwrap(),
        caps("GRAY8", 64, 64)
    );
    assert_eq!(stat::<u64>(&mut r, "shmringsrc", "handles-delivered"), 2);
    // The writer's EOS ends the stream of a handle reader too.
    assert!(w.push_event(gst::event::Eos::new()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no EOS from the handle reader");
        if let Some(ev) = r.try_pull_event() {
            if ev.type_() == gst::EventType::Eos {
                break;
            }
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Plays `shmringsrc ! <sink>` against a writer in this process until the sink has a
/// frame; a critical on the way (criticals are fatal here) fails the test.
fn frames_reach(sink_element: &str) {
    init();
    let dir = TestDir::new("video-sink");
    let mut w = sink(&dir, "v", "");
    w.set_src_caps(caps("I420", 64, 48));
    let size = gst_video::VideoInfo::from_caps(&caps("I420", 64, 48))
        .unwrap()
        .size();
    w.push(frame(size, 1, 0)).unwrap();
    let pipeline = gst::parse::launch(&format!(
        "shmringsrc ring=v dir={} ! {sink_element} name=out",
        dir.path.display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let out = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("out")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 2;
    while out.property::<Option<gst::Sample>>("last-sample").is_none() {
        assert!(Instant::now() < deadline, "no frame reached {sink_element}");
        w.push(frame(size, n, n * 33)).unwrap();
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_video_sink_gets_frames_without_a_critical() {
    // fakevideosink parses the allocation query's caps: a query without caps (the
    // source negotiating before it knew the ring's caps) was a critical on every start.
    frames_reach("fakevideosink");
}

#[test]
fn eos_of_the_writer_reaches_the_reader_after_its_frames() {
    init();
    let dir = TestDir::new("eos");
    let mut w = sink(&dir, "e", "slots=16");
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    let mut r = src(&dir, "e", "mode=sequential");
    assert_eq!(pull(&mut r).offset(), 1);
    w.push(frame(64, 2, 0)).unwrap();
    assert!(w.push_event(gst::event::Eos::new()));
    assert_eq!(pull(&mut r).offset(), 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ev = r.pull_event().expect("events until EOS");
        if ev.type_() == gst::EventType::Eos {
            break;
        }
        assert!(Instant::now() < deadline, "no EOS");
    }
}

#[test]
fn a_caps_change_reaches_the_reader_as_new_caps() {
    init();
    let dir = TestDir::new("recaps");
    let mut w = sink(&dir, "c", "");
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    let mut r = src(&dir, "c", "mode=sequential");
    assert_eq!(bytes(&pull(&mut r)).len(), 64);
    // Smaller: fits the ring, a new caps version.
    w.set_src_caps(caps("GRAY8", 4, 4));
    w.push(frame(16, 2, 0)).unwrap();
    let b = pull(&mut r);
    assert_eq!(bytes(&b), bytes(&frame(16, 2, 0)));
    assert_eq!(
        r.sinkpad().unwrap().current_caps().unwrap(),
        caps("GRAY8", 4, 4)
    );
    // Larger: a new ring replaces the old one; the reader follows it.
    w.set_src_caps(caps("RGBA", 64, 64));
    w.push(frame(64 * 64 * 4, 3, 0)).unwrap();
    let b = pull(&mut r);
    assert_eq!(bytes(&b), bytes(&frame(64 * 64 * 4, 3, 0)));
    assert_eq!(
        r.sinkpad().unwrap().current_caps().unwrap(),
        caps("RGBA", 64, 64)
    );
    assert_eq!(stat::<u64>(&mut r, "shmringsrc", "reattaches"), 1);
    let rings: u64 = stat(&mut w, "shmringsink", "rings-created");
    assert_eq!(rings, 2);
}

#[test]
fn a_lagging_reader_skips_frames_whose_caps_were_overwritten() {
    init();
    let dir = TestDir::new("stale-caps");
    let mut w = sink(&dir, "c", "slots=64");
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    let mut r = src(&dir, "c", "mode=sequential");
    assert_eq!(pull(&mut r).offset(), 1);
    // Hold the reader's streaming thread in the push of frame 2 while the writer goes
    // on with three caps changes.
    use std::sync::{atomic::AtomicBool, Arc, Barrier};
    let (arrived, go, once) = (
        Arc::new(Barrier::new(2)),
        Arc::new(Barrier::new(2)),
        Arc::new(AtomicBool::new(false)),
    );
    let (a, g) = (arrived.clone(), go.clone());
    r.element().unwrap().static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER,
        move |_, _| {
            if !once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                a.wait();
                g.wait();
            }
            gst::PadProbeReturn::Ok
        },
    );
    w.push(frame(64, 2, 2 * 33)).unwrap();
    arrived.wait();
    // Frame 3 has caps version 2; versions 3 and 4 follow, and version 4 takes the
    // caps slot of version 2.
    w.set_src_caps(caps("GRAY8", 4, 4));
    w.push(frame(16, 3, 3 * 33)).unwrap();
    w.set_src_caps(caps("GRAY8", 2, 2));
    w.push(frame(8, 4, 4 * 33)).unwrap(); // rows padded to 4 bytes
    w.set_src_caps(caps("GRAY8", 8, 4));
    w.push(frame(32, 5, 5 * 33)).unwrap();
    go.wait();
    assert_eq!(pull(&mut r).offset(), 2);
    let b = pull(&mut r);
    assert_eq!(b.offset(), 4, "frame 3 cannot be described any more");
    assert!(b.flags().contains(gst::BufferFlags::DISCONT));
    assert_eq!(bytes(&b), bytes(&frame(8, 4, 0)));
    let b = pull(&mut r);
    assert_eq!((b.offset(), bytes(&b)), (5, bytes(&frame(32, 5, 0))));
    assert_eq!(
        r.sinkpad().unwrap().current_caps().unwrap(),
        caps("GRAY8", 8, 4)
    );
    assert_eq!(stat::<u64>(&mut r, "shmringsrc", "lost"), 1);
}

#[test]
fn a_buffer_shorter_than_its_frame_is_an_error_naming_both_sizes() {
    init();
    let dir = TestDir::new("short");
    let mut w = sink(&dir, "s", "");
    w.set_src_caps(caps("GRAY8", 64, 64));
    let bus = gst::Bus::new();
    w.find_element("shmringsink").unwrap().set_bus(Some(&bus));
    // A VideoMeta that claims rows of 128 bytes in a buffer that holds rows of 64.
    let mut b = gst::Buffer::with_size(64 * 64).unwrap();
    gst_video::VideoMeta::add_full(
        b.get_mut().unwrap(),
        gst_video::VideoFrameFlags::empty(),
        gst_video::VideoFormat::Gray8,
        64,
        64,
        &[0],
        &[128],
    )
    .unwrap();
    assert!(w.push(b).is_err());
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an element error");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = e.error().to_string();
    assert!(
        text.contains("4096 bytes") && text.contains("8128"),
        "{text}"
    );
    let ring = shmring_common::RingLocation::parse("s", Some(&dir.path)).unwrap();
    let reader = shmring_common::RingReader::open_for_inspection(&ring).unwrap();
    assert_eq!(reader.head(), 0, "nothing of the frame was committed");
}

/// Reads every readable property of `element` in a loop on `threads` threads until
/// `stop`; returns the reads done and the longest read.
fn poll_properties(
    element: gst::Element,
    threads: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<(u64, Duration)>> {
    (0..threads)
        .map(|_| {
            let (element, stop) = (element.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut reads, mut longest) = (0u64, Duration::ZERO);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for pspec in element.list_properties() {
                        if pspec.flags().contains(glib::ParamFlags::READABLE) {
                            let t = Instant::now();
                            let _ = element.property_value(pspec.name());
                            longest = longest.max(t.elapsed());
                            reads += 1;
                        }
                    }
                }
                (reads, longest)
            })
        })
        .collect()
}

/// Joins the pollers, failing if any is stuck (a deadlock) after `limit`.
fn join_pollers(
    pollers: Vec<std::thread::JoinHandle<(u64, Duration)>>,
    limit: Duration,
) -> (u64, Duration) {
    let deadline = Instant::now() + limit;
    let mut total = (0, Duration::ZERO);
    for p in pollers {
        while !p.is_finished() {
            assert!(
                Instant::now() < deadline,
                "a thread reading properties is stuck"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let (reads, longest) = p.join().unwrap();
        total = (total.0 + reads, total.1.max(longest));
    }
    total
}

#[test]
fn properties_read_from_other_threads_never_stall_the_stream() {
    init();
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    for mode in ["latest", "sequential", "handle"] {
        let dir = TestDir::new("poll");
        let mut w = sink(&dir, "p", "slots=8 post-handles=false");
        let c = caps("I420", 64, 48);
        let size = gst_video::VideoInfo::from_caps(&c).unwrap().size();
        w.set_src_caps(c);
        w.push(frame(size, 1, 0)).unwrap();
        let pipeline = gst::parse::launch(&format!(
            "shmringsrc name=src ring=p dir={} mode={mode} timeout=10000000 ! fakesink name=out sync=false signal-handoffs=true",
            dir.path.display()
        ))
        .unwrap();
        let bin = pipeline.downcast_ref::<gst::Bin>().unwrap();
        let src = bin.by_name("src").unwrap();
        let received = Arc::new(AtomicU64::new(0));
        let r = received.clone();
        bin.by_name("out")
            .unwrap()
            .connect("handoff", false, move |_| {
                r.fetch_add(1, Ordering::SeqCst);
                None
            });
        pipeline.set_state(gst::State::Playing).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut pollers = poll_properties(src.clone(), 2, stop.clone());
        pollers.extend(poll_properties(
            w.find_element("shmringsink").unwrap(),
            1,
            stop.clone(),
        ));
        let sink = w.find_element("shmringsink").unwrap();
        // About 700 frames a second for two seconds: fast enough that the old lock
        // order deadlocked within the first half second, slow enough that a reader
        // sharing two cores with three pollers still gets frames.
        for n in 2..=1500u64 {
            if n % 2 == 0 {
                std::thread::sleep(Duration::from_millis(3));
            }
            w.push(frame(size, n, n)).unwrap();
            if mode == "handle" && n % 10 == 0 {
                let h = sink.property::<Option<String>>("last-handle").unwrap();
                src.emit_by_name::<bool>("request-frame", &[&h]);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        let (reads, longest) = join_pollers(pollers, Duration::from_secs(20));
        let got = received.load(Ordering::SeqCst);
        pipeline.set_state(gst::State::Null).unwrap();
        eprintln!("{mode}: {got} frames out, {reads} property reads, longest {longest:?}");
        assert!(got > 10, "{mode}: the stream stalled after {got} frames");
        assert!(reads > 100, "{mode}: only {reads} property reads");
    }
}

#[test]
fn the_sinks_properties_are_read_while_it_copies_4k_frames() {
    init();
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = TestDir::new("poll-4k");
    let mut w = sink(&dir, "k", "slots=4 pool-slots=0");
    let c = caps("I420", 3840, 2160);
    let size = gst_video::VideoInfo::from_caps(&c).unwrap().size();
    w.set_src_caps(c);
    let frame = frame(size, 1, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let pollers = poll_properties(w.find_element("shmringsink").unwrap(), 1, stop.clone());
    let mut slowest_copy = Duration::ZERO;
    for _ in 0..40 {
        let t = Instant::now();
        w.push(frame.clone()).unwrap();
        slowest_copy = slowest_copy.max(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let (reads, longest) = join_pollers(pollers, Duration::from_secs(20));
    eprintln!("4K: slowest push {slowest_copy:?}, {reads} property reads, longest {longest:?}");
    assert!(reads > 40);
}

#[test]
fn new_caps_are_what_the_source_answers_when_they_arrive_and_latency_is_recomputed() {
    init();
    let dir = TestDir::new("caps-order");
    let mut w = sink(&dir, "co", "");
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    let pipeline = gst::parse::launch(&format!(
        "shmringsrc name=src ring=co dir={} mode=sequential ! fakesink sync=false",
        dir.path.display()
    ))
    .unwrap();
    let src = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("src")
        .unwrap();
    // When each caps event leaves the source, a caps query of the source answers it.
    let mismatches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (m, n) = (mismatches.clone(), seen.clone());
    src.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            if let Some(gst::EventView::Caps(c)) = info.event().map(|e| e.view()) {
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answered = pad.query_caps(None);
                if answered != *c.caps() {
                    m.lock()
                        .unwrap()
                        .push(format!("{} vs {answered}", c.caps()));
                }
            }
            gst::PadProbeReturn::Ok
        },
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let latency = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(5),
        &[gst::MessageType::Latency],
    );
    assert!(
        latency.is_some_and(|m| m.src() == Some(src.upcast_ref())),
        "the source posts a latency message once it knows the frame rate and slots"
    );
    std::thread::sleep(Duration::from_millis(100));
    w.set_src_caps(caps("GRAY8", 4, 4));
    w.push(frame(16, 2, 33)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the second caps never came");
        std::thread::sleep(Duration::from_millis(5));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(*mismatches.lock().unwrap(), Vec::<String>::new());
}

#[test]
fn a_caps_change_that_fails_leaves_the_ring_live_with_its_caps() {
    init();
    let dir = TestDir::new("caps-fail");
    let mut w = sink(&dir, "cf", "");
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    let ring = shmring_common::RingLocation::parse("cf", Some(&dir.path)).unwrap();
    let reader = shmring_common::RingReader::open(&ring).unwrap();
    // Caps too long for the ring's caps slot: the caps change fails.
    let long = gst::Caps::from_str(&format!(
        "video/x-raw,format=GRAY8,width=8,height=8,framerate=30/1,note=(string){}",
        "x".repeat(2000)
    ))
    .unwrap();
    let bus = gst::Bus::new();
    w.find_element("shmringsink").unwrap().set_bus(Some(&bus));
    w.set_src_caps(long);
    let _ = w.push(frame(64, 2, 33));
    assert!(
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
            .is_some(),
        "the failed caps change is an error"
    );
    assert_eq!(reader.writer_status(), shmring_common::WriterStatus::Live);
    assert!(!reader.is_superseded(), "the ring is still in place");
    let (_, text) = reader.current_caps().unwrap().unwrap();
    assert!(text.contains("width=(int)8"), "{text}");
}

/// `frame(size, n, 0)` captured at `captured_ns` (wall clock, ns since the Unix epoch).
fn frame_captured(size: usize, n: u64, captured_ns: u64) -> gst::Buffer {
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

fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn history_sizes_the_ring_by_time_within_the_memory_budget() {
    init();
    let dir = TestDir::new("history");
    let mut w = sink(&dir, "h", "history=2000000000");
    w.set_src_caps(caps("GRAY8", 64, 48));
    w.push(frame(64 * 48, 1, 0)).unwrap();
    assert_eq!(
        stat::<u32>(&mut w, "shmringsink", "slots"),
        60,
        "2 s at 30 fps"
    );
    assert!(stat::<u64>(&mut w, "shmringsink", "ring-bytes") >= 60 * 4096);
    let mut big = sink(&dir, "b", "history=60000000000");
    big.set_src_caps(caps("I420", 3840, 2160));
    let size = gst_video::VideoInfo::from_caps(&caps("I420", 3840, 2160))
        .unwrap()
        .size();
    big.push(frame(size, 1, 0)).unwrap();
    let slots: u32 = stat(&mut big, "shmringsink", "slots");
    assert!(
        slots < 100 && u64::from(slots) * size as u64 <= 1 << 30,
        "a minute of 4K is held to 1 GiB: {slots} slots"
    );
}

#[test]
fn a_recorder_started_late_gets_the_half_second_before_it() {
    init();
    let dir = TestDir::new("look-back");
    let mut w = sink(&dir, "r", "history=3000000000");
    w.set_src_caps(caps("GRAY8", 16, 16));
    // A second of frames at 30 fps, each captured when it is written.
    for n in 1..=30u64 {
        w.push(frame_captured(256, n, wall_ns())).unwrap();
        std::thread::sleep(Duration::from_millis(33));
    }
    let since = wall_ns() - 500_000_000;
    let mut r = src(&dir, "r", "mode=sequential start=500000000");
    let first = pull(&mut r);
    let first_seq = first.offset();
    assert!(
        reference_ts(&first, "timestamp/x-unix").unwrap() + 50_000_000 >= since,
        "the first frame was captured within the half second"
    );
    assert!(
        (10..=20).contains(&(31 - first_seq)),
        "about 15 frames of the half second, got {} from frame {first_seq}",
        31 - first_seq
    );
    assert_eq!(bytes(&first), bytes(&frame(256, first_seq, 0)));
    for n in first_seq + 1..=30 {
        let b = pull(&mut r);
        assert_eq!(b.offset(), n, "in order");
        assert_eq!(
            bytes(&b),
            bytes(&frame(256, n, 0)),
            "frame {n} byte for byte"
        );
    }
    // Then it goes on with new frames.
    w.push(frame_captured(256, 31, wall_ns())).unwrap();
    assert_eq!(pull(&mut r).offset(), 31);
}

/// Asks a mode=handle source for the frame captured at `at` by `rule`: the status and,
/// when delivered, the frame's sequence.
fn request_at(r: &mut Harness, bus: &gst::Bus, at: u64, rule: &str) -> (String, Option<u64>) {
    let element = r.find_element("shmringsrc").unwrap();
    let queued = element.emit_by_name::<bool>("request-frame-at", &[&at, &rule]);
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Element],
        )
        .expect("an answer");
    let s = msg.structure().unwrap();
    assert_eq!(s.name(), "shmringsrc-handle");
    assert_eq!(s.get::<u64>("capture-time").unwrap(), at);
    let status = s.get::<String>("status").unwrap();
    assert_eq!(queued, status != "invalid");
    let seq = (status == "delivered").then(|| {
        let b = pull(r);
        let handle = s.get::<String>("handle").unwrap();
        assert!(handle.ends_with(&format!(":{}", b.offset())), "{handle}");
        b.offset()
    });
    (status, seq)
}

#[test]
fn frames_are_requested_by_capture_time_by_each_rule_at_the_edges_and_across_a_restart() {
    init();
    let dir = TestDir::new("at");
    let t0 = 1_700_000_000_000_000_000u64;
    let mut w = sink(&dir, "a", "slots=4");
    w.set_src_caps(caps("GRAY8", 16, 16));
    // Frames 1..=6 captured at t0 + 100 ms * n: 3..=6 are held by four slots.
    for n in 1..=6u64 {
        w.push(frame_captured(256, n, t0 + n * 100_000_000))
            .unwrap();
    }
    let mut r = src(&dir, "a", "mode=handle timeout=50000000");
    let bus = gst::Bus::new();
    r.find_element("shmringsrc").unwrap().set_bus(Some(&bus));
    let ms = |m: u64| t0 + m * 1_000_000;
    assert_eq!(
        request_at(&mut r, &bus, ms(420), "nearest"),
        ("delivered".into(), Some(4))
    );
    assert_eq!(
        request_at(&mut r, &bus, ms(460), "at-or-before"),
        ("delivered".into(), Some(4))
    );
    assert_eq!(
        request_at(&mut r, &bus, ms(420), "at-or-after"),
        ("delivered".into(), Some(5))
    );
    // Older than the oldest frame held, newer than the newest.
    assert_eq!(
        request_at(&mut r, &bus, ms(150), "at-or-before"),
        ("gone".into(), None)
    );
    assert_eq!(
        request_at(&mut r, &bus, ms(150), "nearest"),
        ("delivered".into(), Some(3))
    );
    assert_eq!(
        request_at(&mut r, &bus, ms(900), "at-or-after"),
        ("not-yet".into(), None)
    );
    assert_eq!(
        request_at(&mut r, &bus, ms(900), "at-or-before"),
        ("delivered".into(), Some(6))
    );
    assert_eq!(
        request_at(&mut r, &bus, ms(900), "sideways"),
        ("invalid".into(), None)
    );
    // A new writer of the ring: its frames are found.
    drop(w);
    let mut w = sink(&dir, "a", "slots=4");
    w.set_src_caps(caps("GRAY8", 16, 16));
    w.push(frame_captured(256, 1, ms(2000))).unwrap();
    let (status, seq) = request_at(&mut r, &bus, ms(2000), "nearest");
    assert_eq!(
        (status.as_str(), seq),
        ("delivered", Some(1)),
        "the new writer's frame"
    );
}

/// A ring `c` with one frame captured now, read by a `timed_reader` with
/// `timestamps=capture max-age=200000000` that has output it; then 300 ms more, so that
/// running time is well past the capture times the test writes next (they cannot be
/// before 0). Returns the deadline the test's waits have.
fn capture_reader(dir: &TestDir) -> (Harness, gst::Element, Seen, Instant) {
    let mut w = sink(dir, "c", "");
    w.set_src_caps(caps("GRAY8", 16, 16));
    w.push(frame_captured(256, 1, wall_ns())).unwrap();
    let (pipeline, seen) = timed_reader(
        dir,
        "c",
        "mode=sequential timestamps=capture max-age=200000000",
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no first frame");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    (w, pipeline, seen, deadline)
}

/// The one source of a pipeline.
fn source_of(pipeline: &gst::Element) -> gst::Element {
    pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .iterate_sources()
        .into_iter()
        .next()
        .unwrap()
        .unwrap()
}

#[test]
fn with_capture_timestamps_each_pts_is_the_capture_on_the_pipeline_clock() {
    init();
    let dir = TestDir::new("capture-ts");
    let (mut w, pipeline, seen, deadline) = capture_reader(&dir);
    // Captured 50 ms before it is written, then 500 ms before (too late for max-age).
    w.push(frame_captured(256, 2, wall_ns() - 50_000_000))
        .unwrap();
    w.push(frame_captured(256, 3, wall_ns() - 500_000_000))
        .unwrap();
    w.push(frame_captured(256, 4, wall_ns() - 10_000_000))
        .unwrap();
    while seen.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "frames missing");
        std::thread::sleep(Duration::from_millis(5));
    }
    let src = source_of(&pipeline);
    let too_late = src
        .property::<gst::Structure>("stats")
        .get::<u64>("too-late")
        .unwrap();
    assert_eq!(too_late, 1);
    let mut q = gst::query::Latency::new();
    assert!(src.static_pad("src").unwrap().query(&mut q));
    let (live, min, _) = q.result();
    assert!(
        live && min >= gst::ClockTime::from_mseconds(200),
        "latency {min}"
    );
    pipeline.set_state(gst::State::Null).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "the frame 500 ms old was dropped");
    let (pts, _, arrived) = seen[1];
    let age = arrived.saturating_sub(pts);
    assert!(
        (40..=120).contains(&age.mseconds()),
        "frame 2, captured 50 ms before it was written, stamped {age} before it arrived"
    );
}

/// A step of the wall clock, forced through the capture times the writer stamps: a frame
/// captured before the clock was set back an hour looks captured in the future, and one
/// captured before it was set forward an hour looks an hour old. The first goes out
/// stamped as captured now, the second is dropped as older than max-age, and no PTS ever
/// goes backwards.
#[test]
fn a_wall_clock_step_either_way_never_sends_a_pts_backwards() {
    init();
    let dir = TestDir::new("clock-step");
    let (mut w, pipeline, seen, deadline) = capture_reader(&dir);
    const HOUR: u64 = 3_600_000_000_000;
    // Before a step back: an hour ahead of the reader's clock.
    w.push(frame_captured(256, 2, wall_ns() + HOUR)).unwrap();
    // After it, captured 100 ms ago: its capture comes before frame 2's stamp.
    std::thread::sleep(Duration::from_millis(30));
    w.push(frame_captured(256, 3, wall_ns() - 100_000_000))
        .unwrap();
    // Before a step forward: an hour behind.
    w.push(frame_captured(256, 4, wall_ns() - HOUR)).unwrap();
    w.push(frame_captured(256, 5, wall_ns() - 10_000_000))
        .unwrap();
    while seen.lock().unwrap().len() < 4 {
        assert!(Instant::now() < deadline, "frames missing");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100)); // anything more would show
    let stats = source_of(&pipeline).property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(stats.get::<u64>("too-late").unwrap(), 1, "{stats}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4, "frames 1, 2, 3 and 5: {seen:?}");
    for pair in seen.windows(2) {
        assert!(pair[1].0 >= pair[0].0, "a PTS went backwards: {seen:?}");
    }
    let (pts, _, arrived) = seen[1];
    assert!(
        arrived.saturating_sub(pts) < gst::ClockTime::from_mseconds(50),
        "the frame from the future is stamped as captured on arrival: {pts} vs {arrived}"
    );
}

/// Three rings whose frames reach their ring 0, 66 and 100 ms after capture (as three
/// cameras with different network and decoding delays), composited side by side by
/// `compositor` from `shmringsrc timestamps=<mode>`: for each output frame (after the
/// first second), how many frames apart the second and third tiles are from the first,
/// by the frame numbers the tiles show.
fn composited_skew(mode: &str) -> Vec<(i64, i64)> {
    init();
    let dir = TestDir::new(&format!("align-{mode}"));
    let c = caps("I420", 16, 16);
    let mut rings: Vec<Harness> = (0..3)
        .map(|i| {
            let mut h = sink(&dir, &format!("cam{i}"), "");
            h.set_src_caps(c.clone());
            h
        })
        .collect();
    // Frame k shows 40 + k in its luma, so that a tile says which frame it is.
    let shown = |k: u64, captured: u64| {
        let mut data = vec![128u8; 384];
        data[..256].fill(40 + k as u8);
        let mut b = gst::Buffer::from_mut_slice(data);
        let unix = gst::Caps::new_empty_simple("timestamp/x-unix");
        gst::ReferenceTimestampMeta::add(
            b.get_mut().unwrap(),
            &unix,
            gst::ClockTime::from_nseconds(captured),
            None,
        );
        b
    };
    for (i, h) in rings.iter_mut().enumerate() {
        h.push(shown(0, wall_ns() - i as u64 * 1000)).unwrap();
    }
    let d = dir.path.display();
    let pipeline = gst::parse::launch(&format!(
        "compositor name=c sink_1::xpos=16 sink_2::xpos=32 \
           ! video/x-raw,format=I420,width=48,height=16,framerate=30/1 \
           ! fakesink name=out sync=false signal-handoffs=true \
         shmringsrc ring=cam0 dir={d} timestamps={mode} max-age=300000000 ! c.sink_0 \
         shmringsrc ring=cam1 dir={d} timestamps={mode} max-age=300000000 ! c.sink_1 \
         shmringsrc ring=cam2 dir={d} timestamps={mode} max-age=300000000 ! c.sink_2"
    ))
    .unwrap();
    let tiles = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let t = tiles.clone();
    pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("out")
        .unwrap()
        .connect("handoff", false, move |args| {
            let b = args[1].get::<gst::Buffer>().unwrap();
            let m = b.map_readable().unwrap();
            let y = |x: usize| i64::from(m[8 * 48 + x]);
            t.lock().unwrap().push([y(8), y(24), y(40)]);
            None
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let start = Instant::now();
    let mut captured = vec![];
    for k in 1..=120u64 {
        let at = start + Duration::from_millis(33 * k);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        captured.push(wall_ns());
        // Ring i gets frame k - delay_i now, captured delay_i frames ago.
        for (i, delay) in [0u64, 2, 3].into_iter().enumerate() {
            if k > delay {
                let j = k - delay;
                rings[i].push(shown(j, captured[j as usize - 1])).unwrap();
            }
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let tiles = tiles.lock().unwrap();
    tiles
        .iter()
        .skip(30)
        .filter(|t| t.iter().all(|&v| v > 40)) // every tile has had a frame
        .map(|t| (t[0] - t[1], t[0] - t[2]))
        .collect()
}

#[test]
fn capture_timestamps_line_three_rings_up_in_compositor_and_arrival_ones_do_not() {
    let by_capture = composited_skew("capture");
    let by_arrival = composited_skew("arrival");
    let within_a_frame = |v: &[(i64, i64)]| {
        v.iter()
            .filter(|(a, b)| a.abs() <= 1 && b.abs() <= 1)
            .count() as f64
            / v.len().max(1) as f64
    };
    let median = |v: &[(i64, i64)]| {
        let mut d: Vec<i64> = v.iter().map(|(_, b)| *b).collect();
        d.sort_unstable();
        d.get(d.len() / 2).copied().unwrap_or(0)
    };
    eprintln!(
        "capture: {} outputs, {:.0} % within a frame, median skew of the third tile {}; \
         arrival: {} outputs, {:.0} % within a frame, median skew {}",
        by_capture.len(),
        100.0 * within_a_frame(&by_capture),
        median(&by_capture),
        by_arrival.len(),
        100.0 * within_a_frame(&by_arrival),
        median(&by_arrival)
    );
    assert!(by_capture.len() > 40 && by_arrival.len() > 40);
    assert!(
        within_a_frame(&by_capture) >= 0.9,
        "by capture, the tiles of an output frame are within one frame of each other"
    );
    assert!(
        median(&by_arrival) >= 2,
        "by arrival, the third tile (100 ms late) lags about three frames"
    );
}

/// Plays `pipeline` for 300 ms (its source blocked waiting), then checks that it stops
/// within about 200 ms, though the source waits 10 s at a time.
fn assert_stops_promptly(pipeline: &str) {
    let pipeline = gst::parse::launch(pipeline).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "stopping took {:?}",
        t.elapsed()
    );
}

#[test]
fn a_waiting_source_stops_promptly() {
    init();
    let dir = TestDir::new("unlock");
    let mut w = sink(&dir, "quiet", "");
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    for mode in ["latest", "sequential", "handle"] {
        // No writer at all: the source waits for the ring to appear.
        assert_stops_promptly(&format!(
            "shmringsrc ring=none dir={} mode={mode} timeout=10000000000 ! fakesink",
            dir.path.display()
        ));
        // Attached, waiting for a frame (or, by handle, for a request).
        assert_stops_promptly(&format!(
            "shmringsrc ring=quiet dir={} mode={mode} timeout=10000000000 ! fakesink",
            dir.path.display()
        ));
    }
}

#[test]
fn a_flush_on_the_source_stops_its_wait_and_streaming_resumes() {
    init();
    let dir = TestDir::new("src-flush");
    let mut w = sink(&dir, "f", "");
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    let mut r = src(&dir, "f", "mode=sequential timeout=10000000000");
    assert_eq!(pull(&mut r).offset(), 1);
    // The source now waits for frame 2, for up to 10 s at a time.
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    // As an application flushes a source: FLUSH_START, then FLUSH_STOP.
    let element = r.element().unwrap();
    assert!(element.send_event(gst::event::FlushStart::new()));
    assert!(element.send_event(gst::event::FlushStop::new(true)));
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "the flush waited {:?} for the source",
        t.elapsed()
    );
    for n in 2..=4 {
        w.push(frame(64, n, n * 33)).unwrap();
    }
    let offsets: Vec<u64> = (0..3).map(|_| pull(&mut r).offset()).collect();
    assert_eq!(offsets, vec![2, 3, 4], "streaming resumed where it was");
}

fn error_of(pipeline: &gst::Element) -> String {
    let _ = pipeline.set_state(gst::State::Playing);
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("an error message");
    let _ = pipeline.set_state(gst::State::Null);
    match msg.view() {
        // The message itself names what was wrong: a C or Python application often
        // shows only the message, not the debug text.
        gst::MessageView::Error(e) => e.error().to_string(),
        _ => unreachable!(),
    }
}

#[test]
fn bad_names_and_bad_rings_are_element_errors_that_say_why() {
    init();
    let dir = TestDir::new("errors");
    let d = dir.path.display();
    let p = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 ! shmringsink ring=../etc dir={d}"
    ))
    .unwrap();
    let e = error_of(&p);
    assert!(
        e.contains("invalid ring name") && e.contains("../etc"),
        "{e}"
    );
    let p = gst::parse::launch("videotestsrc num-buffers=1 ! shmringsink").unwrap();
    assert!(error_of(&p).contains("No ring name"));
    let p = gst::parse::launch(&format!(
        "shmringsrc ring={} dir={d} ! fakesink",
        "x".repeat(65)
    ))
    .unwrap();
    assert!(error_of(&p).contains("longer than 64"));
    std::fs::write(dir.path.join("junk.ring"), vec![7u8; 8192]).unwrap();
    let p = gst::parse::launch(&format!("shmringsrc ring=junk dir={d} ! fakesink")).unwrap();
    let e = error_of(&p);
    assert!(e.contains("junk.ring") && e.contains("magic"), "{e}");
    assert!(
        gst::parse::launch("shmringsrc mode=fastest ! fakesink").is_err(),
        "unknown mode refused at parse time"
    );
    // A second writer on a live ring names the pid that holds it.
    let mut w = sink(&dir, "taken", "");
    w.set_src_caps(caps("GRAY8", 8, 8));
    let p = gst::parse::launch(&format!("videotestsrc num-buffers=1 ! video/x-raw,format=GRAY8,width=8,height=8 ! shmringsink ring=taken dir={d}")).unwrap();
    let e = error_of(&p);
    assert!(
        e.contains("live writer") && e.contains(&std::process::id().to_string()),
        "{e}"
    );
}

#[test]
fn a_clean_stop_leaves_no_ring_behind() {
    init();
    let dir = TestDir::new("cleanup");
    let p = gst::parse::launch(&format!(
        "videotestsrc num-buffers=5 ! video/x-raw,width=32,height=32 ! shmringsink ring=tidy dir={}",
        dir.path.display()
    ))
    .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(10),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    assert_eq!(msg.type_(), gst::MessageType::Eos);
    assert!(
        dir.path.join("tidy.ring").exists(),
        "the ring stays while the pipeline runs"
    );
    p.set_state(gst::State::Null).unwrap();
    assert!(!dir.path.join("tidy.ring").exists());
}

#[test]
fn a_flush_on_the_writer_does_not_stop_its_readers() {
    init();
    let dir = TestDir::new("flush");
    let mut w = sink(&dir, "f", "slots=16");
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    let mut r = src(&dir, "f", "mode=sequential");
    assert_eq!(pull(&mut r).offset(), 1);
    assert!(w.push_event(gst::event::FlushStart::new()));
    assert!(w.push_event(gst::event::FlushStop::new(true)));
    w.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    w.push(frame(64, 2, 0)).unwrap();
    let b = pull(&mut r);
    assert_eq!(b.offset(), 2);
    assert_eq!(bytes(&b), bytes(&frame(64, 2, 0)));
}

#[test]
fn the_source_answers_latency_queries_as_a_live_source() {
    init();
    let dir = TestDir::new("latency");
    let mut w = sink(&dir, "lat", "slots=8");
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 1, 0)).unwrap();
    let mut r = src(&dir, "lat", "mode=sequential");
    pull(&mut r);
    let mut q = gst::query::Latency::new();
    assert!(r.find_element("shmringsrc").unwrap().query(&mut q));
    let (live, min, max) = q.result();
    assert!(live);
    assert_eq!(min, gst::ClockTime::ZERO);
    // Sequential mode may hold back the whole ring: 8 frames at 30 fps.
    assert_eq!(
        max,
        Some(gst::ClockTime::SECOND.mul_div_floor(1, 30).unwrap() * 8)
    );
}

#[test]
fn a_writer_pipeline_restarted_from_null_gives_readers_a_new_epoch() {
    init();
    let dir = TestDir::new("restart");
    let p = gst::parse::launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,format=I420,width=32,height=32,framerate=30/1 ! shmringsink ring=again dir={}",
        dir.path.display()
    ))
    .unwrap();
    let mut r = src(&dir, "again", "");
    let mut epochs = vec![];
    for _ in 0..2 {
        p.set_state(gst::State::Playing).unwrap();
        let b = pull(&mut r);
        assert_eq!(bytes(&b).len(), 32 * 32 * 3 / 2);
        let s = p
            .downcast_ref::<gst::Bin>()
            .unwrap()
            .iterate_sinks()
            .next()
            .unwrap()
            .unwrap();
        epochs.push(
            s.property::<gst::Structure>("stats")
                .get::<String>("epoch")
                .unwrap(),
        );
        p.set_state(gst::State::Null).unwrap();
        assert!(
            !dir.path.join("again.ring").exists(),
            "no stale ring after stop"
        );
    }
    assert_ne!(epochs[0], epochs[1]);
    assert!(stat::<u64>(&mut r, "shmringsrc", "reattaches") >= 1);
}

#[test]
fn zero_copy_buffers_are_read_only_views_of_the_ring() {
    init();
    let dir = TestDir::new("zerocopy");
    let mut w = sink(&dir, "zc", "slots=4 lease-slots=2");
    w.set_src_caps(caps("GRAY8", 16, 16));
    w.push(frame(256, 1, 0)).unwrap();
    let mut r = src(&dir, "zc", "mode=sequential");
    let b = pull(&mut r);
    assert_eq!(bytes(&b), bytes(&frame(256, 1, 0)));
    assert!(
        b.peek_memory(0)
            .flags()
            .contains(gst::MemoryFlags::READONLY),
        "a leased slot must not be writable downstream"
    );
    assert_eq!(stat::<u64>(&mut r, "shmringsrc", "zero-copy"), 1);
    // Held downstream while the writer laps the ring: the bytes stay.
    for n in 2..=12 {
        w.push(frame(256, n, 0)).unwrap();
    }
    assert_eq!(bytes(&b), bytes(&frame(256, 1, 0)));
    // Downstream that wants to write gets a copy (or nothing): never the ring's bytes.
    let slot = b.map_readable().unwrap().as_ptr();
    let a_reference = b.clone();
    let mut own = b;
    let writable = own.make_mut(); // a copy of the buffer: two references
    if let Ok(mut map) = writable.map_writable() {
        assert_ne!(map.as_ptr(), slot, "a writable map of the ring's slot");
        map.as_mut_slice().fill(0xee);
    }
    drop(own);
    let mut sole = a_reference; // now the only reference: writable as a buffer
    if let Ok(mut map) = sole.get_mut().unwrap().map_writable() {
        assert_ne!(map.as_ptr(), slot, "a writable map of the ring's slot");
        map.as_mut_slice().fill(0xee);
    }
    drop(sole);
    let ring = shmring_common::RingLocation::parse("zc", Some(&dir.path)).unwrap();
    let mut check = shmring_common::RingReader::open_for_inspection(&ring).unwrap();
    let handle = shmring_common::Handle {
        ring: "zc".into(),
        epoch: check.epoch(),
        seq: 12 - 3, // still in the 4-slot ring
    };
    match check
        .by_handle(&handle, |i| vec![0u8; i.len as usize])
        .unwrap()
    {
        shmring_common::ByHandle::Frame(f) => assert_eq!(f.data, bytes(&frame(256, 9, 0))),
        _ => panic!("frame 9 is not in the ring"),
    }

    let mut copying = src(&dir, "zc", "zero-copy=false");
    w.push(frame(256, 13, 0)).unwrap();
    let c = pull(&mut copying);
    assert!(!c
        .peek_memory(0)
        .flags()
        .contains(gst::MemoryFlags::READONLY));
    assert_eq!(stat::<u64>(&mut copying, "shmringsrc", "zero-copy"), 0);
}

/// The pool shmringsink proposes for `c`, active.
fn ring_pool(w: &mut Harness, c: &gst::Caps) -> Option<gst::BufferPool> {
    let mut q = gst::query::Allocation::new(Some(c), true);
    assert!(w.srcpad().unwrap().peer_query(&mut q), "allocation query");
    let pool = q.allocation_pools().next()?.0?;
    pool.set_active(true).unwrap();
    Some(pool)
}

/// A buffer of `pool` filled like `frame(size, n, pts_ms)`.
fn pool_frame(pool: &gst::BufferPool, size: usize, n: u64, pts_ms: u64) -> gst::Buffer {
    let mut b = pool.acquire_buffer(None).unwrap();
    let bm = b.get_mut().unwrap();
    bm.copy_from_slice(0, &bytes(&frame(size, n, 0))).unwrap();
    bm.set_pts(gst::ClockTime::from_mseconds(pts_ms));
    b
}

#[test]
fn upstream_writes_frames_straight_into_the_ring() {
    init();
    let dir = TestDir::new("inplace");
    let mut w = sink(&dir, "ip", "slots=4");
    let c = caps("I420", 64, 48);
    let size = gst_video::VideoInfo::from_caps(&c).unwrap().size();
    w.set_src_caps(c.clone());
    let pool = ring_pool(&mut w, &c).expect("shmringsink proposes a pool");
    let mut r = src(&dir, "ip", "mode=sequential");
    // Five laps of the ring: slots go back and forth between the pool and the ring.
    for n in 1..=20u64 {
        w.push(pool_frame(&pool, size, n, n)).unwrap();
        let got = pull(&mut r);
        assert_eq!(bytes(&got), bytes(&frame(size, n, 0)), "frame {n}");
    }
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "frames"), 20);
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "frames-in-place"), 20);
    // An ordinary buffer is still copied in.
    w.push(frame(size, 21, 21)).unwrap();
    assert_eq!(bytes(&pull(&mut r)), bytes(&frame(size, 21, 0)));
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "frames-in-place"), 20);
    pool.set_active(false).unwrap();
}

#[test]
fn a_frame_written_in_place_cannot_be_changed_after_it_was_pushed() {
    init();
    let dir = TestDir::new("inplace-held");
    // No last sample: once pushed, the buffer kept upstream is its only reference.
    let mut w = sink(&dir, "iph", "slots=4 pool-slots=2 enable-last-sample=false");
    let c = caps("GRAY8", 64, 64);
    let size = 64 * 64;
    w.set_src_caps(c.clone());
    let pool = ring_pool(&mut w, &c).unwrap();
    let first = pool_frame(&pool, size, 1, 1);
    let mut kept = first.clone();
    w.push(first).unwrap();
    assert!(kept.is_writable(), "upstream holds the only reference");
    // Written after the push, the buffer gets its own copy of the bytes.
    kept.make_mut()
        .map_writable()
        .unwrap()
        .as_mut_slice()
        .fill(0xff);
    let mut r = src(&dir, "iph", "mode=sequential");
    assert!(
        bytes(&pull(&mut r)) == bytes(&frame(size, 1, 0)),
        "the committed frame changed under its readers"
    );
    // Lapping the ring three times does not reuse a slot while a buffer wraps it.
    let second = pool_frame(&pool, size, 2, 2);
    let held = second.clone();
    w.push(second).unwrap();
    for n in 3..=14 {
        w.push(pool_frame(&pool, size, n, n)).unwrap();
    }
    assert!(
        bytes(&held) == bytes(&frame(size, 2, 0)),
        "a slot was rewritten while a buffer wrapped it"
    );
    assert!(stat::<u64>(&mut w, "shmringsink", "frames-in-place") >= 3);
    pool.set_active(false).unwrap();
}

#[test]
fn a_slot_still_mapped_for_writing_upstream_is_copied_and_never_changes_for_readers() {
    init();
    let dir = TestDir::new("inplace-mapped");
    let mut w = sink(&dir, "ipm", "slots=4 enable-last-sample=false");
    let c = caps("GRAY8", 64, 64);
    let size = 64 * 64;
    w.set_src_caps(c.clone());
    let pool = ring_pool(&mut w, &c).unwrap();
    let mut r = src(&dir, "ipm", "mode=sequential");
    // Upstream keeps a write map of the frame's memory after pushing it, as a decoder
    // keeping a reference picture mapped would.
    let b = pool_frame(&pool, size, 1, 1);
    let mut still_mapped = b.memory(0).unwrap().into_mapped_memory_writable().unwrap();
    w.push(b).unwrap();
    still_mapped.as_mut_slice().fill(0xab);
    let got = pull(&mut r);
    assert!(
        bytes(&got) == bytes(&frame(size, 1, 0)),
        "readers saw upstream write into a committed frame"
    );
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "frames-in-place"), 0);
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "frames"), 1);
    drop(still_mapped);
    // Without the map, the next slot is committed in place as usual.
    w.push(pool_frame(&pool, size, 2, 2)).unwrap();
    assert_eq!(bytes(&pull(&mut r)), bytes(&frame(size, 2, 0)));
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "frames-in-place"), 1);
    pool.set_active(false).unwrap();
}

#[test]
fn a_buffer_pushed_twice_is_written_in_place_once_and_copied_once() {
    init();
    let dir = TestDir::new("inplace-twice");
    let mut w = sink(&dir, "ip2", "slots=4");
    let c = caps("GRAY8", 32, 32);
    w.set_src_caps(c.clone());
    let pool = ring_pool(&mut w, &c).unwrap();
    let mut r = src(&dir, "ip2", "mode=sequential");
    let b = pool_frame(&pool, 1024, 7, 0);
    w.push(b.clone()).unwrap();
    let one = pull(&mut r);
    w.push(b).unwrap();
    let two = pull(&mut r);
    assert_eq!(bytes(&one), bytes(&frame(1024, 7, 0)));
    assert_eq!(bytes(&two), bytes(&one));
    assert_eq!(
        stat::<u64>(&mut r, "shmringsrc", "received"),
        2,
        "two frames, not one slot under two descriptors"
    );
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "frames-in-place"), 1);
    pool.set_active(false).unwrap();
}

#[test]
fn when_every_pool_slot_is_out_the_pool_hands_out_buffers_that_are_copied() {
    init();
    let dir = TestDir::new("inplace-out");
    let mut w = sink(&dir, "ipo", "slots=4 pool-slots=2");
    let c = caps("GRAY8", 32, 32);
    w.set_src_caps(c.clone());
    let pool = ring_pool(&mut w, &c).unwrap();
    let mut r = src(&dir, "ipo", "mode=sequential");
    let held: Vec<_> = (0..3).map(|n| pool_frame(&pool, 1024, n, 0)).collect();
    for (n, b) in held.into_iter().enumerate() {
        w.push(b).unwrap();
        assert_eq!(bytes(&pull(&mut r)), bytes(&frame(1024, n as u64, 0)));
    }
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "frames"), 3);
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "frames-in-place"), 2);
    pool.set_active(false).unwrap();
}

#[test]
fn the_ring_pool_refuses_a_configuration_its_slots_cannot_honour() {
    init();
    let dir = TestDir::new("pool-config");
    let mut w = sink(&dir, "pc", "slots=4");
    let c = caps("GRAY8", 64, 64);
    w.set_src_caps(c.clone());
    let mut q = gst::query::Allocation::new(Some(&c), true);
    assert!(w.srcpad().unwrap().peer_query(&mut q));
    let pool = q.allocation_pools().next().unwrap().0.unwrap();
    let slot = 4096u32; // a 64x64 GRAY8 frame in a page-sized slot
    let mut too_big = pool.config();
    too_big.set_params(Some(&c), slot + 1, 0, 0);
    assert!(
        pool.set_config(too_big).is_err(),
        "a buffer larger than a slot"
    );
    let mut misaligned = pool.config();
    misaligned.set_params(Some(&c), 4096, 0, 0);
    let mut params = gst::AllocationParams::default();
    params.set_align(8191); // 8 KiB: beyond a slot's page alignment
    misaligned.set_allocator(None::<&gst::Allocator>, Some(&params));
    assert!(
        pool.set_config(misaligned).is_err(),
        "an alignment beyond a page"
    );
    let mut fine = pool.config();
    fine.set_params(Some(&c), 4096, 0, 0);
    pool.set_config(fine).unwrap();
    pool.set_active(true).unwrap();
    let b = pool.acquire_buffer(None).unwrap();
    assert_eq!(b.size(), 4096, "the refused sizes left no trace");
    assert_eq!(b.map_readable().unwrap().as_ptr() as usize % 4096, 0);
    drop(b);
    pool.set_active(false).unwrap();
}

#[test]
fn a_downstream_pool_the_source_does_not_use_is_never_activated() {
    init();
    let dir = TestDir::new("unused-pool");
    let mut w = sink(&dir, "up", "");
    w.set_src_caps(caps("GRAY8", 16, 16));
    w.push(frame(256, 1, 0)).unwrap();
    let mut r = Harness::new_parse(&format!(
        "shmringsrc name=src ring=up dir={}",
        dir.path.display()
    ));
    // Downstream answers the allocation query with a pool of its own, as a video sink
    // does.
    let offered = gst::BufferPool::new();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (o, a) = (offered.clone(), asked.clone());
    r.element().unwrap().static_pad("src").unwrap().add_probe(
        gst::PadProbeType::QUERY_DOWNSTREAM | gst::PadProbeType::PUSH,
        move |_, info| {
            if let Some(gst::QueryViewMut::Allocation(q)) = info.query_mut().map(|q| q.view_mut()) {
                // Before it goes: the harness answers without touching pools.
                q.add_allocation_pool(Some(&o), 256, 2, 0);
                a.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            gst::PadProbeReturn::Ok
        },
    );
    r.play();
    assert_eq!(bytes(&pull(&mut r)), bytes(&frame(256, 1, 0)));
    assert!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        "no allocation query"
    );
    assert!(!offered.is_active(), "BaseSrc activated a pool nobody uses");
}

#[test]
fn pool_slots_0_proposes_no_pool() {
    init();
    let dir = TestDir::new("nopool");
    let mut w = sink(&dir, "np", "pool-slots=0");
    let c = caps("GRAY8", 32, 32);
    w.set_src_caps(c.clone());
    assert!(ring_pool(&mut w, &c).is_none());
}

#[test]
fn upstream_may_use_a_video_meta_only_when_no_pool_is_proposed() {
    init();
    let dir = TestDir::new("videometa");
    let c = caps("I420", 64, 48);
    let answer = |extra: &str, ring: &str| {
        let mut w = sink(&dir, ring, extra);
        w.set_src_caps(c.clone());
        let mut q = gst::query::Allocation::new(Some(&c), true);
        assert!(w.srcpad().unwrap().peer_query(&mut q), "allocation query");
        (
            q.allocation_pools().next().is_some(),
            q.find_allocation_meta::<gst_video::VideoMeta>().is_some(),
        )
    };
    // With a pool of ring slots, a frame that upstream must lay out anew (a decoder's
    // padded picture) is then written into the pool, that is, into the ring.
    assert_eq!(answer("", "vm1"), (true, false));
    // Without one, the sink copies frames of any strides itself.
    assert_eq!(answer("pool-slots=0", "vm2"), (false, true));
}

#[test]
fn a_buffer_of_a_replaced_ring_is_copied_into_the_new_one() {
    init();
    let dir = TestDir::new("inplace-replaced");
    let mut w = sink(&dir, "ipr", "slots=4");
    let small = caps("GRAY8", 32, 32);
    w.set_src_caps(small.clone());
    let pool = ring_pool(&mut w, &small).unwrap();
    let old = pool_frame(&pool, 1024, 5, 0);
    // Larger frames replace the ring; smaller ones again fit the new ring.
    w.set_src_caps(caps("GRAY8", 128, 128));
    w.push(frame(128 * 128, 1, 0)).unwrap();
    w.set_src_caps(small);
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "rings-created"), 2);
    let mut r = src(&dir, "ipr", "mode=sequential");
    w.push(old).unwrap();
    assert!(bytes(&pull(&mut r)) == bytes(&frame(1024, 5, 0)));
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "frames-in-place"), 0);
    pool.set_active(false).unwrap();
}

/// `appsrc ! shmringsink` on a clock that moves only when told to: the pipeline, its
/// appsrc and sink, and the clock (at 0).
fn clocked_writer(
    dir: &TestDir,
    ring: &str,
    appsrc: &str,
) -> (
    gst::Element,
    gst::Element,
    gst::Element,
    gst_check::TestClock,
) {
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=in format=time caps=video/x-raw,format=GRAY8,width=16,height=16,framerate=30/1 {appsrc} \
         ! shmringsink name=sink ring={ring} dir={}",
        dir.path.display()
    ))
    .unwrap();
    let clock = gst_check::TestClock::new();
    pipeline
        .downcast_ref::<gst::Pipeline>()
        .unwrap()
        .use_clock(Some(&clock));
    let bin = pipeline.downcast_ref::<gst::Bin>().unwrap();
    let (src, sink) = (bin.by_name("in").unwrap(), bin.by_name("sink").unwrap());
    (pipeline, src, sink, clock)
}

fn push_at(src: &gst::Element, pts: gst::ClockTime) {
    let mut b = frame(256, pts.mseconds(), 0);
    b.get_mut().unwrap().set_pts(pts);
    let flow = src.emit_by_name::<gst::FlowReturn>("push-buffer", &[&b]);
    assert_eq!(flow, gst::FlowReturn::Ok);
}

/// The frames `sink` has written, once they stop changing for 200 ms (at most 5 s).
fn frames_written(sink: &gst::Element) -> u64 {
    let frames = || {
        sink.property::<gst::Structure>("stats")
            .get::<u64>("frames")
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = (frames(), Instant::now());
    while Instant::now() < deadline && last.1.elapsed() < Duration::from_millis(200) {
        std::thread::sleep(Duration::from_millis(10));
        let now = frames();
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    last.0
}

/// The clock time the sink waits for next, and then lets it go on.
fn next_wait(clock: &gst_check::TestClock) -> gst::ClockTime {
    let id = clock.wait_for_next_pending_id();
    let time = id.time();
    clock.crank();
    time
}

#[test]
fn a_live_frame_is_written_at_once_whatever_the_pipeline_latency() {
    init();
    let dir = TestDir::new("latency");
    // As much latency as rtspsrc's jitterbuffer asks of a live pipeline.
    let (pipeline, src, sink, clock) =
        clocked_writer(&dir, "lat", "is-live=true min-latency=2000000000");
    pipeline.set_state(gst::State::Playing).unwrap();
    push_at(&src, gst::ClockTime::ZERO);
    assert_eq!(
        next_wait(&clock),
        gst::ClockTime::ZERO,
        "a live frame is written at its timestamp, not 2 s after it"
    );
    assert_eq!(frames_written(&sink), 1);
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn with_ignore_latency_off_the_sink_waits_out_the_pipeline_latency() {
    init();
    let dir = TestDir::new("latency-kept");
    let (pipeline, src, sink, clock) =
        clocked_writer(&dir, "latk", "is-live=true min-latency=2000000000");
    sink.set_property("ignore-latency", false);
    pipeline.set_state(gst::State::Playing).unwrap();
    push_at(&src, gst::ClockTime::ZERO);
    assert_eq!(
        next_wait(&clock),
        gst::ClockTime::from_seconds(2),
        "the frame waits for its timestamp plus the pipeline's 2 s"
    );
    assert_eq!(frames_written(&sink), 1);
    pipeline.set_state(gst::State::Null).unwrap();
}

/// A live frame stamped 0 arriving when the clock says 100 ms, at a sink with
/// `max-lateness=50 ms` in a pipeline of 2 s latency: how many frames get written.
fn late_frame_written(ignore_latency: bool) -> u64 {
    init();
    let dir = TestDir::new("lateness");
    let (pipeline, src, sink, clock) =
        clocked_writer(&dir, "late", "is-live=true min-latency=2000000000");
    sink.set_property("ignore-latency", ignore_latency);
    sink.set_property("max-lateness", 50_000_000i64);
    sink.set_property("qos", true);
    pipeline.set_state(gst::State::Playing).unwrap();
    clock.set_time(gst::ClockTime::from_mseconds(100));
    push_at(&src, gst::ClockTime::ZERO);
    if !ignore_latency {
        // Due at 0 + 2 s: not late, it waits for its time.
        assert_eq!(next_wait(&clock), gst::ClockTime::from_seconds(2));
    }
    let written = frames_written(&sink);
    pipeline.set_state(gst::State::Null).unwrap();
    written
}

#[test]
fn max_lateness_counts_from_the_timestamp_or_from_the_latency_as_ignore_latency_says() {
    assert_eq!(
        late_frame_written(true),
        0,
        "ignoring the latency, a frame 100 ms past its timestamp is 100 ms late: dropped"
    );
    assert_eq!(
        late_frame_written(false),
        1,
        "with the pipeline's 2 s latency the same frame is early: written"
    );
}

#[test]
fn a_stream_that_is_not_live_is_still_paced_by_its_timestamps() {
    init();
    let dir = TestDir::new("paced");
    let (pipeline, src, sink, clock) = clocked_writer(&dir, "paced", "");
    let _ = pipeline.set_state(gst::State::Playing);
    push_at(&src, gst::ClockTime::ZERO);
    push_at(&src, gst::ClockTime::SECOND);
    assert_eq!(next_wait(&clock), gst::ClockTime::ZERO);
    assert_eq!(frames_written(&sink), 1, "the frame due at 1 s waits");
    assert_eq!(next_wait(&clock), gst::ClockTime::SECOND);
    assert_eq!(frames_written(&sink), 2);
    pipeline.set_state(gst::State::Null).unwrap();
}

/// Frames pushed into ring `a` through `shmringsrc ! {middle} ! shmringsink` into ring
/// `b`: how many a reader of `b` got (if `unchanged`, each checked to be a frame pushed,
/// in order), the frames the relay's sink wrote, of them in place, and the frames its
/// source copied into the sink's ring.
fn relay(middle: &str, name: &str, unchanged: bool) -> (usize, u64, u64, u64) {
    init();
    let dir = TestDir::new(name);
    let mut w = sink(&dir, "a", "slots=8");
    let c = caps("I420", 64, 48);
    let size = gst_video::VideoInfo::from_caps(&c).unwrap().size();
    w.set_src_caps(c);
    let relay = gst::parse::launch(&format!(
        "shmringsrc name=r ring=a dir={d} mode=sequential ! {middle} ! shmringsink name=s ring=b dir={d}",
        d = dir.path.display()
    ))
    .unwrap();
    relay.set_state(gst::State::Playing).unwrap();
    let mut r = src(&dir, "b", "mode=sequential");
    let mut got = Vec::new();
    for n in 1..=40u64 {
        w.push(frame(size, n, n * 33)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        while let Some(b) = r.try_pull() {
            got.push(bytes(&b));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    while let Some(b) = r.try_pull() {
        got.push(bytes(&b));
    }
    let mut next = 1;
    for g in got.iter().filter(|_| unchanged) {
        next += (next..=40)
            .position(|n| *g == bytes(&frame(size, n, 0)))
            .unwrap_or_else(|| panic!("a frame that was never pushed reached ring b"))
            as u64
            + 1;
    }
    let bin = relay.downcast_ref::<gst::Bin>().unwrap();
    let stat = |e: &str, field: &str| {
        let s = bin.by_name(e).unwrap().property::<gst::Structure>("stats");
        s.get::<u64>(field).unwrap()
    };
    let counts = (
        got.len(),
        stat("s", "frames"),
        stat("s", "frames-in-place"),
        stat("r", "into-ring"),
    );
    relay.set_state(gst::State::Null).unwrap();
    counts
}

#[test]
fn a_relay_copies_each_frame_straight_into_the_next_ring() {
    let (got, frames, in_place, into_ring) = relay("identity", "relay", true);
    assert!(got >= 20, "{got} of 40 frames through the relay");
    // The first frame, read before the caps reached the sink, was leased and copied in.
    assert!(
        in_place + 1 >= frames && into_ring == in_place,
        "{in_place} of {frames} frames written in place, {into_ring} copied into the ring"
    );
}

#[test]
fn a_filter_working_in_place_writes_into_the_next_ring() {
    // videobalance changes the frame it is given; given a leased, read-only frame it
    // would copy it first, and the sink would copy it again.
    let (got, frames, in_place, _) = relay("videobalance saturation=0", "relay-filter", false);
    assert!(got >= 20, "{got} of 40 frames through the relay");
    assert!(
        in_place + 1 >= frames,
        "{in_place} of {frames} frames written in place"
    );
}
