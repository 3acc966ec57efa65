//! A `Session` (the bindings' reader) copies frames without its lock: other threads of
//! the session read, look up and ask about the ring while one copies, a frame is
//! returned once, and a frame overwritten during its copy is counted as missed and
//! replaced by the newest.

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use shmring_common::session::{Got, Read, ReadMode, Session};
use shmring_common::testing::{check, fill, TestDir};
use shmring_common::*;

/// How long a test waits for the other thread before it calls the lock held: far more
/// than any step takes, so that only a lock held across the copy reaches it.
const PATIENCE: Duration = Duration::from_secs(10);

fn writer(dir: &TestDir, slots: u32) -> RingWriter {
    let config = WriterConfig {
        slots,
        max_frame: 4096,
        ..Default::default()
    };
    RingWriter::create(&dir.ring("s"), &config).unwrap()
}

/// Writes the next frame.
fn write_next(w: &mut RingWriter) {
    let seq = w.head() + 1;
    write(w, seq);
}

fn write(w: &mut RingWriter, seq: u64) {
    let mut buf = vec![0u8; 4096];
    fill(&mut buf, seq);
    assert_eq!(w.write(&FrameMeta::default(), &buf).unwrap(), seq);
}

/// A ring of 4 slots holding frame 1, and a session that reads it by copies.
fn one_frame_read_by_copies(tag: &str) -> (TestDir, RingWriter, Session) {
    let dir = TestDir::new(tag);
    let mut w = writer(&dir, 4);
    write(&mut w, 1);
    let sut = Session::open(dir.ring("s"), false).unwrap();
    (dir, w, sut)
}

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_millis(20))
}

/// An allocator whose first buffer is handed over only once the test says `go`: it
/// tells `in_copy` when it is called, and whether `go` came in time.
fn held_first(in_copy: Sender<()>, go: Receiver<()>) -> impl FnMut(&FrameInfo) -> Vec<u8> {
    let mut first = true;
    move |i| {
        if std::mem::take(&mut first) {
            in_copy.send(()).unwrap();
            assert_ne!(
                go.recv_timeout(PATIENCE),
                Err(RecvTimeoutError::Timeout),
                "the other thread never got the session while this one copied"
            );
        }
        vec![0u8; i.len as usize]
    }
}

fn frame(read: Read) -> Frame<Vec<u8>> {
    match read {
        Read::Frame(f) => Frame {
            info: f.info,
            data: f.data.to_vec(),
            missed: f.missed,
            torn_retries: f.torn_retries,
        },
        Read::TimedOut => panic!("timed out"),
        Read::Stopped => panic!("stopped"),
        Read::Eos => panic!("EOS"),
        Read::WriterGone(s) => panic!("writer gone: {s:?}"),
    }
}

/// Starts in `s` a read of `sut` whose copy of its frame waits until the returned
/// sender says go; returns once that copy has started.
fn start_held_read<'scope, 'env>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    sut: &'env Session,
    mode: ReadMode,
) -> (
    std::thread::ScopedJoinHandle<'scope, Frame<Vec<u8>>>,
    Sender<()>,
) {
    let (in_copy_tx, in_copy) = channel();
    let (go, go_rx) = channel();
    let copier = s.spawn(move || {
        let alloc = held_first(in_copy_tx, go_rx);
        let deadline = Some(Instant::now() + PATIENCE);
        frame(sut.read_into(mode, deadline, || false, alloc).unwrap())
    });
    in_copy.recv_timeout(PATIENCE).expect("the copy starts");
    (copier, go)
}

