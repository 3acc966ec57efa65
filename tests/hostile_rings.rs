//! shmringsrc against a hostile or careless writer: every field a reader trusts (pts,
//! dts, duration, capture time, flags, sizes, caps and their changes, sequence gaps) is
//! given arbitrary values, and frames are read in each mode × timestamps × zero-copy.
//! What must hold: no panic, no GLib critical (fatal here), no hang (each frame is
//! accounted for within a bound), PTS never backwards nor far ahead of the clock,
//! latency queries sane; what is out of range is an element error or a frame dropped
//! and counted in `stats`.

mod support;

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_check::Harness;
use shmring_common::testing::TestDir;
use shmring_common::{FrameMeta, RingWriter, WriterConfig};
use support::init;

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[(self.next() % from.len() as u64) as usize]
    }
}

fn wall_ns() -> u64 {
    shmring_common::realtime_ns()
}

/// A ring of 64-byte GRAY8 8x8 frames at 30 fps (`CAPS[0]`), of `slots` slots holding
/// frames of up to `max_frame` bytes.
fn ring(dir: &TestDir, name: &str, slots: u32, max_frame: u64) -> RingWriter {
    RingWriter::create(
        &dir.ring(name),
        &WriterConfig {
            slots,
            max_frame,
            caps: Some(CAPS[0].0.into()),
            ..Default::default()
        },
    )
    .unwrap()
}

/// A playing shmringsrc on ring `name` with `props`, its element and a bus of its own.
fn reader(dir: &TestDir, name: &str, props: &str) -> (Harness, gst::Element, gst::Bus) {
    let mut h = Harness::new_parse(&format!(
        "shmringsrc ring={name} dir={} {props}",
        dir.path.display()
    ));
    let src = h.find_element("shmringsrc").unwrap();
    let bus = gst::Bus::new();
    src.set_bus(Some(&bus));
    h.play();
    (h, src, bus)
}

/// Valid caps a hostile writer may switch between, with their frame sizes: extreme
/// frame rates among them.
const CAPS: &[(&str, usize)] = &[
    (
        "video/x-raw, format=(string)GRAY8, width=(int)8, height=(int)8, framerate=(fraction)30/1",
        64,
    ),
    (
        "video/x-raw, format=(string)GRAY8, width=(int)8, height=(int)8, framerate=(fraction)1/2147483647",
        64,
    ),
    (
        "video/x-raw, format=(string)GRAY8, width=(int)16, height=(int)4, framerate=(fraction)0/1",
        64,
    ),
    (
        "video/x-raw, format=(string)GRAY8, width=(int)16, height=(int)16, framerate=(fraction)2147483647/1",
        256,
    ),
    (
        "video/x-raw, format=(string)RGBA, width=(int)4, height=(int)4, framerate=(fraction)30/1",
        64,
    ),
];

/// Times a hostile writer puts in the ring (None: no time).
const TIMES: &[Option<u64>] = &[
    None,
    Some(0),
    Some(1),
    Some(33_333_333),
    Some(1 << 62),
    Some(1 << 63),
    Some(u64::MAX - 1),
    Some(u64::MAX),
];

fn hostile_meta(rng: &mut Rng) -> FrameMeta {
    let now = wall_ns();
    let captured = rng.pick(&[
        None,
        Some(0),
        Some(1),
        Some(1 << 63),
        Some(u64::MAX),
        Some(now - 10_000_000),
        Some(now + 3_600_000_000_000),
        Some(now),
    ]);
    FrameMeta {
        pts: rng.pick(TIMES),
        dts: rng.pick(TIMES),
        duration: rng.pick(TIMES),
        captured_at_ns: captured,
        flags: rng.next() as u32,
        ..Default::default()
    }
}

fn stats(src: &gst::Element) -> gst::Structure {
    src.property::<gst::Structure>("stats")
}

/// Frames the source has accounted for: output, or dropped and counted.
fn accounted(src: &gst::Element) -> u64 {
    let s = stats(src);
    ["received", "skipped", "lost", "too-late", "invalid"]
        .iter()
        .map(|f| s.get::<u64>(*f).unwrap())
        .sum()
}

fn assert_latency_sane(src: &gst::Element, what: &str) {
    let mut q = gst::query::Latency::new();
    assert!(src.query(&mut q), "{what}: latency query answered");
    let (live, min, max) = q.result();
    assert!(live, "{what}");
    if let Some(max) = max {
        assert!(min <= max, "{what}: latency min {min} > max {max}");
    }
}

fn no_error(bus: &gst::Bus, what: &str) {
    while let Some(m) = bus.pop() {
        if let gst::MessageView::Error(e) = m.view() {
            panic!("{what}: element error {} ({:?})", e.error(), e.debug());
        }
    }
}

