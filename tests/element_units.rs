//! The elements on encoded video, in one process with gst-check harnesses: units of
//! made-up H.264 (the ring does not look inside them), their flags and caps, a caps
//! change, handles that bring their GOP, and rings of units made hostile.

mod support;

use std::str::FromStr;

use gst::prelude::*;
use shmring_common::testing::TestDir;
use support::*;

/// Caps of H.264 in avc form with `codec_data` of one byte, `sps`.
fn h264(sps: u8) -> gst::Caps {
    gst::Caps::from_str(&format!(
        "video/x-h264,stream-format=avc,alignment=au,width=320,height=240,framerate=30/1,codec_data=(buffer)01{sps:02x}"
    ))
    .unwrap()
}

/// Unit `n` (from 0) of a stream with a keyframe every `gop` units.
fn unit(n: u64, gop: u64) -> gst::Buffer {
    let mut b = frame(100 + (n as usize * 37) % 900, n, n * 33);
    let bm = b.get_mut().unwrap();
    bm.set_dts(gst::ClockTime::from_mseconds(n * 33));
    if !n.is_multiple_of(gop) {
        bm.set_flags(gst::BufferFlags::DELTA_UNIT);
    }
    b
}

/// The first error of `shmringsrc ring=u <props> ! fakesink`, with its debug text,
/// within 10 s.
fn first_error(dir: &TestDir, props: &str) -> String {
    let pipeline = gst::parse::launch(&format!(
        "shmringsrc ring=u dir={} {props} ! fakesink",
        dir.path.display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("an error, not a hang");
    pipeline.set_state(gst::State::Null).unwrap();
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    format!("{} {:?}", e.error(), e.debug())
}

#[test]
fn units_keep_their_bytes_flags_and_caps_and_a_caps_change_is_followed() {
    init();
    let dir = TestDir::new("units-caps");
    let mut w = sink(&dir, "u", "bitrate=1000000");
    w.set_src_caps(h264(1));
    for n in 0..12 {
        w.push(unit(n, 5)).unwrap();
    }
    let mut r = src(&dir, "u", "mode=sequential");
    // A fresh reader starts at the newest keyframe, 10.
    let first = pull(&mut r);
    assert_eq!(bytes(&first), bytes(&unit(10, 5)));
    assert!(!first.flags().contains(gst::BufferFlags::DELTA_UNIT));
    let second = pull(&mut r);
    assert_eq!(bytes(&second), bytes(&unit(11, 5)));
    assert!(second.flags().contains(gst::BufferFlags::DELTA_UNIT));
    assert_eq!(
        second.dts().unwrap() - first.dts().unwrap(),
        gst::ClockTime::from_mseconds(33),
        "the writer's distances"
    );
    let caps = r.sinkpad().unwrap().current_caps().unwrap();
    assert_eq!(caps, h264(1));
    // New SPS: the same ring, new caps; the reader follows.
    w.set_src_caps(h264(2));
    w.push(unit(15, 5)).unwrap();
    assert_eq!(bytes(&pull(&mut r)), bytes(&unit(15, 5)));
    assert_eq!(r.sinkpad().unwrap().current_caps().unwrap(), h264(2));
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "rings-created"), 1);
    assert_eq!(stat::<u64>(&mut w, "shmringsink", "caps-changes"), 1);
}

#[test]
fn a_handle_to_a_delta_unit_brings_its_gop_from_the_keyframe() {
    init();
    let dir = TestDir::new("units-handle");
    let mut w = sink(&dir, "u", "");
    w.set_src_caps(h264(1));
    for n in 0..8 {
        w.push(unit(n, 5)).unwrap();
    }
    let last = w
        .find_element("shmringsink")
        .unwrap()
        .property::<Option<String>>("last-handle")
        .unwrap();
    // Unit 8 of the ring is n = 7: its keyframe is n = 5, ring unit 6.
    let mut r = src(&dir, "u", "mode=handle");
    let element = r.find_element("shmringsrc").unwrap();
    assert!(element.emit_by_name::<bool>("request-frame", &[&last]));
    let got: Vec<gst::Buffer> = (0..3).map(|_| pull(&mut r)).collect();
    for (b, n) in got.iter().zip(5..) {
        assert_eq!(bytes(b), bytes(&unit(n, 5)), "unit {n}");
    }
    assert!(got[0].flags().contains(gst::BufferFlags::DISCONT));
    assert!(!got[0].flags().contains(gst::BufferFlags::DELTA_UNIT));
    assert_eq!(stat::<u64>(&mut r, "shmringsrc", "handles-delivered"), 1);
    // The next unit of the same GOP: that unit alone, after the ones already out.
    w.push(unit(8, 5)).unwrap();
    let next = w
        .find_element("shmringsink")
        .unwrap()
        .property::<Option<String>>("last-handle")
        .unwrap();
    assert!(element.emit_by_name::<bool>("request-frame", &[&next]));
    let b = pull(&mut r);
    assert_eq!(bytes(&b), bytes(&unit(8, 5)));
    assert!(b.dts().unwrap() > got[2].dts().unwrap(), "stamps go on");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(r.try_pull().is_none(), "the GOP is not sent again");
    assert_eq!(stat::<u64>(&mut r, "shmringsrc", "handles-delivered"), 2);
}

