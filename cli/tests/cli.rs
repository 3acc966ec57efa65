//! Every subcommand against real rings: one written by a running gst-launch-1.0 writer,
//! one whose writer was SIGKILLed.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmring_common::testing::TestDir;
use support::*;

#[test]
fn every_subcommand_on_live_and_dead_rings() {
    let dir = TestDir::new("cli");
    let _live = Writer::start(&dir, "live", "video/x-raw,format=NV12,width=320,height=240");
    {
        let mut dead = Writer::start(&dir, "dead", "video/x-raw,format=RGB,width=64,height=48");
        let _ = dead.0.kill(); // SIGKILL: the ring stays behind
        let _ = dead.0.wait();
    }

    let ls = stdout(&shmring(&dir.path, &["ls"]));
    let line = |name: &str| {
        ls.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not listed: {ls}"))
            .to_owned()
    };
    assert!(
        line("live").contains("live") && line("live").contains("NV12 320x240"),
        "{ls}"
    );
    assert!(
        line("dead").contains("dead") && line("dead").contains("RGB 64x48"),
        "{ls}"
    );

    // A reader of the live ring, which publishes its progress in the reader table.
    let mut reader = read_live(&dir, "");
    let listed = |json: &serde_json::Value| {
        json["readers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["pid"] == reader.id())
            .cloned()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let json: serde_json::Value = loop {
        let json: serde_json::Value =
            serde_json::from_str(&stdout(&shmring(&dir.path, &["stat", "live", "--json"])))
                .unwrap();
        if listed(&json).is_some_and(|r| r["received"].as_u64().unwrap() > 3) {
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "the reader never showed up with frames: {json}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let seen = listed(&json).unwrap();
    assert!(seen["behind"].as_u64().unwrap() <= 2, "{seen}");
    assert_eq!(json["writer_state"], "live");
    assert!(json["caps"].as_str().unwrap().contains("NV12"));
    assert!(json["slots"].as_u64().unwrap() >= 4);
    assert_eq!(
        json["payload_slots"].as_u64().unwrap(),
        json["slots"].as_u64().unwrap() + 8 + 4,
        "8 lease slots and 4 pool slots by default"
    );
    assert!(json["lease_budget"].as_u64().unwrap() <= 8);
    assert_eq!(json["layout"], "1.2");
    // videotestsrc fills the sink's pool of ring slots: its frames are not copied.
    let (committed, in_place) = (
        json["committed"].as_u64().unwrap(),
        json["committed_in_place"].as_u64().unwrap(),
    );
    assert!(
        in_place > 0 && in_place <= committed,
        "{in_place} of {committed} frames in place"
    );
    let fps = json["fps"].as_f64().unwrap();
    assert!((15.0..45.0).contains(&fps), "fps {fps}");
    let frames = json["latest_frames"].as_array().unwrap();
    assert!(!frames.is_empty());
    assert_eq!(frames[0]["len"], 320 * 240 * 3 / 2);
    let handle = frames[0]["handle"].as_str().unwrap().to_owned();
    let text = stdout(&shmring(&dir.path, &["stat", "live"]));
    assert!(
        text.contains("epoch") && text.contains("latest frames:"),
        "{text}"
    );

    let watch = stdout(&shmring(&dir.path, &["watch", "--count", "2", "live"]));
    assert_eq!(watch.matches("CAPTURE->NOW").count(), 2, "{watch}");
    assert!(watch.contains("IN PLACE"), "{watch}");
    assert!(
        watch.contains(&format!("pid {}", reader.id())),
        "watch lists the reader: {watch}"
    );
    let ls = stdout(&shmring(&dir.path, &["ls"]));
    assert!(ls.contains("READERS"), "{ls}");

    // A reader without an entry (as a group reader has none): counted, not listed.
    let mut copier = read_live(&dir, "zero-copy=false");
    let deadline = Instant::now() + Duration::from_secs(20);
    let json: serde_json::Value = loop {
        let json: serde_json::Value =
            serde_json::from_str(&stdout(&shmring(&dir.path, &["stat", "live", "--json"])))
                .unwrap();
        if json["reader_count"] == 2 {
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "the second reader was never counted: {json}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(json["readers"].as_array().unwrap().len(), 1, "{json}");
    let text = stdout(&shmring(&dir.path, &["stat", "live"]));
    assert!(
        text.contains("readers: 2, with an entry: 1") && text.contains("and 1 without an entry"),
        "{text}"
    );
    let ls = stdout(&shmring(&dir.path, &["ls"]));
    let row = ls.lines().find(|l| l.starts_with("live")).unwrap();
    assert!(row.trim_end().ends_with(" 2"), "READERS counts both: {ls}");
    let _ = copier.kill();
    let _ = copier.wait();
    let _ = reader.kill();
    let _ = reader.wait();
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&shmring(&dir.path, &["stat", "live", "--json"]))).unwrap();
    assert_eq!(
        json["reader_count"], 0,
        "killed readers are not counted: {json}"
    );

    let png = dir.path.join("latest.png");
    stdout(&shmring(
        &dir.path,
        &["grab", "live", "-o", png.to_str().unwrap()],
    ));
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
    let png2 = dir.path.join("named.png");
    let grabbed = shmring(
        &dir.path,
        &[
            "grab",
            "live",
            "--handle",
            &handle,
            "-o",
            png2.to_str().unwrap(),
        ],
    );
    // The named frame may have been overwritten meanwhile; either answer is a clear one.
    if grabbed.status.success() {
        assert_eq!(&std::fs::read(&png2).unwrap()[1..4], b"PNG");
    } else {
        fails_with(&grabbed, "is gone");
    }
    fails_with(
        &shmring(
            &dir.path,
            &["grab", "live", "--handle", "live:xyz:1", "-o", "/dev/null"],
        ),
        "invalid frame handle",
    );
    let rgb = dir.path.join("rgb.png");
    stdout(&shmring(
        &dir.path,
        &["grab", "dead", "-o", rgb.to_str().unwrap()],
    ));

    let dry = stdout(&shmring(&dir.path, &["gc", "--dry-run"]));
    assert!(
        dry.contains("would remove dead") && !dry.contains("live"),
        "{dry}"
    );
    assert!(dir.path.join("dead.ring").exists());
    let gc = stdout(&shmring(&dir.path, &["gc"]));
    assert!(gc.contains("removed dead"), "{gc}");
    assert!(!dir.path.join("dead.ring").exists());
    assert!(
        dir.path.join("live.ring").exists(),
        "a live ring is never collected"
    );
    assert!(stdout(&shmring(&dir.path, &["gc"])).contains("nothing to remove"));
}

#[test]
fn bad_arguments_and_bad_rings_are_one_line_errors() {
    let dir = TestDir::new("cli-bad");
    fails_with(&shmring(&dir.path, &["stat", "nosuch"]), "no ring at");
    fails_with(&shmring(&dir.path, &["stat", "../etc"]), "contains '/'");
    std::fs::write(dir.path.join("junk.ring"), vec![1u8; 8192]).unwrap();
    fails_with(&shmring(&dir.path, &["stat", "junk"]), "magic");
    fails_with(
        &shmring(&dir.path, &["grab", "junk", "--handle", "nonsense"]),
        "magic",
    );
    let ls = stdout(&shmring(&dir.path, &["ls"]));
    assert!(ls.contains("junk") && ls.contains("invalid"), "{ls}");
    let gc = stdout(&shmring(&dir.path, &["gc"]));
    assert!(gc.contains("left alone"), "{gc}");
    assert!(
        dir.path.join("junk.ring").exists(),
        "gc never removes what is not a ring"
    );
    let o = shmring(&dir.path, &["frobnicate"]);
    assert!(!o.status.success());
}

#[test]
fn metrics_move_with_the_frames_and_show_a_dead_writer() {
    let dir = TestDir::new("cli-metrics");
    let mut writer = Writer::start(&dir, "live", "video/x-raw,format=I420,width=320,height=240");
    let mut readers = [read_live(&dir, ""), read_live(&dir, "zero-copy=false")];
    let exporter = Exporter::start(&dir);
    let addr = exporter.addr.to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let scrape = || {
        let (status, body) = http_get(&addr, "/metrics")
            .unwrap_or_else(|e| panic!("{e}; the exporter said: {}", exporter.log()));
        assert!(status.contains("200"), "{status}");
        body
    };
    // Both readers attached and reading.
    let first = loop {
        let s = scrape();
        if metric(&s, "shmring_readers", "ring=\"live\"") == Some(2.0)
            && metric(&s, "shmring_reader_frames_received_total", "ring=\"live\"").unwrap_or(0.0)
                > 3.0
        {
            break s;
        }
        assert!(Instant::now() < deadline, "readers never showed: {s}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Every sample line is `name{labels} number`, every family typed.
    for line in first.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix('#') {
            assert!(
                rest.starts_with(" HELP ") || rest.starts_with(" TYPE ") || rest == " EOF",
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        assert!(series.ends_with('}') || !series.contains('{'), "{line}");
    }
    assert!(first.trim_end().ends_with("# EOF"));
    assert_eq!(
        metric(&first, "shmring_writer_up", "ring=\"live\""),
        Some(1.0)
    );
    assert_eq!(
        metric(&first, "shmring_readers_without_entry", "ring=\"live\""),
        Some(1.0)
    );
    assert_eq!(
        metric(&first, "shmring_writer_pid", "ring=\"live\""),
        Some(f64::from(writer.0.id()))
    );
    let committed = |s: &str| metric(s, "shmring_frames_committed_total", "ring=\"live\"").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let second = scrape();
    assert!(
        committed(&second) > committed(&first),
        "the counters move with the frames"
    );
    assert!(metric(&second, "shmring_frame_rate", "ring=\"live\"").unwrap() > 20.0);
    // The writer SIGKILLed: the ring shows it dead.
    let _ = writer.0.kill();
    let _ = writer.0.wait();
    // A scrape is reused for a quarter of a second: the death shows in the next.
    let third = loop {
        let s = scrape();
        if metric(&s, "shmring_writer_up", "ring=\"live\"") == Some(0.0) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never showed dead: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        metric(&third, "shmring_writer_state", "state=\"dead\""),
        Some(1.0),
        "{third}"
    );
    assert!(http_get(&addr, "/other").unwrap().0.contains("404"));
    for r in &mut readers {
        let _ = r.kill();
        let _ = r.wait();
    }
}

#[test]
fn watch_json_lines_say_what_stat_json_says() {
    let dir = TestDir::new("cli-watch");
    let _writer = Writer::start(&dir, "live", "video/x-raw,format=GRAY8,width=64,height=48");
    let out = stdout(&shmring(&dir.path, &["watch", "--json", "--count", "2"]));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    let stat: serde_json::Value =
        serde_json::from_str(&stdout(&shmring(&dir.path, &["stat", "live", "--json"]))).unwrap();
    let watched = &lines[1]["rings"][0];
    for field in [
        "ring",
        "epoch",
        "writer_pid",
        "writer_state",
        "slots",
        "total_size",
        "caps",
    ] {
        assert_eq!(watched[field], stat[field], "{field}: {watched} vs {stat}");
    }
    let committed = |v: &serde_json::Value| v["committed"].as_u64().unwrap();
    assert!(
        committed(&lines[0]["rings"][0]) < committed(watched),
        "a second apart"
    );
    assert!(committed(watched) <= committed(&stat));
    assert!(lines[1]["time_ns"].as_u64().unwrap() > lines[0]["time_ns"].as_u64().unwrap());
}

#[test]
fn gc_older_than_leaves_recently_dead_rings_alone() {
    let dir = TestDir::new("cli-gc");
    {
        let mut dead = Writer::start(&dir, "dead", "video/x-raw,format=GRAY8,width=64,height=48");
        let _ = dead.0.kill();
        let _ = dead.0.wait();
    }
    let out = stdout(&shmring(&dir.path, &["gc", "--older-than", "1h"]));
    assert!(out.contains("less than --older-than"), "{out}");
    assert!(dir.path.join("dead.ring").exists());
    std::thread::sleep(Duration::from_millis(1200));
    let out = stdout(&shmring(&dir.path, &["gc", "--older-than", "1s"]));
    assert!(out.contains("removed dead"), "{out}");
    assert!(!dir.path.join("dead.ring").exists());
}

#[test]
fn serve_shares_one_encoder_follows_a_restarted_writer_and_knows_no_other_ring() {
    let dir = TestDir::new("cli-serve");
    let mut writer = Writer::start(&dir, "live", "video/x-raw,format=I420,width=320,height=240");
    let server = Server::start(&dir, &[], &[]);
    let (a, b) = (
        Client::start(&server.url("live"), ""),
        Client::start(&server.url("live"), ""),
    );
    a.more_than(10, Duration::from_secs(20)).unwrap();
    b.more_than(10, Duration::from_secs(20)).unwrap();
    let stat: serde_json::Value =
        serde_json::from_str(&stdout(&shmring(&dir.path, &["stat", "live", "--json"]))).unwrap();
    assert_eq!(
        stat["reader_count"], 1,
        "two clients, one shared media: {stat}"
    );
    // The writer SIGKILLed and started again: the clients carry on.
    let _ = writer.0.kill();
    let _ = writer.0.wait();
    std::fs::remove_file(dir.path.join("live.ring")).ok();
    let _writer = Writer::start(&dir, "live", "video/x-raw,format=I420,width=320,height=240");
    let before = a.frames();
    a.more_than(before + 30, Duration::from_secs(30))
        .expect("frames of the restarted writer reach the client");
    // A ring that does not exist is RTSP's 404.
    let lost = Client::start(&server.url("nothing-here"), "");
    let err = lost.more_than(0, Duration::from_secs(20)).unwrap_err();
    assert!(err.contains("Not found") || err.contains("404"), "{err}");
}

#[test]
fn serve_with_a_user_refuses_a_client_without_the_password() {
    let dir = TestDir::new("cli-serve-auth");
    let _writer = Writer::start(&dir, "live", "video/x-raw,format=I420,width=320,height=240");
    let server = Server::start(
        &dir,
        &["--user", "op"],
        &[("SHMRING_SERVE_PASSWORD", "s3cret")],
    );
    let refused = Client::start(&server.url("live"), "");
    let err = refused.more_than(0, Duration::from_secs(20)).unwrap_err();
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
    let wrong = Client::start(&server.url("live"), "user-id=op user-pw=guess");
    assert!(wrong.more_than(0, Duration::from_secs(20)).is_err());
    let allowed = Client::start(&server.url("live"), "user-id=op user-pw=s3cret");
    allowed.more_than(10, Duration::from_secs(20)).unwrap();
}

#[test]
fn a_writer_stopped_as_the_units_stop_it_leaves_no_ring_and_gc_cleans_after_sigterm() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let dir = TestDir::new("cli-stop");
    let start = |ring: &str| {
        let w = Command::new("gst-launch-1.0")
            .args([
                "-q",
                "-e",
                "videotestsrc",
                "is-live=true",
                "!",
                "shmringsink",
            ])
            .arg(format!("ring={ring}"))
            .env("GST_PLUGIN_PATH", plugin_dir())
            .env("SHMRING_DIR", &dir.path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let path = dir.path.join(format!("{ring}.ring"));
        // Frames written, not only the ring made: gst-launch-1.0 1.22 deadlocks on a
        // SIGINT while a live pipeline is still prerolling (basesrc's EOS waits for the
        // stream lock the sink holds in its preroll wait, and the state change to
        // PLAYING that would free it waits for the state lock that EOS holds).
        let deadline = Instant::now() + Duration::from_secs(20);
        let written = || {
            let out = shmring(&dir.path, &["stat", ring, "--json"]);
            serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v["head"].as_u64())
                .unwrap_or(0)
        };
        while written() < 3 {
            assert!(Instant::now() < deadline, "no frames in ring {ring}");
            std::thread::sleep(Duration::from_millis(20));
        }
        (w, path)
    };
    // KillSignal=SIGINT, as the example units stop writers: EOS, then a clean exit.
    let (mut w, path) = start("unit");
    kill(Pid::from_raw(w.id() as i32), Signal::SIGINT).unwrap();
    assert!(w.wait().unwrap().success());
    assert!(!path.exists(), "a clean stop removes the ring");
    // systemd's default SIGTERM: gst-launch-1.0 dies with the ring left behind, which
    // the units' ExecStopPost (shmring gc) removes.
    let (mut w, path) = start("term");
    kill(Pid::from_raw(w.id() as i32), Signal::SIGTERM).unwrap();
    let _ = w.wait();
    assert!(path.exists(), "SIGTERM leaves the ring");
    let out = stdout(&shmring(&dir.path, &["gc"]));
    assert!(out.contains("removed term"), "{out}");
    assert!(!path.exists());
}

#[test]
fn the_grafana_dashboard_asks_only_for_metrics_the_exporter_has() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/grafana/shmring.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exported =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/metrics.rs")).unwrap();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(name) = word.strip_prefix("shmring_") {
                    let base = name.trim_end_matches("_total");
                    assert!(
                        exported.contains(&format!("\"shmring_{base}\"")),
                        "the dashboard asks for {word}, which shmring metrics does not export"
                    );
                    asked += 1;
                }
            }
        }
    }
    assert!(asked >= 8);
}

/// The writer of an encoded ring: 30 fps H.264 at about 400 kbit/s, a keyframe every
/// 15 frames.
const H264: &str = "video/x-raw,width=320,height=240,framerate=30/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=400 \
    ! video/x-h264";

#[test]
fn an_encoded_ring_shows_its_bit_rate_gop_and_history_everywhere() {
    let dir = TestDir::new("cli-units");
    let _w = Writer::start(&dir, "cam-h264", H264);
    let deadline = Instant::now() + Duration::from_secs(30);
    // Two seconds of units: several GOPs, a bit rate to measure.
    let json: serde_json::Value = loop {
        let out = shmring(&dir.path, &["stat", "cam-h264", "--json"]);
        if out.status.success() {
            let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            if json["history_s"].as_f64().unwrap_or(0.0) > 2.0 {
                break json;
            }
        }
        assert!(Instant::now() < deadline, "no encoded history");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(json["kind"], "units");
    assert_eq!(json["gop"], 15, "{json}");
    let bitrate = json["bitrate"].as_f64().unwrap();
    assert!((50e3..2e6).contains(&bitrate), "{bitrate} bit/s");
    assert!(json["caps"].as_str().unwrap().starts_with("video/x-h264"));
    let ls = stdout(&shmring(&dir.path, &["ls"]));
    assert!(ls.contains("H264 ") && ls.contains("gop 15"), "{ls}");

    let exporter = Exporter::start(&dir);
    let (status, body) = http_get(&exporter.addr.to_string(), "/metrics").unwrap();
    assert!(status.contains("200"), "{status}");
    let ring = "ring=\"cam-h264\"";
    assert_eq!(
        metric(&body, "shmring_gop_units", ring),
        Some(15.0),
        "{body}"
    );
    assert!(metric(&body, "shmring_bitrate_bits_per_second", ring).unwrap() > 50e3);
    assert!(metric(&body, "shmring_history_seconds", ring).unwrap() > 2.0);
}

#[test]
fn serve_sends_an_encoded_ring_as_it_is_without_an_encoder() {
    let dir = TestDir::new("cli-serve-units");
    let _w = Writer::start(&dir, "cam-h264", H264);
    let server = Server::start(&dir, &[], &[]);
    let client = Client::start(&server.url("cam-h264"), "");
    client.more_than(30, Duration::from_secs(30)).unwrap();
    let log = server.log();
    assert!(
        log.contains("/cam-h264: H264 from the ring, served as it is (no encoder)"),
        "{log}"
    );
}
