//! gst-check tests of frames read and written in place: leased buffers, the ring pool
//! proposed upstream, relays straight into the next ring, and a sink paced by the clock.

mod support;

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_check::Harness;
use shmring_common::testing::TestDir;
use support::*;

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
