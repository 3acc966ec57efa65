//! gst-check tests of shmringsink and shmringsrc: formats, strides, metadata, modes,
//! handles, EOS and caps changes. Writer and reader map the ring separately, as two
//! processes would.

mod support;

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_check::Harness;
use shmring_common::testing::TestDir;
use support::*;

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
