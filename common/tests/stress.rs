//! Tearing stress: a writer as fast as it can go over a small ring, readers checking
//! every byte of every frame they accept and that sequences only go forward. Once with
//! threads, once with real processes (this test binary started again in a child role).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use shmring_common::testing::{check, fill, spawn_child_test, TestDir};
use shmring_common::*;

const CHILD_ENV: &str = "SHMRING_STRESS_CHILD";

/// The length `write_all` gives frame `seq` when its longest frame is `len` bytes.
fn length_of(seq: u64, len: usize) -> usize {
    [len / 2 + 3, len - 5, len][((seq - 1) % 3) as usize]
}

/// Reads with `r` until EOS frames whose longest is `len` bytes; returns (frames
/// accepted, frames missed, torn copies thrown away), adding the torn copies to `tears`
/// as they are caught.
fn read_all(mut r: RingReader, sequential: bool, len: usize, tears: &AtomicU64) -> (u64, u64, u64) {
    let (mut frames, mut missed, mut torn, mut last) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let alloc = |i: &FrameInfo| vec![0u8; i.len as usize];
        let n = if sequential {
            r.next(Duration::from_secs(10), alloc)
        } else {
            r.latest(Duration::from_secs(10), alloc)
        };
        match n.unwrap() {
            Next::Frame(f) => {
                assert!(
                    f.info.seq > last,
                    "sequence went from {last} to {}",
                    f.info.seq
                );
                assert_eq!(
                    f.data.len(),
                    length_of(f.info.seq, len),
                    "frame {} has the length of another",
                    f.info.seq
                );
                if let Err(at) = check(&f.data, f.info.seq) {
                    panic!("torn frame {} accepted: byte {at} differs", f.info.seq);
                }
                assert_eq!(f.info.pts, Some(f.info.seq), "descriptor of another frame");
                last = f.info.seq;
                frames += 1;
                missed += f.missed;
                torn += u64::from(f.torn_retries);
                // Relaxed: a count the writer looks at to decide when to stop.
                tears.fetch_add(u64::from(f.torn_retries), Ordering::Relaxed);
            }
            Next::Eos => return (frames, missed, torn),
            other => panic!("reader stopped with {other:?} after frame {last}"),
        }
    }
}

/// Writes frames of three lengths while `more(seq)` says to write frame `seq`; with
/// `bypass_cache`, copied in with non-temporal stores (SlotWriter::copy_into), else
/// filled in place.
fn write_all(w: &mut RingWriter, more: &dyn Fn(u64) -> bool, len: usize, bypass_cache: bool) {
    w.set_bypass_cache(bypass_cache);
    let mut frame_lengths = [len, len / 2 + 3, len - 5];
    let mut scratch = vec![0u8; len];
    for seq in (1..).take_while(|&seq| more(seq)) {
        frame_lengths.rotate_left(1);
        let l = frame_lengths[0];
        debug_assert_eq!(l, length_of(seq, len));
        let mut slot = w.begin().unwrap();
        if bypass_cache {
            fill(&mut scratch[..l], seq);
            slot.copy_into(0, &scratch[..l]).unwrap();
        } else {
            // SAFETY: nothing else writes or truncates this test's ring file.
            fill(unsafe { &mut slot.payload()[..l] }, seq);
        }
        slot.commit(
            &FrameMeta {
                pts: Some(seq),
                ..Default::default()
            },
            l as u64,
        )
        .unwrap();
    }
    w.set_state(WriterState::Eos);
}

#[test]
fn the_checker_catches_a_frame_mixed_from_two_writes() {
    let mut a = vec![0u8; 4099];
    let mut b = vec![0u8; 4099];
    fill(&mut a, 41);
    fill(&mut b, 42);
    check(&a, 41).unwrap();
    a[2048..].copy_from_slice(&b[2048..]);
    assert_eq!(check(&a, 41), Err(2048));
    let mut c = b.clone();
    c[4098] ^= 1;
    assert_eq!(check(&c, 42), Err(4098));
}

#[test]
fn threads_never_accept_a_torn_frame() {
    threads_stress(false);
}

#[test]
fn threads_never_accept_a_torn_frame_written_around_the_cache() {
    threads_stress(true);
}

