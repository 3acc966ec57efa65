//! Behaviour of one writer and its readers in one process: modes, handles, caps, EOS,
//! takeover, and every check a reader makes of a file it did not write.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use shmring_common::testing::{check, fill, spawn_child_test, TestDir};
use shmring_common::*;

const NO_WAIT: Duration = Duration::ZERO;

fn config(slots: u32, max_frame: u64) -> WriterConfig {
    WriterConfig {
        slots,
        max_frame,
        caps: Some("video/x-raw,format=GRAY8,width=64,height=16".into()),
        ..Default::default()
    }
}

fn write_frames(w: &mut RingWriter, from: u64, to: u64, len: usize) {
    let mut buf = vec![0u8; len];
    for seq in from..=to {
        fill(&mut buf, seq);
        let meta = FrameMeta {
            pts: Some(seq * 1000),
            captured_at_ns: Some(seq * 7),
            ..Default::default()
        };
        assert_eq!(w.write(&meta, &buf).unwrap(), seq);
    }
}

fn vec_alloc(info: &FrameInfo) -> Vec<u8> {
    vec![0u8; info.len as usize]
}

fn expect_frame(n: Next<Vec<u8>>) -> Frame<Vec<u8>> {
    match n {
        Next::Frame(f) => f,
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[test]
fn latest_returns_the_newest_frame_and_counts_what_it_skipped() {
    let dir = TestDir::new("latest");
    let mut sut_w = RingWriter::create(&dir.ring("a"), &config(4, 1000)).unwrap();
    let mut sut = RingReader::open(&dir.ring("a")).unwrap();
    assert!(matches!(
        sut.latest(NO_WAIT, vec_alloc).unwrap(),
        Next::TimedOut
    ));
    write_frames(&mut sut_w, 1, 3, 1000);
    let f = expect_frame(sut.latest(NO_WAIT, vec_alloc).unwrap());
    assert_eq!(f.info.seq, 3);
    assert_eq!(f.info.pts, Some(3000));
    assert_eq!(f.info.captured_at_ns, 21);
    assert_eq!(f.info.epoch, sut_w.epoch());
    check(&f.data, 3).unwrap();
    assert!(
        matches!(sut.latest(NO_WAIT, vec_alloc).unwrap(), Next::TimedOut),
        "never the same frame twice"
    );
    write_frames(&mut sut_w, 4, 9, 1000);
    let f = expect_frame(sut.latest(NO_WAIT, vec_alloc).unwrap());
    assert_eq!((f.info.seq, f.missed), (9, 5));
    check(&f.data, 9).unwrap();
}

#[test]
fn next_returns_every_frame_in_order_and_reports_laps() {
    let dir = TestDir::new("next");
    let mut w = RingWriter::create(&dir.ring("a"), &config(4, 100)).unwrap();
    let mut sut = RingReader::open(&dir.ring("a")).unwrap();
    write_frames(&mut w, 1, 3, 100);
    for seq in 1..=3 {
        let f = expect_frame(sut.next(NO_WAIT, vec_alloc).unwrap());
        assert_eq!((f.info.seq, f.missed), (seq, 0));
        check(&f.data, seq).unwrap();
    }
    // Lap the reader: 10 frames into 4 slots; 4..=7 are gone, 8..=13? no: 4..=13 written.
    write_frames(&mut w, 4, 13, 100);
    let f = expect_frame(sut.next(NO_WAIT, vec_alloc).unwrap());
    assert_eq!(
        f.info.seq, 10,
        "oldest frame still in a 4-slot ring with head 13"
    );
    assert_eq!(f.missed, 6, "frames 4..=9 were lost");
    for seq in 11..=13 {
        assert_eq!(
            expect_frame(sut.next(NO_WAIT, vec_alloc).unwrap()).info.seq,
            seq
        );
    }
}

#[test]
fn a_sequential_reader_slower_than_the_writer_still_gets_frames() {
    // Copies take 2 ms; the writer commits every 0.5 ms into 8 slots. Aiming at the oldest
    // frame after a torn copy would leave 0.5 ms of headroom and tear forever; aiming at
    // the newest leaves 3.5 ms.
    let dir = TestDir::new("slowseq");
    let loc = dir.ring("s");
    let mut w = RingWriter::create(&loc, &config(8, 4096)).unwrap();
    let mut sut = RingReader::open(&loc).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        let mut seq = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            seq += 1;
            fill(&mut buf, seq);
            w.write(&FrameMeta::default(), &buf).unwrap();
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    let slow_alloc = |i: &FrameInfo| {
        std::thread::sleep(Duration::from_millis(2));
        vec![0u8; i.len as usize]
    };
    let mut got = 0;
    let start = Instant::now();
    while got < 20 && start.elapsed() < Duration::from_secs(20) {
        match sut.next(Duration::from_secs(1), slow_alloc).unwrap() {
            Next::Frame(f) => {
                check(&f.data, f.info.seq).unwrap();
                got += 1;
            }
            Next::TimedOut => {}
            other => panic!("{other:?}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(got, 20, "a slow sequential reader starved");
}

#[test]
fn handles_give_the_frame_or_say_gone_or_not_yet() {
    let dir = TestDir::new("handle");
    let mut w = RingWriter::create(&dir.ring("h"), &config(4, 64)).unwrap();
    let mut sut = RingReader::open(&dir.ring("h")).unwrap();
    write_frames(&mut w, 1, 6, 64);
    let h = w.handle(5);
    assert_eq!(h.to_string().parse::<Handle>().unwrap(), h);
    match sut.by_handle(&h, vec_alloc).unwrap() {
        ByHandle::Frame(f) => {
            assert_eq!(f.info.seq, 5);
            check(&f.data, 5).unwrap();
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sut.by_handle(&w.handle(1), vec_alloc).unwrap(),
        ByHandle::Gone
    ));
    assert!(matches!(
        sut.by_handle(&w.handle(7), vec_alloc).unwrap(),
        ByHandle::NotYet
    ));
    let other_epoch = Handle {
        epoch: w.epoch() ^ 1,
        ..w.handle(5)
    };
    assert!(matches!(
        sut.by_handle(&other_epoch, vec_alloc).unwrap(),
        ByHandle::Gone
    ));
}

#[test]
fn caps_versions_stay_readable_for_frames_written_with_them() {
    let dir = TestDir::new("caps");
    let mut w = RingWriter::create(&dir.ring("c"), &config(4, 64)).unwrap();
    let sut = RingReader::open(&dir.ring("c")).unwrap();
    assert_eq!(sut.current_caps().unwrap().unwrap().0, 1);
    let long = format!("video/x-raw,{}", "x".repeat(1400));
    let v2 = w.set_caps(&long).unwrap();
    assert_eq!(sut.caps(v2).unwrap().unwrap(), long);
    assert_eq!(
        sut.caps(1).unwrap().unwrap(),
        "video/x-raw,format=GRAY8,width=64,height=16"
    );
    let v3 = w.set_caps("video/x-raw,format=RGB").unwrap();
    assert_eq!(
        sut.caps(1).unwrap(),
        None,
        "version 1 was overwritten by version 3"
    );
    assert_eq!(
        sut.current_caps().unwrap().unwrap(),
        (v3, "video/x-raw,format=RGB".to_owned())
    );
    assert!(matches!(
        w.set_caps(&"y".repeat(2000)),
        Err(Error::CapsTooLong { .. })
    ));
}

#[test]
fn eos_comes_after_the_last_frame_and_close_wakes_waiters() {
    let dir = TestDir::new("eos");
    let mut w = RingWriter::create(&dir.ring("e"), &config(4, 64)).unwrap();
    let mut sut = RingReader::open(&dir.ring("e")).unwrap();
    write_frames(&mut w, 1, 2, 64);
    w.set_state(WriterState::Eos);
    assert_eq!(
        expect_frame(sut.next(NO_WAIT, vec_alloc).unwrap()).info.seq,
        1
    );
    assert_eq!(
        expect_frame(sut.next(NO_WAIT, vec_alloc).unwrap()).info.seq,
        2
    );
    assert!(matches!(sut.next(NO_WAIT, vec_alloc).unwrap(), Next::Eos));
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        let r = sut.next(Duration::from_secs(10), vec_alloc).unwrap();
        (
            matches!(r, Next::WriterGone(WriterStatus::Closed)),
            t.elapsed(),
        )
    });
    std::thread::sleep(Duration::from_millis(50));
    let path = w.location().path().to_owned();
    drop(w);
    let (gone, waited) = waiter.join().unwrap();
    assert!(gone);
    assert!(
        waited < Duration::from_secs(2),
        "close took {waited:?} to reach the reader"
    );
    assert!(!path.exists(), "a closed ring leaves no file behind");
}

#[test]
fn a_ring_closed_after_eos_still_gives_its_readers_eos() {
    let dir = TestDir::new("eosclose");
    let mut w = RingWriter::create(&dir.ring("e"), &config(4, 64)).unwrap();
    let mut sut = RingReader::open(&dir.ring("e")).unwrap();
    write_frames(&mut w, 1, 1, 64);
    w.set_state(WriterState::Eos);
    drop(w);
    assert_eq!(
        expect_frame(sut.next(NO_WAIT, vec_alloc).unwrap()).info.seq,
        1
    );
    assert!(matches!(sut.next(NO_WAIT, vec_alloc).unwrap(), Next::Eos));
}

#[test]
fn interrupt_ends_a_wait_promptly() {
    let dir = TestDir::new("intr");
    let _w = RingWriter::create(&dir.ring("i"), &config(4, 64)).unwrap();
    let mut sut = RingReader::open(&dir.ring("i")).unwrap();
    let intr = sut.interrupter();
    let t = std::thread::spawn(move || {
        let start = Instant::now();
        let r = sut.latest(Duration::from_secs(30), vec_alloc).unwrap();
        (matches!(r, Next::Interrupted), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    intr.interrupt();
    let (interrupted, waited) = t.join().unwrap();
    assert!(interrupted);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn a_second_writer_is_refused_with_the_holders_pid() {
    let dir = TestDir::new("busy");
    let _first = RingWriter::create(&dir.ring("b"), &config(4, 64)).unwrap();
    match RingWriter::create(&dir.ring("b"), &config(4, 64)) {
        Err(Error::Busy { pid, path }) => {
            assert_eq!(pid, std::process::id());
            assert!(path.ends_with("b.ring"));
            let msg = Error::Busy { pid, path }.to_string();
            assert!(
                msg.contains("b.ring") && msg.contains(&std::process::id().to_string()),
                "{msg}"
            );
        }
        other => panic!("expected Busy, got {:?}", other.err()),
    }
}

#[test]
fn the_ring_file_is_private_and_its_directory_too() {
    let dir = TestDir::new("perms");
    std::fs::remove_dir(&dir.path).unwrap();
    let w = RingWriter::create(&dir.ring("p"), &config(2, 64)).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path), 0o700);
    assert_eq!(mode(w.location().path()), 0o600);
    drop(w);
    let group = WriterConfig {
        perms: 0o640,
        ..config(2, 64)
    };
    let w = RingWriter::create(&dir.ring("g"), &group).unwrap();
    assert_eq!(mode(w.location().path()), 0o640);
    assert_eq!(
        mode(&dir.path) & 0o050,
        0o050,
        "group can reach a group-shared ring"
    );
    for bad in [0o644, 0o666, 0o400, 0o1600] {
        let c = WriterConfig {
            perms: bad,
            ..config(2, 64)
        };
        assert!(
            RingWriter::create(&dir.ring("x"), &c).is_err(),
            "perms {bad:o} accepted"
        );
    }
}

const CHILD_ENV: &str = "SHMRING_RING_CHILD";

#[test]
fn a_dead_writers_ring_is_taken_over_with_a_new_epoch() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("takeover");
    let loc = dir.ring("t");
    // A writer in another process, SIGKILLed while its ring is live.
    let mut writer = spawn_child_test(
        "child_role",
        CHILD_ENV,
        loc.path().to_str().unwrap(),
        std::process::Stdio::piped(),
    );
    let mut says = std::io::BufRead::lines(std::io::BufReader::new(writer.stdout.take().unwrap()));
    assert!(says.any(|l| l.unwrap().ends_with("written")));
    let dead_pid = writer.id();
    let mut reader = RingReader::open(&loc).unwrap();
    let mut poller = RingReader::open(&loc).unwrap();
    poller.seek_after(1);
    let old_epoch = reader.epoch();
    assert_eq!(reader.writer_status(), WriterStatus::Live);
    writer.kill().unwrap();
    writer.wait().unwrap();
    // A reader that polls without ever waiting learns of the death too.
    let t = Instant::now();
    loop {
        match poller.next(Duration::ZERO, vec_alloc).unwrap() {
            Next::WriterGone(WriterStatus::Dead) => break,
            Next::TimedOut => assert!(
                t.elapsed() < Duration::from_secs(2),
                "a polling reader never saw its writer die"
            ),
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(reader.writer_status(), WriterStatus::Dead);
    assert_eq!(
        RingReader::open(&loc).unwrap().writer_status(),
        WriterStatus::Dead
    );
    let sut = RingWriter::create(&loc, &config(2, 64)).unwrap();
    assert_ne!(sut.epoch(), old_epoch);
    assert_eq!(sut.origin(), &Origin::TookOver { dead_pid });
    assert!(reader.is_superseded());
    assert!(
        matches!(
            reader.latest(Duration::from_secs(5), vec_alloc).unwrap(),
            Next::Frame(f) if f.info.seq == 1
        ),
        "the frame the dead writer committed stays readable"
    );
    assert!(matches!(
        reader.latest(Duration::from_secs(5), vec_alloc).unwrap(),
        Next::WriterGone(WriterStatus::Dead)
    ));
    assert_eq!(RingReader::open(&loc).unwrap().epoch(), sut.epoch());
}

/// The writer that `a_dead_writers_ring_is_taken_over_with_a_new_epoch` kills.
#[test]
fn child_role() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let loc = RingLocation::parse(path.to_str().unwrap(), None).unwrap();
    let mut w = RingWriter::create(&loc, &config(2, 64)).unwrap();
    w.write(&FrameMeta::default(), b"live").unwrap();
    println!("written");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn replace_gives_readers_a_new_ring_with_new_geometry() {
    let dir = TestDir::new("replace");
    let loc = dir.ring("r");
    let mut w = RingWriter::create(&loc, &config(2, 64)).unwrap();
    let mut old = RingReader::open(&loc).unwrap();
    w.replace(&config(3, 10_000)).unwrap();
    assert!(matches!(
        old.latest(NO_WAIT, vec_alloc).unwrap(),
        Next::WriterGone(WriterStatus::Replaced)
    ));
    let new = RingReader::open(&loc).unwrap();
    assert_eq!(new.geometry().slot_count, 3);
    assert_eq!(new.epoch(), w.epoch());
    assert!(w.slot_capacity() >= 10_000);
}

#[test]
fn a_replacement_that_fails_leaves_the_ring_live() {
    let dir = TestDir::new("replace-fails");
    let loc = dir.ring("r");
    let mut sut = RingWriter::create(&loc, &config(2, 64)).unwrap();
    let mut reader = RingReader::open(&loc).unwrap();
    let epoch = sut.epoch();
    let impossible = WriterConfig {
        spares: 60,
        loans: 60,
        ..config(3, 10_000)
    };
    assert!(sut.replace(&impossible).is_err());
    assert_eq!(sut.epoch(), epoch);
    assert_eq!(reader.writer_status(), WriterStatus::Live);
    assert!(!reader.is_superseded(), "the ring file is still in place");
    sut.write(&FrameMeta::default(), b"after").unwrap();
    match reader.latest(NO_WAIT, vec_alloc).unwrap() {
        Next::Frame(f) => assert_eq!(&f.data[..5], b"after"),
        other => panic!("the ring stopped with the failed replacement: {other:?}"),
    }
}

#[test]
fn an_aborted_frame_is_never_seen() {
    let dir = TestDir::new("abort");
    let mut w = RingWriter::create(&dir.ring("x"), &config(4, 64)).unwrap();
    let mut sut = RingReader::open(&dir.ring("x")).unwrap();
    write_frames(&mut w, 1, 1, 64);
    {
        let mut slot = w.begin().unwrap();
        assert_eq!(slot.seq(), 2);
        slot.copy_into(0, b"junk").unwrap();
        slot.abort();
    }
    assert_eq!(w.counters().1, 1);
    assert_eq!(
        expect_frame(sut.next(NO_WAIT, vec_alloc).unwrap()).info.seq,
        1
    );
    assert!(matches!(
        sut.next(NO_WAIT, vec_alloc).unwrap(),
        Next::TimedOut
    ));
    write_frames(&mut w, 2, 2, 64);
    let f = expect_frame(sut.next(NO_WAIT, vec_alloc).unwrap());
    check(&f.data, 2).unwrap();
}

#[test]
fn oversized_frames_and_geometry_are_errors() {
    let dir = TestDir::new("size");
    let mut w = RingWriter::create(&dir.ring("s"), &config(2, 4096)).unwrap();
    assert!(matches!(
        w.write(&FrameMeta::default(), &[0u8; 4097]),
        Err(Error::FrameTooLarge { .. })
    ));
    for (slots, max) in [(1, 64), (1025, 64), (4, 0), (4, (1 << 30) + 1)] {
        assert!(
            RingWriter::create(&dir.ring("g"), &config(slots, max)).is_err(),
            "{slots} x {max}"
        );
    }
}

fn reader_error(dir: &TestDir, name: &str) -> String {
    match RingReader::open(&dir.ring(name)) {
        Ok(_) => panic!("{name} opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn readers_refuse_what_is_not_a_ring_and_say_what_they_found() {
    let dir = TestDir::new("bad");
    let p = |n: &str| dir.path.join(format!("{n}.ring"));
    assert!(reader_error(&dir, "missing").contains("no ring at"));
    std::fs::write(p("garbage"), vec![0xAB; 8192]).unwrap();
    assert!(reader_error(&dir, "garbage").contains("magic"));
    std::fs::write(p("short"), b"SHMRING\0").unwrap();
    assert!(reader_error(&dir, "short").contains("smaller than"));
    std::os::unix::fs::symlink(p("garbage"), p("link")).unwrap();
    assert!(reader_error(&dir, "link").contains("symbolic link"));
    std::fs::create_dir(p("dir")).unwrap();
    assert!(reader_error(&dir, "dir").contains("directory"));
    nix::unistd::mkfifo(&p("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(reader_error(&dir, "fifo").contains("FIFO"));

    // A real ring, then damaged copies of it.
    let w = RingWriter::create(&dir.ring("good"), &config(2, 64)).unwrap();
    let good = std::fs::read(w.location().path()).unwrap();
    let mut v = good.clone();
    v[8] = 9; // layout major
    std::fs::write(p("version"), &v).unwrap();
    let e = reader_error(&dir, "version");
    assert!(e.contains("layout 9.2") && e.contains("1.x"), "{e}");
    std::fs::write(p("trunc"), &good[..good.len() - 4096]).unwrap();
    assert!(reader_error(&dir, "trunc").contains("truncated"));
    let mut v = good.clone();
    v[24..28].copy_from_slice(&5000u32.to_le_bytes()); // slot count
    std::fs::write(p("slots"), &v).unwrap();
    assert!(reader_error(&dir, "slots").contains("slot count 5000"));
    std::fs::write(p("open"), &good).unwrap();
    std::fs::set_permissions(p("open"), std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(reader_error(&dir, "open").contains("lets others write"));
}

#[test]
fn a_reader_refuses_a_ring_directory_others_can_write() {
    let dir = TestDir::new("opendir");
    let _w = RingWriter::create(&dir.ring("a"), &config(2, 64)).unwrap();
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = reader_error(&dir, "a");
    assert!(e.contains("others can write"), "{e}");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn attach_waits_for_a_writer_to_appear() {
    let dir = TestDir::new("attach");
    let loc = dir.ring("late");
    let intr = Interrupter::new().unwrap();
    assert!(matches!(
        attach(&loc, Duration::from_millis(50), &intr).unwrap(),
        Attach::TimedOut
    ));
    let loc2 = loc.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        RingWriter::create(&loc2, &config(2, 64)).unwrap()
    });
    let t = Instant::now();
    let r = attach(&loc, Duration::from_secs(10), &intr).unwrap();
    let w = writer.join().unwrap();
    match r {
        Attach::Reader(r) => assert_eq!(r.epoch(), w.epoch()),
        _ => panic!("did not attach"),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    let intr2 = intr.clone();
    let waiter = std::thread::spawn(move || {
        matches!(
            attach(&dir.ring("never"), Duration::from_secs(30), &intr2),
            Ok(Attach::Interrupted)
        )
    });
    std::thread::sleep(Duration::from_millis(50));
    intr.interrupt();
    assert!(waiter.join().unwrap());
}

#[test]
fn frames_are_found_by_capture_time_by_each_rule_and_at_the_edges() {
    let dir = TestDir::new("at");
    let loc = dir.ring("a");
    let mut w = RingWriter::create(&loc, &config(4, 64)).unwrap();
    let sut = RingReader::open(&loc).unwrap();
    for rule in [AtRule::Nearest, AtRule::AtOrBefore, AtRule::AtOrAfter] {
        assert_eq!(sut.seq_at(1000, rule).unwrap(), At::NotYet, "empty ring");
    }
    // Frames 1..=6 captured at 100, 200, ... 600: 3..=6 are held by 4 slots.
    for n in 1..=6u64 {
        let meta = FrameMeta {
            captured_at_ns: Some(n * 100),
            ..Default::default()
        };
        w.write(&meta, &[n as u8; 8]).unwrap();
    }
    let at = |t, rule| sut.seq_at(t, rule).unwrap();
    assert_eq!(at(420, AtRule::Nearest), At::Frame(4));
    assert_eq!(at(460, AtRule::Nearest), At::Frame(5));
    assert_eq!(at(460, AtRule::AtOrBefore), At::Frame(4));
    assert_eq!(at(420, AtRule::AtOrAfter), At::Frame(5));
    assert_eq!(at(500, AtRule::AtOrBefore), At::Frame(5), "exactly at");
    assert_eq!(at(500, AtRule::AtOrAfter), At::Frame(5), "exactly at");
    // Older than the oldest frame held (300).
    assert_eq!(at(150, AtRule::AtOrBefore), At::Gone);
    assert_eq!(at(150, AtRule::AtOrAfter), At::Frame(3));
    assert_eq!(at(150, AtRule::Nearest), At::Frame(3));
    // Newer than the newest (600).
    assert_eq!(at(900, AtRule::AtOrAfter), At::NotYet);
    assert_eq!(at(900, AtRule::AtOrBefore), At::Frame(6));
    assert_eq!(at(900, AtRule::Nearest), At::Frame(6));
    // Look-back: the oldest frame held captured at or after a moment.
    assert_eq!(sut.oldest_since(0).unwrap(), Some(3));
    assert_eq!(sut.oldest_since(450).unwrap(), Some(5));
    assert_eq!(sut.oldest_since(601).unwrap(), None);
}
