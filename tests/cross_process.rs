//! Writers and readers in separate processes: `gst-launch-1.0` pipelines (the way users
//! run them) against each other and against a reader pipeline in this test process.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use shmring_common::testing::TestDir;

#[path = "support/processes.rs"]
mod processes;
use processes::*;

const WRITER: &str = "videotestsrc is-live=true ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! shmringsink";

fn writer(dir: &TestDir, ring: &str, extra: &str) -> Launch {
    Launch::start(dir, &format!("{WRITER} ring={ring} {extra}"))
}

/// A reader pipeline in this process that counts buffers and DISCONTs.
struct Counter {
    pipeline: gst::Element,
    frames: Arc<AtomicU64>,
    disconts: Arc<AtomicU64>,
}

impl Counter {
    fn start(dir: &TestDir, ring: &str, mode: &str) -> Self {
        init();
        let pipeline = gst::parse::launch(&format!(
            "shmringsrc name=src ring={ring} dir={} mode={mode} ! fakesink name=out signal-handoffs=true sync=false",
            dir.path.display()
        ))
        .unwrap();
        let frames = Arc::new(AtomicU64::new(0));
        let disconts = Arc::new(AtomicU64::new(0));
        let bin = pipeline.downcast_ref::<gst::Bin>().unwrap();
        let (f, d) = (frames.clone(), disconts.clone());
        bin.by_name("out")
            .unwrap()
            .connect("handoff", false, move |args| {
                let buf = args[1].get::<gst::Buffer>().unwrap();
                f.fetch_add(1, Ordering::SeqCst);
                if buf.flags().contains(gst::BufferFlags::DISCONT) {
                    d.fetch_add(1, Ordering::SeqCst);
                }
                None
            });
        pipeline.set_state(gst::State::Playing).unwrap();
        Counter {
            pipeline,
            frames,
            disconts,
        }
    }

    fn frames(&self) -> u64 {
        self.frames.load(Ordering::SeqCst)
    }