fn threads_stress(bypass_cache: bool) {
    let config = WriterConfig {
        slots: 3,
        max_frame: 16384,
        ..Default::default()
    };
    stress_threads(&config, false, |w, more| {
        write_all(w, more, 16384, bypass_cache)
    });
}

/// Frames a stress writer writes at least.
const FRAMES: u64 = 20_000;

/// Three reader threads (sequential, latest, and a third sequential or leasing one)
/// against `write` on a ring made with `config`, whose frames are at most
/// `config.max_frame` bytes; each must accept some frames, and torn copies must have
/// been caught (a writer this fast over so few slots tears some of the readers' copies:
/// none at all would mean the check never ran). `write` writes frame `seq` while its
/// second argument says so: `FRAMES` frames, and on until a reader caught a torn copy
/// (on a busy machine, or one core, readers seldom run in the middle of a write), up to
/// twenty times as many.
fn stress_threads(
    config: &WriterConfig,
    leasing: bool,
    write: impl FnOnce(&mut RingWriter, &dyn Fn(u64) -> bool),
) {
    let dir = TestDir::new("threads");
    let loc = dir.ring("stress");
    let len = config.max_frame as usize;
    let mut w = RingWriter::create(&loc, config).unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let tears = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let (loc, barrier, tears) = (loc.clone(), barrier.clone(), tears.clone());
            std::thread::spawn(move || {
                let r = RingReader::open(&loc).unwrap();
                barrier.wait();
                match i {
                    1 => read_all(r, false, len, &tears),
                    2 if leasing => (lease_all(r), 0, 0),
                    _ => read_all(r, true, len, &tears),
                }
            })
        })
        .collect();
    barrier.wait();
    // Relaxed: see read_all.
    write(&mut w, &|seq| {
        seq <= FRAMES || (seq <= 20 * FRAMES && tears.load(Ordering::Relaxed) == 0)
    });
    let mut torn = 0;
    for r in readers {
        let (frames, _, t) = r.join().unwrap();
        assert!(frames > 0, "a reader accepted no frame");
        torn += t;
    }
    eprintln!("torn copies caught: {torn}");
    assert!(torn > 0, "no torn copy was ever caught");
}

/// Writes frames of three lengths while `more(seq)` says to write frame `seq`, filled in
/// slots lent by the writer and committed in place, keeping the last `kept` loans (as
/// buffers downstream would) and checking, when each is let go, that the ring did not
/// rewrite it meanwhile.
fn write_all_in_place(w: &mut RingWriter, more: &dyn Fn(u64) -> bool, len: usize, kept: usize) {
    let lender = w.lender();
    let mut frame_lengths = [len, len / 2 + 3, len - 5];
    let mut held = std::collections::VecDeque::new();
    let mut scratch = vec![0u8; len];
    for seq in (1..).take_while(|&seq| more(seq)) {
        frame_lengths.rotate_left(1);
        let l = frame_lengths[0];
        debug_assert_eq!(l, length_of(seq, len));
        let mut loan = lender.lend(len).expect("a slot to lend");
        fill(&mut scratch[..l], seq);
        loan.write(0, &scratch[..l]).unwrap();
        let meta = FrameMeta {
            pts: Some(seq),
            ..Default::default()
        };
        // SAFETY: only the slice's address and length are used.
        let committed = w
            .commit_in_place(unsafe { &loan.as_slice()[..l] }, &meta)
            .unwrap();
        assert_eq!(committed, Some(seq), "a lent slot is committed in place");
        held.push_back((seq, l, loan));
        if held.len() > kept {
            let (seq, l, loan) = held.pop_front().unwrap();
            if let Err(at) = check(&loan.to_vec()[..l], seq) {
                panic!("slot of frame {seq} rewritten while held: byte {at}");
            }
        }
    }
    w.set_state(WriterState::Eos);
}

