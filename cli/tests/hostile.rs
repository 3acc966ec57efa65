//! The `shmring` command against hostile rings and careless input: a ring whose frames
//! carry times at the ends of the range and commit times that go down, a stray name in
//! the ring directory, and `serve` given a password without a user, a ring without a
//! writer or a ring that goes away.

mod support;

use std::os::unix::fs::FileExt;
use std::process::Command;
use std::time::{Duration, Instant};

use shmring_common::layout::{Descriptor, DESCRIPTOR_OFFSET, DESCRIPTOR_SIZE};
use shmring_common::testing::TestDir;
use shmring_common::{FrameMeta, RingWriter, WriterConfig};
use support::*;

const CAPS: &str =
    "video/x-raw, format=(string)GRAY8, width=(int)8, height=(int)8, framerate=(fraction)30/1";

/// A ring whose frames carry the largest and smallest times, whose caps changed to text
/// no one can parse, and whose commit times go down from slot to slot.
fn hostile_ring(dir: &TestDir) -> RingWriter {
    let mut w = RingWriter::create(
        &dir.ring("hostile"),
        &WriterConfig {
            slots: 8,
            max_frame: 64,
            caps: Some(CAPS.into()),
            ..Default::default()
        },
    )
    .unwrap();
    for (n, t) in [0, 1, 1 << 63, u64::MAX - 1, u64::MAX, 0, 1, u64::MAX]
        .into_iter()
        .enumerate()
    {
        if n == 6 {
            w.set_caps("not caps at all").unwrap();
        }
        w.write(
            &FrameMeta {
                pts: Some(t),
                dts: Some(t),
                duration: Some(t),
                captured_at_ns: Some(t),
                flags: u32::MAX,
                ..Default::default()
            },
            &[n as u8; 64],
        )
        .unwrap();
    }
    // Commit times that go down: what a hostile writer's clock would leave.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path.join("hostile.ring"))
        .unwrap();
    let field = std::mem::offset_of!(Descriptor, commit_mono_ns) as u64;
    let now = shmring_common::monotonic_ns();
    for slot in 0..8u64 {
        let at = DESCRIPTOR_OFFSET + slot * DESCRIPTOR_SIZE + field;
        file.write_at(&(now - slot * 1_000_000).to_le_bytes(), at)
            .unwrap();
    }
    w
}