    fn wait_for(&self, n: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.frames() < n {
            if Instant::now() > deadline {
                return false;
            }
            if let Some(msg) = self
                .pipeline
                .bus()
                .unwrap()
                .pop_filtered(&[gst::MessageType::Error])
            {
                panic!("reader error: {msg:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    fn stat(&self, field: &str) -> u64 {
        let src = self
            .pipeline
            .downcast_ref::<gst::Bin>()
            .unwrap()
            .by_name("src")
            .unwrap();
        src.property::<gst::Structure>("stats")
            .get::<u64>(field)
            .unwrap()
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[test]
fn reader_started_before_the_writer_gets_its_frames() {
    let dir = TestDir::new("xp-first");
    let reader = Launch::start(&dir, "shmringsrc ring=early num-buffers=30 ! fakesink");
    std::thread::sleep(Duration::from_millis(500));
    let _w = writer(&dir, "early", "");
    reader.finish(Duration::from_secs(20));
}

#[test]
fn a_killed_writer_is_replaced_and_the_reader_carries_on() {
    let dir = TestDir::new("xp-kill");
    let mut w1 = writer(&dir, "phoenix", "");
    let reader = Counter::start(&dir, "phoenix", "sequential");
    assert!(
        reader.wait_for(20, Duration::from_secs(20)),
        "no frames from the first writer"
    );
    w1.kill(); // SIGKILL: no chance to close the ring
    std::thread::sleep(Duration::from_millis(300));
    let before = reader.frames();
    let _w2 = writer(&dir, "phoenix", "");
    assert!(
        reader.wait_for(before + 30, Duration::from_secs(20)),
        "reader never got the new writer's frames"
    );
    assert!(reader.stat("reattaches") >= 1);
    assert!(
        reader.disconts.load(Ordering::SeqCst) >= 2,
        "first frame and the re-attach are DISCONT"
    );
    assert!(!dir.path.join(".phoenix.ring").exists());
}

/// The handle of the newest frame of ring `ring`, once it has a frame and an epoch
/// other than `not_epoch`.
fn newest_handle(dir: &TestDir, ring: &str, not_epoch: u64) -> shmring_common::Handle {
    let loc = shmring_common::RingLocation::parse(ring, Some(&dir.path)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = shmring_common::RingReader::open_for_inspection(&loc) {
            if r.epoch() != not_epoch && r.head() > 0 {
                return shmring_common::Handle {
                    ring: ring.to_owned(),
                    epoch: r.epoch(),
                    seq: r.head(),
                };
            }
        }
        assert!(Instant::now() < deadline, "no frame in ring {ring}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asks `reader` (mode=handle) for `handle`: the status it answers.
fn request(reader: &Counter, handle: &shmring_common::Handle) -> String {
    let bin = reader.pipeline.downcast_ref::<gst::Bin>().unwrap();
    let src = bin.by_name("src").unwrap();
    let text = handle.to_string();
    assert!(src.emit_by_name::<bool>("request-frame", &[&text]));
    let bus = reader.pipeline.bus().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Element, gst::MessageType::Error],
        ) else {
            continue;
        };
        if let gst::MessageView::Error(e) = msg.view() {
            panic!("reader error: {}", e.error());
        }
        let s = msg.structure().unwrap();
        if s.name() == "shmringsrc-handle" && s.get::<String>("handle").unwrap() == text {
            return s.get::<String>("status").unwrap();
        }
    }
    panic!("no answer for {text}");
}

#[test]
fn handle_mode_follows_a_writer_killed_and_restarted_and_ends_at_its_eos() {
    let dir = TestDir::new("xp-handle");
    let mut w = writer(&dir, "h", "");
    let reader = Counter::start(&dir, "h", "handle timeout=100000000");
    let first = newest_handle(&dir, "h", 0);
    assert_eq!(request(&reader, &first), "delivered");
    assert!(reader.wait_for(1, Duration::from_secs(10)));
    w.kill(); // SIGKILL
    let _w = writer(&dir, "h", "");
    let second = newest_handle(&dir, "h", first.epoch);
    assert_eq!(
        request(&reader, &second),
        "delivered",
        "the new writer's frame"
    );
    assert!(reader.wait_for(2, Duration::from_secs(10)));
    assert_eq!(
        request(&reader, &first),
        "gone",
        "the dead writer's frames are gone"
    );
    drop(_w);
    // A writer that ends its stream ends the reader's.
    let eos = Launch::start(
        &dir,
        "videotestsrc num-buffers=30 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! shmringsink ring=h",
    );
    let third = newest_handle(&dir, "h", second.epoch);
    assert_eq!(request(&reader, &third), "delivered");
    eos.finish(Duration::from_secs(30));
    let bus = reader.pipeline.bus().unwrap();
    let ended = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(10),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    assert!(
        matches!(
            ended.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "the writer's EOS did not end the handle reader: {ended:?}"
    );
}

#[test]
fn a_real_video_sink_under_xvfb_shows_frames_without_a_warning() {
    let dir = TestDir::new("xp-ximage");
    let _w = writer(&dir, "x", "");
    let mut cmd = Command::new("xvfb-run");
    // The queue gives ximagesink a streaming thread of its own. Debian 12's arm64
    // ximagesink (GStreamer 1.22) selects XInput events with a mask it never clears
    // on the stack, so it fails with BadValue in whichever thread left bits there
    // (its object code sets one bit of the stack byte and sends it; docs/testing.md).
    // The allocation query still travels from ximagesink to shmringsrc.
    cmd.args([
        "-a",
        "gst-launch-1.0",
        "-q",
        "shmringsrc",
        "ring=x",
        "num-buffers=30",
        "!",
        "queue",
        "!",
        "videoconvert",
        "!",
        "ximagesink",
    ])
    .env("G_DEBUG", "fatal_warnings");
    Launch::spawn(&dir, cmd).finish(Duration::from_secs(60));
}

#[test]
fn a_slow_reader_does_not_slow_a_fast_one() {
    let dir = TestDir::new("xp-slow");
    let _w = writer(&dir, "shared", "");
    // 300 ms per frame: shmsrc would stall the writer and every reader to ~3 fps.
    let _slow = Launch::start(
        &dir,
        "shmringsrc ring=shared ! identity sleep-time=300000 ! fakesink",
    );
    let fast = Counter::start(&dir, "shared", "latest");
    assert!(fast.wait_for(5, Duration::from_secs(20)));
    let start = Instant::now();
    let n0 = fast.frames();
    std::thread::sleep(Duration::from_secs(3));
    let rate = (fast.frames() - n0) as f64 / start.elapsed().as_secs_f64();
    // 30 fps source; a stalled reader would be near 3. Loose bound for a busy machine.
    assert!(
        rate > 20.0,
        "fast reader got {rate:.1} fps beside a slow one"
    );
}

#[test]
fn three_readers_share_one_ring() {
    let dir = TestDir::new("xp-three");
    let _w = writer(&dir, "fanout", "");
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let mode = ["latest", "sequential", "latest"][i];
            Launch::start(
                &dir,
                &format!(
                    "shmringsrc ring=fanout mode={mode} num-buffers=45 ! videoconvert ! fakesink"
                ),
            )
        })
        .collect();
    for r in readers {
        r.finish(Duration::from_secs(30));
    }
}

#[test]
fn writer_eos_ends_every_reader_cleanly() {
    let dir = TestDir::new("xp-eos");
    let readers: Vec<_> = (0..2)
        .map(|_| Launch::start(&dir, "shmringsrc ring=finite mode=sequential ! fakesink"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let w = Launch::start(&dir, "videotestsrc num-buffers=60 is-live=true ! video/x-raw,width=64,height=48,framerate=30/1 ! shmringsink ring=finite");
    w.finish(Duration::from_secs(20));
    for r in readers {
        r.finish(Duration::from_secs(10));
    }
}

#[test]
fn a_ring_truncated_under_its_elements_is_an_error_for_each_not_a_crash() {
    let dir = TestDir::new("xp-cut");
    let w = Launch::start(
        &dir,
        "videotestsrc is-live=true ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! shmringsink ring=cut",
    );
    // videoconvert reads every byte of the leased buffers.
    let reader = Launch::start(
        &dir,
        "shmringsrc ring=cut ! videoconvert ! video/x-raw,format=BGRx ! fakesink",
    );
    let counter = Counter::start(&dir, "cut", "latest");
    assert!(counter.wait_for(30, Duration::from_secs(20)));
    drop(counter);

    std::fs::File::options()
        .write(true)
        .open(dir.path.join("cut.ring"))
        .unwrap()
        .set_len(0)
        .unwrap();

    let said = w.fail(Duration::from_secs(20));
    assert!(
        said.contains("cut.ring was truncated by another process under the writer"),
        "{said}"
    );
    let said = reader.fail(Duration::from_secs(20));
    assert!(
        said.contains("cut.ring was truncated by another process under the reader"),
        "{said}"
    );
}

#[test]
fn the_sigbus_guard_says_it_is_there_and_an_application_can_turn_it_off() {
    use std::os::unix::process::ExitStatusExt;
    let dir = TestDir::new("xp-guard");
    let _w = writer(&dir, "g", "");
    let reader = |guard: Option<&str>| {
        let mut cmd = Command::new("gst-launch-1.0");
        cmd.args(
            "-q shmringsrc ring=g ! videoconvert ! video/x-raw,format=BGRx ! fakesink".split(' '),
        )
        .env("GST_DEBUG", "shmringsrc:4")
        .env("GST_DEBUG_NO_COLOR", "1");
        if let Some(v) = guard {
            cmd.env("SHMRING_SIGBUS_GUARD", v);
        }
        Launch::spawn(&dir, cmd)
    };
    let (mut guarded, mut unguarded) = (reader(None), reader(Some("0")));
    let counter = Counter::start(&dir, "g", "latest");
    assert!(counter.wait_for(30, Duration::from_secs(20)));
    drop(counter);
    std::fs::File::options()
        .write(true)
        .open(dir.path.join("g.ring"))
        .unwrap()
        .set_len(0)
        .unwrap();
    let (status, said) = guarded.wait(Duration::from_secs(20));
    assert_eq!(status.signal(), None, "{said}");
    assert!(said.contains("installed a SIGBUS handler"), "{said}");
    let (status, said) = unguarded.wait(Duration::from_secs(20));
    assert!(said.contains("no SIGBUS handler"), "{said}");
    assert_eq!(
        status.signal(),
        Some(7), // SIGBUS, on x86_64 and aarch64 alike
        "without the guard a truncation kills, as it did before: {said}"
    );
}

#[test]
fn a_recorder_started_by_an_event_writes_the_seconds_before_it() {
    let dir = TestDir::new("xp-record");
    let _w = writer(&dir, "ev", "history=4000000000");
    std::thread::sleep(Duration::from_secs(3)); // three seconds of history
    let out = dir.path.join("event.mp4");
    let mut cmd = Command::new(repo_file("examples/pipelines/record-on-event.sh"));
    cmd.args(["ev", "2", out.to_str().unwrap()]);
    let recorder = Launch::spawn(&dir, cmd);
    // And a second after the event; under emulation the encoder needs longer to get
    // through the look-back, which the ring's four seconds still hold.
    std::thread::sleep(Duration::from_secs(1) * shmring_common::testing::slowdown());
    interrupt(&recorder);
    recorder.finish(Duration::from_secs(30));
    // About two seconds before the event and one after: far more than one second.
    init();
    let count = Arc::new(AtomicU64::new(0));
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! fakesink name=out signal-handoffs=true",
        out.display()
    ))
    .unwrap();
    let c = count.clone();
    pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("out")
        .unwrap()
        .connect("handoff", false, move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            None
        });
    play_to_eos(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    let frames = count.load(Ordering::SeqCst);
    eprintln!("record-on-event: {frames} frames recorded");
    assert!(
        frames >= 60,
        "only {frames} frames: the seconds before the event are missing"
    );
}

#[test]
fn three_cameras_side_by_side_by_capture_time_run_from_the_example() {
    let dir = TestDir::new("xp-aligned");
    let _cams: Vec<Launch> = (1..=3)
        .map(|i| writer(&dir, &format!("cam{i}"), ""))
        .collect();
    let mut cmd = Command::new(repo_file("examples/pipelines/aligned-three.sh"));
    cmd.arg("fakesink");
    let mut aligned = Launch::spawn(&dir, cmd);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        aligned.0.try_wait().unwrap().is_none(),
        "aligned-three.sh stopped early"
    );
    interrupt(&aligned);
    aligned.finish(Duration::from_secs(20));
}

#[test]
fn the_python_application_gets_frames_by_handle() {
    let dir = TestDir::new("xp-python");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(repo_file("examples/python/handles.py"));
    Launch::spawn(&dir, cmd).finish(Duration::from_secs(60));
}

#[test]
fn the_rust_application_gets_frames_by_handle() {
    let dir = TestDir::new("xp-rust");
    // cargo test builds the examples next to the test binaries.
    let exe = plugin_dir().join("examples/handles");
    assert!(exe.exists(), "{} not built", exe.display());
    Launch::spawn(&dir, Command::new(exe)).finish(Duration::from_secs(60));
}

#[test]
fn a_ring_forwarded_over_rtp_becomes_a_ring_again() {
    let dir = TestDir::new("xp-rtp");
    let port = (30000 + std::process::id() % 20000).to_string();
    let script = repo_file("examples/pipelines/forward-rtp.sh");
    let _w = writer(&dir, "here", "");
    let mut receive = Command::new(&script);
    receive.args(["receive", &port, "there"]);
    let _receiver = Launch::spawn(&dir, receive);
    let mut send = Command::new(&script);
    send.args(["send", "here", "127.0.0.1", &port]);
    let _sender = Launch::spawn(&dir, send);
    let reader = Launch::start(&dir, "shmringsrc ring=there num-buffers=30 ! fakesink");
    reader.finish(Duration::from_secs(60));
}

/// SHA-1 (as checksumsink prints it) of every frame `pipeline` makes at an appsink.
fn frame_hashes(pipeline: &str) -> Vec<String> {
    init();
    let p = gst::parse::launch(&format!(
        "{pipeline} ! fakesink name=out signal-handoffs=true sync=false"
    ))
    .unwrap();
    let hashes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = hashes.clone();
    p.downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("out")
        .unwrap()
        .connect("handoff", false, move |args| {
            let buf = args[1].get::<gst::Buffer>().unwrap();
            let map = buf.map_readable().unwrap();
            let sum = glib::compute_checksum_for_data(glib::ChecksumType::Sha1, &map).unwrap();
            h.lock().unwrap().push(sum.to_string());
            None
        });
    play_to_eos(&p);
    p.set_state(gst::State::Null).unwrap();
    let hashes = hashes.lock().unwrap().clone();
    hashes
}

#[test]
fn frames_written_in_place_reach_another_process_byte_for_byte() {
    let frames = "videotestsrc pattern=ball num-buffers=90 ! video/x-raw,format=GRAY8,width=64,height=48,framerate=30/1";
    let live = frames.replace("videotestsrc", "videotestsrc is-live=true");
    assert_written_in_place_and_read_elsewhere("inplace-xproc", frames, &live, 90);
}

#[test]
fn a_decoder_writes_its_frames_straight_into_the_ring() {
    init();
    let dir = TestDir::new("decoder-xproc");
    // 240 rows are whole macroblocks: avdec_h264 used to push frames of its own pool
    // (a VideoMeta was allowed downstream), which the sink then copied.
    let file = dir.path.join("clip.mkv");
    let encode = gst::parse::launch(&format!(
        "videotestsrc pattern=ball num-buffers=60 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
         ! x264enc speed-preset=ultrafast key-int-max=30 ! h264parse ! matroskamux ! filesink location={}",
        file.display()
    ))
    .expect("x264enc (gstreamer1.0-plugins-ugly) and matroskamux are installed");
    play_to_eos(&encode);
    encode.set_state(gst::State::Null).unwrap();
    let decode = format!(
        "filesrc location={} ! matroskademux ! h264parse ! avdec_h264",
        file.display()
    );
    assert_written_in_place_and_read_elsewhere("decoder-xproc-ring", &decode, &decode, 60);
}

/// Plays `written` (which makes the frames of `frames`, paced by the sink's clock) into
/// a shmringsink in this process, and checks that every frame went into the ring in
/// place and that a gst-launch reader got, in order, only frames among them, byte for
/// byte.
fn assert_written_in_place_and_read_elsewhere(name: &str, frames: &str, written: &str, n: usize) {
    init();
    let dir = TestDir::new(name);
    let expected = frame_hashes(frames);
    assert_eq!(expected.len(), n);
    // The writer in this process, so that its statistics can be read.
    let writer = gst::parse::launch(&format!(
        "{written} ! shmringsink name=sink ring=ipx dir={}",
        dir.path.display()
    ))
    .unwrap();
    let mut reader = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "shmringsrc",
            "ring=ipx",
            "mode=sequential",
            "!",
            "checksumsink",
        ])
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("SHMRING_DIR", &dir.path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("gst-launch-1.0 runs");
    // The reader starts up and waits for the ring: a sequential reader attached late
    // would miss the first frames, which only its start-up decides.
    std::thread::sleep(Duration::from_millis(500) * shmring_common::testing::slowdown());
    play_to_eos(&writer);
    let stats = writer
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("sink")
        .unwrap()
        .property::<gst::Structure>("stats");
    writer.set_state(gst::State::Null).unwrap();
    assert_eq!(stats.get::<u64>("frames").unwrap(), n as u64);
    assert_eq!(
        stats.get::<u64>("frames-in-place").unwrap(),
        n as u64,
        "upstream filled the sink's pool of ring slots"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while reader.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = reader.kill();
            panic!("the reader did not end after the writer's EOS");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    use std::io::Read;
    reader
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let got: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(got.len() >= n * 8 / 9, "{} frames read of {n}", got.len());
    // In order, each exactly one of the frames written.
    let mut at = 0;
    for h in &got {
        at += expected[at..]
            .iter()
            .position(|e| e == h)
            .unwrap_or_else(|| panic!("a frame that was never written: {h}"))
            + 1;
    }
}