#[test]
fn other_threads_use_the_session_while_one_copies_a_frame() {
    let (_dir, mut w, sut) = one_frame_read_by_copies("session-unlocked");
    std::thread::scope(|s| {
        let (copier, go) = start_held_read(s, &sut, ReadMode::Latest);
        // All of these take the session's lock.
        assert_eq!(sut.info().unwrap().slots, 4);
        assert!(
            matches!(
                sut.read(ReadMode::Latest, soon(), || false),
                Ok(Read::TimedOut)
            ),
            "frame 1 is the copier's: returned once"
        );
        write(&mut w, 2);
        let f = frame(sut.read(ReadMode::Latest, soon(), || false).unwrap());
        assert_eq!((f.info.seq, f.missed), (2, 0));
        check(&f.data, 2).unwrap();
        go.send(()).unwrap();
        let f = copier.join().unwrap();
        assert_eq!((f.info.seq, f.missed, f.torn_retries), (1, 0, 0));
        check(&f.data, 1).expect("copied whole");
    });
}

#[test]
fn eos_waits_for_a_frame_another_thread_still_copies() {
    let (_dir, mut w, sut) = one_frame_read_by_copies("session-eos");
    std::thread::scope(|s| {
        let (copier, go) = start_held_read(s, &sut, ReadMode::Next);
        w.set_state(WriterState::Eos);
        assert!(
            matches!(
                sut.read(ReadMode::Next, soon(), || false),
                Ok(Read::TimedOut)
            ),
            "EOS before frame 1 is returned"
        );
        go.send(()).unwrap();
        assert_eq!(copier.join().unwrap().info.seq, 1);
        let deadline = Some(Instant::now() + PATIENCE);
        assert!(matches!(
            sut.read(ReadMode::Next, deadline, || false),
            Ok(Read::Eos)
        ));
    });
}

#[test]
fn a_frame_overwritten_during_its_copy_is_missed_and_the_newest_comes() {
    for mode in [ReadMode::Latest, ReadMode::Next] {
        let dir = TestDir::new("session-torn");
        let mut w = writer(&dir, 4);
        for seq in 1..=3 {
            write(&mut w, seq);
        }
        let sut = Session::open(dir.ring("s"), false).unwrap();
        assert_eq!(frame(sut.read(mode, soon(), || false).unwrap()).info.seq, 3);
        write(&mut w, 4);
        write(&mut w, 5); // latest claims 5 (4 missed), next claims 4
        let f = std::thread::scope(|s| {
            let (copier, go) = start_held_read(s, &sut, mode);
            // The writer laps the ring of 4 slots: 8 and 9 take the slots of 4 and 5.
            for seq in 6..=10 {
                write(&mut w, seq);
            }
            go.send(()).unwrap();
            copier.join().unwrap()
        });
        // Torn, then the newest: 4 to 9 were never returned.
        assert_eq!(
            (f.info.seq, f.missed, f.torn_retries),
            (10, 6, 1),
            "{mode:?}"
        );
        check(&f.data, 10).expect("copied whole");
        // And the reader goes on from there.
        write(&mut w, 11);
        let f = frame(sut.read(mode, soon(), || false).unwrap());
        assert_eq!((f.info.seq, f.missed), (11, 0), "{mode:?}");
    }
}

#[test]
fn a_frame_by_handle_is_copied_without_the_lock_and_gone_if_overwritten() {
    let (_dir, mut w, sut) = one_frame_read_by_copies("session-handle");
    for overwrite in [false, true] {
        let handle = w.handle(w.head());
        let seq = handle.seq;
        let (in_copy_tx, in_copy) = channel();
        let (go, go_rx) = channel();
        let got = std::thread::scope(|s| {
            let copier = s.spawn(|| sut.get_into(&handle, held_first(in_copy_tx, go_rx)));
            in_copy.recv_timeout(PATIENCE).expect("the copy starts");
            assert_eq!(sut.info().unwrap().slots, 4, "the lock is free");
            if overwrite {
                for _ in 0..4 {
                    write_next(&mut w);
                }
            }
            go.send(()).unwrap();
            copier.join().unwrap().unwrap()
        });
        match got {
            Got::Frame(f) if !overwrite => {
                assert_eq!(f.info.seq, seq);
                check(&f.data, seq).expect("copied whole");
            }
            Got::Gone if overwrite => {}
            Got::Frame(f) => panic!("frame {} came back torn or late", f.info.seq),
            Got::Gone => panic!("frame {seq} was not overwritten"),
            Got::NotYet => panic!("frame {seq} is written"),
        }
        write_next(&mut w);
    }
}