#[test]
fn a_hostile_ring_of_units_is_an_error_that_says_what_not_a_panic() {
    use std::os::unix::fs::FileExt;
    init();
    let dir = TestDir::new("units-hostile-el");
    let mut w = sink(&dir, "u", "");
    w.set_src_caps(h264(1));
    for n in 0..4 {
        w.push(unit(n, 5)).unwrap();
    }
    // Unit 4's descriptor says its bytes lie past the arena's end.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.ring("u").path())
        .unwrap();
    let slots = shmring_common::RingReader::open(&dir.ring("u"))
        .unwrap()
        .geometry()
        .slot_count as u64;
    let payload_at = 4096 + (4 % slots) * 256 + 136;
    file.write_all_at(&(u64::MAX - 8).to_le_bytes(), payload_at)
        .unwrap();
    let text = first_error(&dir, "mode=sequential start=60000000000");
    assert!(
        text.contains("frame 4") && text.contains("payload of"),
        "{text}"
    );
}

#[test]
fn a_ring_of_units_claiming_raw_caps_is_an_error_not_frames_of_the_wrong_size() {
    init();
    let dir = TestDir::new("units-rawcaps");
    let sizing = shmring_common::UnitSizing {
        history_ns: 1_000_000_000,
        bitrate: 1,
        fps: 30.0,
    };
    let raw =
        "video/x-raw, format=(string)GRAY8, width=(int)8, height=(int)8, framerate=(fraction)30/1";
    let mut w =
        shmring_common::UnitWriter::create(&dir.ring("u"), &sizing, 0o600, Some(raw.into()))
            .unwrap();
    w.write(&shmring_common::FrameMeta::default(), &[0; 64])
        .unwrap();
    let text = first_error(&dir, "");
    assert!(
        text.contains("holds encoded units but carries caps of raw video"),
        "{text}"
    );
}

#[test]
fn a_bitrate_or_history_no_ring_can_hold_is_an_error_that_says_so() {
    init();
    for props in [
        "bitrate=18446744073709551615",
        "history=18446744073709551615",
        "history=3600000000000", // an hour at 30 fps: more units than a ring has
    ] {
        let dir = TestDir::new("units-sizing-el");
        let (mut w, bus) = sink_with_bus(&dir, props);
        w.set_src_caps(h264(1));
        assert!(w.push(unit(0, 5)).is_err(), "{props}: no ring, no unit");
        let text = error_text(&bus);
        assert!(
            text.contains("Cannot create ring") && text.contains("invalid ring geometry"),
            "{props}: {text}"
        );
    }
}

/// What the ring named `u` in `dir` holds now: units or frames, its epoch, its head and
/// its caps.
fn ring_now(dir: &TestDir) -> (bool, u64, u64, String) {
    let r = shmring_common::RingReader::open(&dir.ring("u")).unwrap();
    let caps = r
        .current_caps()
        .unwrap()
        .map(|(_, c)| c)
        .unwrap_or_default();
    (r.holds_units(), r.epoch(), r.head(), caps)
}

/// A sink harness writing ring `u` in `dir` with `props`, and a bus for its errors.
fn sink_with_bus(dir: &TestDir, props: &str) -> (gst_check::Harness, gst::Bus) {
    let mut w = sink(dir, "u", props);
    let bus = gst::Bus::new();
    w.find_element("shmringsink").unwrap().set_bus(Some(&bus));
    (w, bus)
}

