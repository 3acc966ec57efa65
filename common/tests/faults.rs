//! Faults as tested features: writers SIGKILLed mid-frame and restarted, readers killed,
//! rings appearing only complete, files of other users.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use shmring_common::testing::{check, fill, spawn_child_test, TestDir};
use shmring_common::*;

const CHILD_ENV: &str = "SHMRING_FAULTS_CHILD";
const FRAME: usize = 1 << 20;

/// The ring these tests write: 4 slots of `FRAME` bytes.
fn writer(loc: &RingLocation) -> RingWriter {
    let config = WriterConfig {
        slots: 4,
        max_frame: FRAME as u64,
        ..Default::default()
    };
    RingWriter::create(loc, &config).unwrap()
}

/// Child roles of this binary: a writer that writes 1 MiB frames flat out until killed
/// (so a SIGKILL almost always lands in the middle of a frame), and a reader that
/// prints a line per frame.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (what, path) = role.split_once(':').unwrap();
    let loc = RingLocation::parse(path, None).unwrap();
    match what {
        "writer" => {
            let mut w = writer(&loc);
            println!("epoch {:016x}", w.epoch());
            for seq in 1.. {
                let mut slot = w.begin();
                fill(&mut slot.payload()[..FRAME], seq);
                slot.commit(&FrameMeta::default(), FRAME as u64).unwrap();
            }
        }
        "reader" => {
            let intr = Interrupter::new().unwrap();
            let Ok(Attach::Reader(mut r)) = attach(&loc, Duration::from_secs(10), &intr) else {
                panic!("no ring")
            };
            loop {
                match r
                    .latest(Duration::from_secs(10), |i| vec![0u8; i.len as usize])
                    .unwrap()
                {
                    Next::Frame(f) => {
                        check(&f.data, f.info.seq).expect("untorn");
                        println!("frame {}", f.info.seq);
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        _ => unreachable!(),
    }
}

fn spawn(role: &str, loc: &RingLocation) -> Child {
    spawn_child_test(
        "child_role",
        CHILD_ENV,
        &format!("{role}:{}", loc.path().display()),
        Stdio::null(),
    )
}

fn kill(child: &mut Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

#[test]
fn writers_killed_mid_frame_never_give_a_torn_frame_and_readers_follow_new_epochs() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("kill-writer");
    let loc = dir.ring("k");
    let intr = Interrupter::new().unwrap();
    let mut epochs = vec![];
    let mut frames = 0u64;
    let mut reader: Option<Box<RingReader>> = None;
    for round in 0..5 {
        let mut writer = spawn("writer", &loc);
        let deadline = Instant::now() + Duration::from_secs(20);
        // Read until this writer's frames come, then for a while longer.
        let mut got_this_epoch = 0;
        while got_this_epoch < 50 {
            assert!(
                Instant::now() < deadline,
                "round {round}: no frames from the new writer"
            );
            let r = match reader.as_mut() {
                Some(r) => r,
                None => match attach(&loc, Duration::from_secs(10), &intr).unwrap() {
                    Attach::Reader(r) => reader.insert(r),
                    _ => continue,
                },
            };
            match r
                .next(Duration::from_secs(5), |i| vec![0u8; i.len as usize])
                .unwrap()
            {
                Next::Frame(f) => {
                    if let Err(at) = check(&f.data, f.info.seq) {
                        panic!(
                            "round {round}: torn frame {} accepted (byte {at})",
                            f.info.seq
                        );
                    }
                    if epochs.last() != Some(&f.info.epoch) {
                        epochs.push(f.info.epoch);
                    }
                    if epochs.len() == round + 1 {
                        got_this_epoch += 1;
                    }
                    frames += 1;
                }
                Next::WriterGone(_) => reader = None,
                other => panic!("round {round}: {other:?}"),
            }
        }
        // Kill it at a moment the reader does not choose.
        std::thread::sleep(Duration::from_millis(3 + round as u64 * 7));
        kill(&mut writer);
    }
    assert_eq!(epochs.len(), 5, "one epoch per writer");
    eprintln!("{frames} frames checked across 5 writers killed mid-stream");
}

#[test]
fn killed_readers_go_unnoticed_by_the_writer_and_other_readers() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("kill-reader");
    let loc = dir.ring("r");
    let mut w = writer(&loc);
    let mut victims: Vec<Child> = (0..2).map(|_| spawn("reader", &loc)).collect();
    let mut survivor = RingReader::open(&loc).unwrap();
    let mut buf = vec![0u8; FRAME];
    let mut seen = 0;
    for seq in 1..=600u64 {
        fill(&mut buf, seq);
        w.write(&FrameMeta::default(), &buf).unwrap();
        if seq == 200 {
            for v in &mut victims {
                kill(v);
            }
        }
        if let Next::Frame(f) = survivor
            .latest(Duration::ZERO, |i| vec![0u8; i.len as usize])
            .unwrap()
        {
            check(&f.data, f.info.seq).unwrap();
            seen += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    assert_eq!(w.counters().0, 600, "the writer committed every frame");
    assert!(seen > 500, "the surviving reader kept up: {seen} of 600");
}

#[test]
fn a_ring_appears_under_its_name_only_complete() {
    let dir = TestDir::new("appear");
    let loc = dir.ring("a");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (l2, s2) = (loc.clone(), stop.clone());
    let prober = std::thread::spawn(move || {
        let mut opened = 0;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            match RingReader::open(&l2) {
                Ok(_) => opened += 1,
                Err(Error::NotFound { .. }) => {}
                Err(e) => panic!("a reader saw a half-made ring: {e}"),
            }
        }
        opened
    });
    for _ in 0..300 {
        let w = RingWriter::create(
            &loc,
            &WriterConfig {
                slots: 64,
                max_frame: 1 << 16,
                ..Default::default()
            },
        )
        .unwrap();
        drop(w);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = prober.join().unwrap();
    eprintln!("{opened} opens raced 300 creations");
    let leftovers: Vec<_> = std::fs::read_dir(&dir.path).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn a_ring_of_another_user_in_the_ring_directory_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: changing a file's owner needs root");
        return;
    }
    let dir = TestDir::new("owner");
    let loc = dir.ring("o");
    let _w = RingWriter::create(&loc, &WriterConfig::default()).unwrap();
    nix::unistd::chown(loc.path(), Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let e = RingReader::open(&loc).err().expect("refused").to_string();
    assert!(e.contains("owned by uid 65534"), "{e}");
    // Named explicitly by absolute path, a group-shared ring of another user is allowed.
    let explicit = RingLocation::parse(loc.path().to_str().unwrap(), None).unwrap();
    assert!(RingReader::open(&explicit).is_ok());
}