#[test]
fn every_subcommand_reads_a_hostile_ring_without_a_panic() {
    let dir = TestDir::new("cli-hostile");
    let _w = hostile_ring(&dir);
    // `shmring()` fails the test on a panic; each command either answers or says why
    // in one line.
    let ls = stdout(&shmring(&dir.path, &["ls"]));
    assert!(ls.contains("hostile"), "{ls}");
    let stat = stdout(&shmring(&dir.path, &["stat", "hostile", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&stat).unwrap();
    assert_eq!(v["head"], 8, "{v}");
    stdout(&shmring(&dir.path, &["stat", "hostile"]));
    stdout(&shmring(&dir.path, &["watch", "--count", "1"]));
    let watch = stdout(&shmring(&dir.path, &["watch", "--json", "--count", "1"]));
    assert!(watch.contains("\"hostile\""), "{watch}");
    let png = dir.path.join("grab.png");
    let grab = shmring(&dir.path, &["grab", "hostile", "-o", png.to_str().unwrap()]);
    // The newest frame's caps are not caps: a one-line error that says so.
    fails_with(&grab, "cannot parse");
    let mut exporter = Exporter::start(&dir);
    let (status, body) = http_get(&exporter.addr.to_string(), "/metrics").unwrap();
    assert!(status.contains("200"), "{status}");
    assert!(
        metric(&body, "shmring_frames_committed_total", "ring=\"hostile\"") == Some(8.0),
        "{body}"
    );
    assert!(exporter.alive(), "the exporter died: {}", exporter.log());
}

#[test]
fn grab_refuses_a_frame_whose_size_is_not_its_geometrys() {
    let dir = TestDir::new("cli-grab-size");
    let mut w = RingWriter::create(
        &dir.ring("liar"),
        &WriterConfig {
            slots: 4,
            max_frame: 64,
            caps: Some(CAPS.into()),
            ..Default::default()
        },
    )
    .unwrap();
    // 64 bytes that claim to be an 8x8 I420 frame (96 bytes), format number 2.
    let mut video = shmring_common::VideoLayout {
        format: 2,
        width: 8,
        height: 8,
        ..Default::default()
    };
    video.n_planes = 3;
    w.write(
        &FrameMeta {
            video,
            ..Default::default()
        },
        &[0; 64],
    )
    .unwrap();
    let png = dir.path.join("liar.png");
    let o = shmring(&dir.path, &["grab", "liar", "-o", png.to_str().unwrap()]);
    fails_with(&o, "has 64 bytes, a 8x8 I420 frame needs 96");
    assert!(!png.exists());
}

#[test]
fn gc_goes_past_a_stray_name_and_removes_every_dead_ring_after_it() {
    let dir = TestDir::new("cli-gc-stray");
    // Names sort "a b" < "dead": gc used to stop at the first.
    std::fs::write(dir.path.join("a b.ring"), b"not a ring").unwrap();
    {
        let mut dead = Writer::start(&dir, "dead", "video/x-raw,format=GRAY8,width=8,height=8");
        let _ = dead.0.kill();
        let _ = dead.0.wait();
    }
    let out = stdout(&shmring(&dir.path, &["gc"]));
    assert!(out.contains("a b: left alone"), "{out}");
    assert!(out.contains("removed dead"), "{out}");
    assert!(!dir.path.join("dead.ring").exists());
    assert!(dir.path.join("a b.ring").exists(), "gc removes only rings");
}

#[test]
fn serve_refuses_a_password_without_a_user() {
    let dir = TestDir::new("cli-serve-nouser");
    let pw = dir.path.join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let o = shmring(
        &dir.path,
        &["serve", "--password-file", pw.to_str().unwrap()],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--user"), "{err}");
    let o = Command::new(env!("CARGO_BIN_EXE_shmring"))
        .args(["--dir", dir.path.to_str().unwrap(), "serve", "--port", "0"])
        .env("SHMRING_SERVE_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a password in the environment, no user"
    );
    fails_with(&o, "needs --user");
}

#[test]
fn a_ring_without_writer_never_stalls_other_clients_and_removed_rings_are_unmounted() {
    let dir = TestDir::new("cli-serve-stall");
    let caps = "video/x-raw,format=I420,width=320,height=240";
    let _live = Writer::start(&dir, "live", caps);
    {
        let mut dead = Writer::start(&dir, "dead", caps);
        let _ = dead.0.kill(); // the ring stays, its writer gone
        let _ = dead.0.wait();
    }
    // A ring with a live writer that never writes a frame.
    let _silent = RingWriter::create(
        &dir.ring("silent"),
        &WriterConfig {
            slots: 4,
            max_frame: 320 * 240 * 3 / 2,
            caps: Some(format!("{caps},framerate=(fraction)30/1")),
            ..Default::default()
        },
    )
    .unwrap();
    let server = Server::start(&dir, &[], &[]);
    let t0 = Instant::now();
    let dead = Client::start(&server.url("dead"), "");
    let silent = Client::start(&server.url("silent"), "");
    let live = Client::start(&server.url("live"), "");
    live.more_than(10, Duration::from_secs(20))
        .expect("a live ring is served while two others cannot be");
    let err = dead.more_than(0, Duration::from_secs(20)).unwrap_err();
    // gst-rtsp-server answers a media it could not make with 400 (or 503).
    assert!(err.contains("400") || err.contains("503"), "{err}");
    let err = silent.more_than(0, Duration::from_secs(20)).unwrap_err();
    assert!(
        !err.contains("frames after"),
        "refused, not left waiting: {err}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "answers came in {:?}",
        t0.elapsed()
    );
    // The dead ring removed: its mount is taken down, so it is RTSP's 404 now.
    std::fs::remove_file(dir.path.join("dead.ring")).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let gone = Client::start(&server.url("dead"), "");
    let err = gone.more_than(0, Duration::from_secs(20)).unwrap_err();
    assert!(err.contains("Not found") || err.contains("404"), "{err}");
}