/// Reads the newest frame until EOS with zero-copy leases, holding each lease until the
/// next one is taken and checking it is still intact then. Returns frames accepted.
fn lease_all(mut r: RingReader) -> u64 {
    assert!(r.enable_zero_copy().unwrap());
    let (mut frames, mut previous) = (0u64, None::<(u64, LeasedPayload)>);
    loop {
        match r
            .latest_zero_copy(Duration::from_secs(10), |i| vec![0u8; i.len as usize])
            .unwrap()
        {
            Next::Frame(f) => {
                if let Some((seq, l)) = previous.take() {
                    if let Err(at) = check(&l.to_vec(), seq) {
                        panic!("leased frame {seq} changed while leased: byte {at}");
                    }
                }
                let seq = f.info.seq;
                match f.data {
                    Payload::Leased(l) => {
                        check(&l.to_vec(), seq).expect("leased frame intact");
                        previous = Some((seq, l));
                    }
                    Payload::Copied(v) => check(&v, seq).expect("copied frame intact"),
                }
                frames += 1;
            }
            Next::Eos => return frames,
            other => panic!("leasing reader stopped with {other:?}"),
        }
    }
}

#[test]
fn threads_never_accept_a_torn_frame_written_in_place() {
    let config = WriterConfig {
        slots: 3,
        max_frame: 16384,
        spares: 2,
        loans: 3,
        ..Default::default()
    };
    // Two loans held after their commit, one being filled: all three lendable slots.
    stress_threads(&config, true, |w, more| {
        write_all_in_place(w, more, 16384, 2)
    });
}

#[test]
fn processes_never_accept_a_torn_frame() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return; // the child roles run below, not this
    }
    let dir = TestDir::new("procs");
    let loc = dir.ring("stress");
    let ready = |child: &mut std::process::Child| {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let said = lines
            .by_ref()
            .map_while(|l| l.ok())
            .any(|l| l.ends_with("ready"));
        assert!(said, "a child ended before it was ready");
        lines
    };
    // Writer first (readers open an existing ring), holding off until readers are up.
    let mut writer = spawn_child_test(
        "child_role",
        CHILD_ENV,
        &format!("writer:{}", loc.path().display()),
        Stdio::piped(),
    );
    let _writer_says = ready(&mut writer);
    let readers: Vec<_> = ["next", "latest", "next"]
        .iter()
        .map(|mode| {
            let mut child = spawn_child_test(
                "child_role",
                CHILD_ENV,
                &format!("{mode}:{}", loc.path().display()),
                Stdio::piped(),
            );
            let lines = ready(&mut child);
            (child, lines)
        })
        .collect();
    drop(writer.stdin.take()); // go
    assert!(writer.wait().unwrap().success(), "writer failed");
    let (mut accepted, mut torn) = (0, 0);
    for (mut child, lines) in readers {
        let text: Vec<String> = lines.map_while(|l| l.ok()).collect();
        assert!(child.wait().unwrap().success(), "reader failed: {text:?}");
        let counts = text
            .iter()
            .find_map(|l| l.split_once("frames="))
            .expect("reader printed its counts")
            .1;
        eprintln!("reader: frames={counts}");
        let field = |name: &str| -> u64 {
            counts
                .split(' ')
                .find_map(|f| f.strip_prefix(name))
                .unwrap()
                .parse()
                .unwrap()
        };
        let frames = field("");
        assert!(frames > 0, "a reader accepted no frame");
        accepted += frames;
        torn += field("torn=");
    }
    assert!(accepted > 0);
    assert!(torn > 0, "no torn copy was ever caught");
}

/// The child processes of `processes_never_accept_a_torn_frame`.
#[test]
fn child_role() {
    let Some(role) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let role = role.into_string().unwrap();
    let (what, path) = role.split_once(':').unwrap();
    let loc = RingLocation::parse(path, None).unwrap();
    match what {
        "writer" => {
            let mut w = RingWriter::create(
                &loc,
                &WriterConfig {
                    slots: 4,
                    max_frame: 8192,
                    ..Default::default()
                },
            )
            .unwrap();
            println!("ready");
            let mut go = String::new();
            let _ = std::io::stdin().read_line(&mut go);
            write_all(&mut w, &|seq| seq <= 30_000, 8192, true);
            std::thread::sleep(Duration::from_millis(200)); // readers see EOS before close
        }
        mode => {
            let r = RingReader::open(&loc).unwrap();
            println!("ready");
            let (frames, missed, torn) = read_all(r, mode == "next", 8192, &AtomicU64::new(0));
            println!("frames={frames} missed={missed} torn={torn} mode={mode}");
        }
    }
}
