//! gst-check tests of how shmringsrc stamps buffers (arrival and capture), of history
//! and look-back, of requests by capture time, and of rings lined up by capture.

mod support;

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_check::Harness;
use shmring_common::testing::TestDir;
use support::*;

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
