//! gst-check tests of the elements' lives: properties read from other threads, caps
//! and latency answers, prompt stops, flushes, errors that say why, clean stops and a
//! writer restarted.

mod support;

use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use shmring_common::testing::TestDir;
use std::str::FromStr;
use support::*;

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