#[test]
fn two_threads_reading_one_session_share_every_frame_once_under_a_lapping_writer() {
    const FRAMES: u64 = 3000;
    for mode in [ReadMode::Next, ReadMode::Latest] {
        let dir = TestDir::new("session-two-threads");
        let mut w = writer(&dir, 4);
        write(&mut w, 1);
        let sut = Session::open(dir.ring("s"), false).unwrap();
        // Read first, so that every later frame is returned or missed (a reader's first
        // frame counts none missed before it).
        let first = frame(sut.read(mode, soon(), || false).unwrap());
        assert_eq!((first.info.seq, first.missed), (1, 0));
        let done = std::sync::atomic::AtomicBool::new(false);
        let per_thread: Vec<Vec<(u64, u64)>> = std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut got = Vec::new();
                        let stop = || done.load(std::sync::atomic::Ordering::Relaxed);
                        loop {
                            let deadline = Some(Instant::now() + PATIENCE);
                            match sut.read(mode, deadline, stop).unwrap() {
                                Read::Frame(f) => {
                                    let data = f.data.to_vec();
                                    check(&data, f.info.seq).expect("never torn bytes");
                                    got.push((f.info.seq, f.missed));
                                    if f.info.seq == FRAMES {
                                        done.store(true, std::sync::atomic::Ordering::Relaxed);
                                        sut.interrupt(); // wakes the other thread's wait
                                    }
                                }
                                Read::Stopped => return got,
                                other => panic!("{mode:?}: {:?}", frame(other).info),
                            }
                        }
                    })
                })
                .collect();
            // As fast as it can: the readers are lapped, and some of their copies torn.
            for seq in 2..=FRAMES {
                write(&mut w, seq);
            }
            readers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let mut all: Vec<(u64, u64)> = per_thread.concat();
        all.push((1, 0));
        all.sort_unstable();
        let seqs: Vec<u64> = all.iter().map(|&(seq, _)| seq).collect();
        let mut unique = seqs.clone();
        unique.dedup();
        assert_eq!(unique, seqs, "{mode:?}: a frame returned twice");
        assert_eq!(seqs.last(), Some(&FRAMES), "{mode:?}");
        // Every frame is returned once or counted missed once, by one thread or the other.
        let accounted: u64 = all.iter().map(|&(_, missed)| 1 + missed).sum();
        assert_eq!(accounted, FRAMES, "{mode:?}: {} returned", all.len());
    }
}

#[test]
fn a_caller_buffer_too_small_is_an_error_and_the_session_reads_on() {
    let (_dir, mut w, sut) = one_frame_read_by_copies("session-small");
    for len in [0usize, 1, 4095] {
        let got = sut.read_into(ReadMode::Next, soon(), || false, |_| vec![0u8; len]);
        match got {
            Err(Error::InvalidGeometry { what }) => assert!(what.contains("4096"), "{what}"),
            Err(e) => panic!("{len} bytes: {e}"),
            Ok(_) => panic!("a frame of 4096 bytes in a buffer of {len}"),
        }
        write_next(&mut w);
    }
    // Frames 1 to 3 went to the refused reads: counted missed, and 4 comes whole.
    let f = frame(sut.read(ReadMode::Next, soon(), || false).unwrap());
    assert_eq!((f.info.seq, f.missed), (4, 3));
    check(&f.data, 4).unwrap();
    // A handle's frame into a buffer too small: the same error, nothing moved.
    let handle = w.handle(4);
    assert!(matches!(
        sut.get_into(&handle, |_| vec![0u8; 10]),
        Err(Error::InvalidGeometry { .. })
    ));
    assert!(matches!(sut.get(&handle).unwrap(), Got::Frame(_)));
}