/// The text of the first error on `bus`, which must have one.
fn error_text(bus: &gst::Bus) -> String {
    let msg = bus
        .pop_filtered(&[gst::MessageType::Error])
        .expect("an element error");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    e.error().to_string()
}

#[test]
fn raw_and_encoded_caps_in_turn_replace_the_ring_under_its_name() {
    init();
    let dir = TestDir::new("units-switch");
    let mut w = sink(&dir, "u", "bitrate=1000000");
    w.set_src_caps(caps("GRAY8", 8, 8));
    for n in 0..3 {
        w.push(frame(64, n, n * 33)).unwrap();
    }
    let (units, frames_epoch, head, text) = ring_now(&dir);
    assert!(
        !units && head == 3 && text.starts_with("video/x-raw"),
        "{text}"
    );
    let frames_reader = shmring_common::RingReader::open(&dir.ring("u")).unwrap();

    w.set_src_caps(h264(1));
    w.push(unit(0, 5)).unwrap();
    let (units, units_epoch, head, text) = ring_now(&dir);
    assert!(
        units && head == 1 && text.starts_with("video/x-h264"),
        "{text}"
    );
    assert_ne!(units_epoch, frames_epoch);
    // A reader of the frames learns that its ring was replaced, and follows.
    assert_eq!(
        frames_reader.writer_status(),
        shmring_common::WriterStatus::Replaced
    );
    let units_reader = shmring_common::RingReader::open(&dir.ring("u")).unwrap();

    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 3, 99)).unwrap();
    let (units, epoch, head, text) = ring_now(&dir);
    assert!(
        !units && head == 1 && text.starts_with("video/x-raw"),
        "{text}"
    );
    assert!(epoch != units_epoch && epoch != frames_epoch);
    assert_eq!(
        units_reader.writer_status(),
        shmring_common::WriterStatus::Replaced
    );
}

#[test]
fn encoded_caps_whose_ring_cannot_be_made_leave_the_ring_of_frames_as_it_was() {
    init();
    let dir = TestDir::new("units-switch-fails");
    let (mut w, bus) = sink_with_bus(&dir, "bitrate=18446744073709551615");
    w.set_src_caps(caps("GRAY8", 8, 8));
    for n in 0..3 {
        w.push(frame(64, n, n * 33)).unwrap();
    }
    let before = ring_now(&dir);
    w.set_src_caps(h264(1));
    assert!(w.push(unit(0, 5)).is_err(), "no ring of units, no unit");
    let text = error_text(&bus);
    assert!(text.contains("Cannot create ring"), "{text}");
    // The frames written so far are still there, under the same ring, still live.
    assert_eq!(ring_now(&dir), before);
    let r = shmring_common::RingReader::open(&dir.ring("u")).unwrap();
    assert_eq!(r.writer_status(), shmring_common::WriterStatus::Live);
    // And still written: raw caps again, and the next frame goes into the same ring.
    w.set_src_caps(caps("GRAY8", 8, 8));
    w.push(frame(64, 3, 99)).unwrap();
    let (units, epoch, head, _) = ring_now(&dir);
    assert!(!units && epoch == before.1 && head == 4);
}

#[test]
fn raw_caps_whose_ring_cannot_be_made_leave_the_ring_of_units_as_it_was() {
    init();
    let dir = TestDir::new("units-switch-back-fails");
    let (mut w, bus) = sink_with_bus(&dir, "bitrate=1000000");
    w.set_src_caps(h264(1));
    for n in 0..3 {
        w.push(unit(n, 5)).unwrap();
    }
    let before = ring_now(&dir);
    // Frames of 2 GB: more than a slot can hold.
    w.set_src_caps(caps("GRAY8", 40000, 50000));
    assert!(
        w.push(frame(64, 3, 99)).is_err(),
        "no ring of frames, no frame"
    );
    let text = error_text(&bus);
    assert!(text.contains("Cannot replace ring"), "{text}");
    assert_eq!(ring_now(&dir), before);
    let r = shmring_common::RingReader::open(&dir.ring("u")).unwrap();
    assert_eq!(r.writer_status(), shmring_common::WriterStatus::Live);
    w.set_src_caps(h264(1));
    w.push(unit(3, 5)).unwrap();
    let (units, epoch, head, _) = ring_now(&dir);
    assert!(units && epoch == before.1 && head == 4);
}