/// Pulls what the source has output so far, checking each PTS against the last and the
/// clock.
fn drain(h: &mut Harness, src: &gst::Element, last_pts: &mut gst::ClockTime, what: &str) {
    while let Some(b) = h.try_pull() {
        let pts = b
            .pts()
            .unwrap_or_else(|| panic!("{what}: a buffer without PTS"));
        assert!(pts >= *last_pts, "{what}: PTS {pts} after {last_pts}");
        let now = src.current_running_time().expect("playing");
        // At most a second (the bounded lead) plus the longest frame believed ahead.
        assert!(
            pts <= now + gst::ClockTime::from_seconds(3),
            "{what}: PTS {pts} far ahead of the clock {now}"
        );
        *last_pts = pts;
    }
}

fn run(mode: &str, timestamps: &str, zero_copy: bool, seed: u64) {
    let what = format!("mode={mode} timestamps={timestamps} zero-copy={zero_copy} seed={seed}");
    let dir = TestDir::new("hostile");
    let loc = dir.ring("h");
    let mut rng = Rng(seed);
    let mut caps = 0;
    let mut w = RingWriter::create(
        &loc,
        &WriterConfig {
            slots: 8,
            max_frame: 256,
            caps: Some(CAPS[caps].0.into()),
            ..Default::default()
        },
    )
    .unwrap();
    let (mut h, src, bus) = reader(
        &dir,
        "h",
        &format!("mode={mode} timestamps={timestamps} zero-copy={zero_copy} timeout=20000000 max-age=3600000000000"),
    );
    let mut last_pts = gst::ClockTime::ZERO;
    let mut requested = 0;
    for n in 0..300u64 {
        if rng.next().is_multiple_of(8) {
            caps = (rng.next() % CAPS.len() as u64) as usize;
            w.set_caps(CAPS[caps].0).unwrap();
        }
        // A sequence gap: frames written and never read, or begun and abandoned.
        match rng.next() % 10 {
            0 => {
                for _ in 0..(rng.next() % 12) {
                    w.write(&hostile_meta(&mut rng), &vec![1; CAPS[caps].1])
                        .unwrap();
                }
            }
            1 => w.begin().unwrap().abort(),
            _ => {}
        }
        let before = accounted(&src);
        let meta = hostile_meta(&mut rng);
        let seq = w.write(&meta, &vec![n as u8; CAPS[caps].1]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        if mode == "handle" {
            let handle = w.handle(seq).to_string();
            assert!(src.emit_by_name::<bool>("request-frame", &[&handle]));
            requested += 1;
            let answer = bus
                .timed_pop_filtered(
                    gst::ClockTime::from_seconds(5),
                    &[gst::MessageType::Element, gst::MessageType::Error],
                )
                .unwrap_or_else(|| panic!("{what}: no answer to request {n} ({meta:?})"));
            let s = answer.structure().unwrap();
            assert_eq!(s.name(), "shmringsrc-handle", "{what}: {s}");
            let status = s.get::<String>("status").unwrap();
            assert!(
                ["delivered", "too-late", "invalid-frame", "gone"].contains(&status.as_str()),
                "{what}: {s}"
            );
            if status != "delivered" {
                assert!(s.get::<String>("reason").is_ok(), "{what}: {s}");
            }
            if status == "invalid-frame" {
                assert!(
                    meta.captured_at_ns.is_some_and(|c| c > i64::MAX as u64),
                    "{what}: {s} for {meta:?}"
                );
            }
        } else {
            // The frame, or a later one, is accounted for within the bound.
            while accounted(&src) == before {
                assert!(
                    Instant::now() < deadline,
                    "{what}: frame {seq} ({meta:?}) not accounted for in 5 s: {}",
                    stats(&src)
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drain(&mut h, &src, &mut last_pts, &what);
        no_error(&bus, &what);
        if n % 16 == 0 {
            assert_latency_sane(&src, &what);
        }
    }
    let s = stats(&src);
    if mode == "handle" {
        let answered: u64 = ["handles-delivered", "handles-gone", "too-late", "invalid"]
            .iter()
            .map(|f| s.get::<u64>(*f).unwrap())
            .sum();
        assert_eq!(answered, requested, "{what}: {s}");
    }
    assert!(s.get::<u64>("received").unwrap() > 0, "{what}: {s}");
    assert_latency_sane(&src, &what);
    drop(h);
}

#[test]
fn hostile_frame_fields_in_every_mode_never_panic_hang_or_go_backwards() {
    init();
    let mut seed = 0x5eed_0000_u64;
    for mode in ["latest", "sequential", "handle"] {
        for timestamps in ["arrival", "capture"] {
            for zero_copy in [true, false] {
                seed += 1;
                run(mode, timestamps, zero_copy, seed);
            }
        }
    }
}

#[test]
fn a_frame_captured_at_the_end_of_time_is_dropped_and_counted_not_a_panic() {
    init();
    for timestamps in ["arrival", "capture"] {
        let dir = TestDir::new("endoftime");
        let mut w = ring(&dir, "e", 4, 64);
        let (mut h, src, _bus) = reader(
            &dir,
            "e",
            &format!("mode=sequential timestamps={timestamps}"),
        );
        // Wait for the source to attach before writing: it starts at the newest frame.
        let t0 = Instant::now();
        while stats(&src).get::<u64>("received").unwrap() == 0 {
            assert!(t0.elapsed() < Duration::from_secs(5), "no first frame");
            w.write(
                &FrameMeta {
                    captured_at_ns: Some(wall_ns()),
                    ..Default::default()
                },
                &[0; 64],
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        // The last warm-up frame may still be on its way: let it arrive (longer under
        // emulation) before draining, so that the counts below are this test's own.
        std::thread::sleep(Duration::from_millis(200) * shmring_common::testing::slowdown());
        while h.try_pull().is_some() {}
        let received = stats(&src).get::<u64>("received").unwrap();
        for captured in [u64::MAX, 1 << 63] {
            w.write(
                &FrameMeta {
                    captured_at_ns: Some(captured),
                    ..Default::default()
                },
                &[1; 64],
            )
            .unwrap();
        }
        w.write(
            &FrameMeta {
                captured_at_ns: Some(wall_ns()),
                ..Default::default()
            },
            &[2; 64],
        )
        .unwrap();
        let b = h.pull().expect("the good frame after the bad ones");
        assert_eq!(b.map_readable().unwrap()[0], 2, "{timestamps}");
        assert!(
            b.flags().contains(gst::BufferFlags::DISCONT),
            "{timestamps}"
        );
        let s = stats(&src);
        assert_eq!(s.get::<u64>("invalid").unwrap(), 2, "{timestamps}: {s}");
        assert_eq!(
            s.get::<u64>("received").unwrap(),
            received + 1,
            "{timestamps}: {s}"
        );
    }
}

#[test]
fn max_age_is_bounded_by_its_property_spec() {
    init();
    let src = gst::ElementFactory::make("shmringsrc").build().unwrap();
    let spec = src.find_property("max-age").unwrap();
    let spec = spec.downcast_ref::<glib::ParamSpecUInt64>().unwrap();
    assert_eq!(spec.maximum(), 3_600_000_000_000);
    // A latency query at the largest max-age answers without overflowing.
    src.set_property("max-age", spec.maximum());
    src.set_property_from_str("timestamps", "capture");
    let mut q = gst::query::Latency::new();
    assert!(src.query(&mut q));
    let (_, min, max) = q.result();
    assert_eq!(min.nseconds(), 3_600_000_000_000);
    assert!(max.is_none_or(|m| m >= min));
}

#[test]
fn a_requested_frame_older_than_max_age_is_reported_too_late() {
    init();
    let dir = TestDir::new("handle-old");
    let mut w = ring(&dir, "o", 8, 64);
    let old = w
        .write(
            &FrameMeta {
                captured_at_ns: Some(wall_ns() - 5_000_000_000),
                ..Default::default()
            },
            &[7; 64],
        )
        .unwrap();
    let (_h, src, bus) = reader(
        &dir,
        "o",
        "mode=handle timestamps=capture max-age=200000000",
    );
    assert!(src.emit_by_name::<bool>("request-frame", &[&w.handle(old).to_string()]));
    let m = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Element],
        )
        .expect("an answer");
    let s = m.structure().unwrap();
    assert_eq!(s.get::<String>("status").unwrap(), "too-late", "{s}");
    let reason = s.get::<String>("reason").unwrap();
    assert!(reason.contains("max-age"), "{reason}");
    assert_eq!(stats(&src).get::<u64>("too-late").unwrap(), 1);
    assert_eq!(stats(&src).get::<u64>("handles-gone").unwrap(), 0);
}

#[test]
fn caps_a_reader_cannot_use_and_frames_of_the_wrong_size_are_errors_that_say_what() {
    init();
    for (caps, len, expect) in [
        ("not caps at all", 64, "neither fixed raw video nor H.264/H.265"),
        ("video/x-raw, format=(string)GRAY8", 64, "neither fixed raw video"),
        (
            "video/x-h264, stream-format=(string)avc, alignment=(string)au",
            64,
            "holds decoded frames but carries caps of encoded video",
        ),
        (
            "video/x-raw, format=(string)GRAY8, width=(int)0, height=(int)8, framerate=(fraction)30/1",
            64,
            "has 64 bytes, its caps need 0",
        ),
        (CAPS[0].0, 63, "63 bytes, its caps need 64"),
    ] {
        let dir = TestDir::new("badcaps");
        let mut w = ring(&dir, "c", 4, 64);
        let (mut h, _src, bus) = reader(&dir, "c", "mode=sequential");
        w.write(&FrameMeta::default(), &[0; 64]).unwrap();
        h.pull().expect("a good frame first");
        w.set_caps(caps).unwrap();
        w.write(&FrameMeta::default(), &vec![0; len]).unwrap();
        let m = bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
            .unwrap_or_else(|| panic!("{caps}: an element error"));
        let gst::MessageView::Error(e) = m.view() else {
            unreachable!()
        };
        let text = e.error().to_string();
        assert!(text.contains(expect), "{caps}: {text}");
    }
}
