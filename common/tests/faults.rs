//! Faults as tested features: writers SIGKILLed mid-frame and restarted, readers killed,
//! rings appearing only complete, files of other users, and ring files truncated under
//! the processes that map them: what they held reads as zeros, and the writer and readers
//! report the truncation as an error instead of dying of SIGBUS, while a SIGBUS that is
//! not about a ring still kills the process.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
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

/// Child roles of this binary: a writer that writes 1 MiB frames flat out (so a SIGKILL
/// almost always lands in the middle of a frame, and a truncation in the middle of a
/// write), a reader that prints a line per frame, a zero-copy reader that checks every
/// byte of each frame (so most of its time is spent touching ring pages), a process that
/// reads a truncated mapping of a file that is not a ring, and one that raises SIGBUS. The writer and the
/// zero-copy reader print "ready" once going and the error that ends them.
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
                let written = w.begin().and_then(|mut slot| {
                    // SAFETY: the test truncates the file on purpose; the SIGBUS
                    // guard turns the mapping into zeros, which fill may write.
                    fill(unsafe { &mut slot.payload()[..FRAME] }, seq);
                    slot.commit(&FrameMeta::default(), FRAME as u64)
                });
                if let Err(e) = written {
                    println!("writer: {e}");
                    break;
                }
                if seq == 20 {
                    println!("ready");
                }
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
        "lease-reader" => {
            let intr = Interrupter::new().unwrap();
            let Ok(Attach::Reader(mut r)) = attach(&loc, Duration::from_secs(10), &intr) else {
                panic!("no ring")
            };
            assert!(r.enable_zero_copy().unwrap());
            let (mut good, mut zeroed) = (0u64, 0u64);
            loop {
                match r.latest_zero_copy(Duration::from_secs(5), |i| vec![0u8; i.len as usize]) {
                    Ok(Next::Frame(f)) => {
                        // Bytes read as zeros once the file is cut: not a good frame.
                        match check(&f.data.to_vec(), f.info.seq) {
                            Ok(()) => good += 1,
                            Err(_) => zeroed += 1,
                        }
                        if good == 20 {
                            println!("ready");
                        }
                    }
                    Ok(other) => {
                        println!("reader: ended with {other:?}");
                        break;
                    }
                    Err(e) => {
                        println!("reader: {e} ({good} frames, {zeroed} cut)");
                        break;
                    }
                }
            }
        }
        "shrink-unguarded" => {
            assert!(
                !disable_sigbus_guard(),
                "guard off before any ring is mapped"
            );
            for said in shrink_below_the_newest_frame(&loc, || {}) {
                println!("{said}");
            }
        }
        "shrink-guard-replaced" => {
            let replace = || {
                // SAFETY: the default disposition runs no code.
                unsafe {
                    nix::sys::signal::signal(
                        nix::sys::signal::Signal::SIGBUS,
                        nix::sys::signal::SigHandler::SigDfl,
                    )
                }
                .unwrap();
                // Readers look at the handler once a second.
                std::thread::sleep(Duration::from_millis(1100));
            };
            for said in shrink_below_the_newest_frame(&loc, replace) {
                println!("{said}");
            }
        }
        "other-file" => {
            let _ring = writer(&loc); // installs the guard
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(loc.path().with_extension("plain"))
                .unwrap();
            file.set_len(1 << 16).unwrap();
            // SAFETY: a file of this test only, mapped to be read past its end.
            let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
            file.set_len(0).unwrap();
            println!("reading");
            // A SIGBUS here must kill the process: it is not about a ring.
            let byte = std::hint::black_box(&map[4096]);
            println!("read {byte}, survived");
        }
        "sent-sigbus" => {
            // As in a C program such as gst-launch-1.0: no SIGBUS handler before ours.
            // (Rust's own, for stack overflows, lets one sent SIGBUS pass.)
            // SAFETY: the default disposition runs no code, so no handler can misbehave.
            unsafe {
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGBUS,
                    nix::sys::signal::SigHandler::SigDfl,
                )
            }
            .unwrap();
            let _ring = writer(&loc); // installs the guard
            println!("raising");
            nix::sys::signal::raise(nix::sys::signal::Signal::SIGBUS).unwrap();
            std::thread::sleep(Duration::from_secs(1));
            println!("survived");
        }
        _ => unreachable!("{what}"),
    }
    std::process::exit(0);
}

fn spawn(role: &str, loc: &RingLocation) -> Child {
    spawn_with(role, loc, Stdio::null())
}

fn spawn_with(role: &str, loc: &RingLocation, stdout: Stdio) -> Child {
    spawn_child_test(
        "child_role",
        CHILD_ENV,
        &format!("{role}:{}", loc.path().display()),
        stdout,
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
    let leftovers: Vec<_> = std::fs::read_dir(&dir.path)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            !name.to_string_lossy().starts_with(".shmring-names-") // the name lock's file
        })
        .collect();
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

fn truncate(path: &std::path::Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// `child`'s exit status and what it printed (after "ready", if it was waited for),
/// which must come within `limit`.
fn finish(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let mut out = child.stdout.take().unwrap();
    let reading = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut text);
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not end within {limit:?}: {:?}", reading.join());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, reading.join().unwrap())
}

/// Waits for the child to print "ready". Nothing else is printed before the child's end.
fn wait_ready(child: &mut Child) {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if line.contains("ready") {
            child.stdout = Some(out.into_inner());
            return;
        }
        line.clear();
    }
    panic!("child ended before it was ready: {:?}", child.wait());
}

#[test]
fn a_leased_frame_of_a_truncated_file_reads_as_zeros_and_both_sides_say_so() {
    let dir = TestDir::new("trunc-lease");
    let loc = dir.ring("cut");
    let mut w = writer(&loc);
    let mut frame = vec![0u8; FRAME];
    fill(&mut frame, 1);
    w.write(&FrameMeta::default(), &frame).unwrap();
    let mut sut = RingReader::open(&loc).unwrap();
    assert!(sut.enable_zero_copy().unwrap());
    let lease = match sut
        .latest_zero_copy(Duration::ZERO, |i| vec![0u8; i.len as usize])
        .unwrap()
    {
        Next::Frame(Frame {
            data: Payload::Leased(l),
            ..
        }) => l,
        other => panic!("expected a leased frame, got {other:?}"),
    };
    check(&lease.to_vec(), 1).unwrap();

    truncate(loc.path(), 4096);

    // Without the guard, this read is a SIGBUS and ends the test binary.
    assert!(
        lease.to_vec().iter().all(|&b| b == 0),
        "a truncated ring reads as zeros"
    );
    let err = sut
        .latest(Duration::ZERO, |i| vec![0u8; i.len as usize])
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
    let err = w
        .write(&FrameMeta::default(), &frame)
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
    assert!(err.contains("cut"), "the error names the ring: {err}");
}

/// Shrinks the file of a ring below its newest frame, then asks a leasing and a copying
/// reader for that frame: what each said, which must be an error. The readers take a
/// good frame first, then `meanwhile` runs.
fn shrink_below_the_newest_frame(loc: &RingLocation, meanwhile: impl FnOnce()) -> Vec<String> {
    let mut w = writer(loc);
    let mut leasing = RingReader::open(loc).unwrap();
    assert!(leasing.enable_zero_copy().unwrap());
    let mut copying = RingReader::open(loc).unwrap();
    let mut frame = vec![0u8; FRAME];
    let alloc = |i: &FrameInfo| vec![0u8; i.len as usize];
    fill(&mut frame, 1);
    w.write(&FrameMeta::default(), &frame).unwrap();
    for sut in [&mut leasing, &mut copying] {
        let Ok(Next::Frame(f)) = sut.latest_zero_copy(Duration::ZERO, alloc) else {
            panic!("frame 1 is there");
        };
        check(&f.data.to_vec(), 1).unwrap();
    }
    meanwhile();
    fill(&mut frame, 2);
    w.write(&FrameMeta::default(), &frame).unwrap();

    // Every payload is cut off; the superblock, descriptors and reader table stay.
    truncate(loc.path(), layout::payload_offset(4));

    let mut said: Vec<String> = [("leasing", &mut leasing), ("copying", &mut copying)]
        .into_iter()
        .map(
            |(how, sut)| match sut.latest_zero_copy(Duration::ZERO, alloc) {
                Err(e) => format!("{how}: {e}"),
                Ok(got) => panic!("{how}: a frame of the shrunk file was handed out: {got:?}"),
            },
        )
        .collect();
    // Asked again, by handle: still an error (a zeroed ring is not one whose frame is
    // yet to come).
    let handle = Handle {
        ring: "cut".into(),
        epoch: w.epoch(),
        seq: 2,
    };
    for _ in 0..2 {
        match copying.by_handle(&handle, alloc) {
            Err(e) => said.push(format!("by handle: {e}")),
            Ok(got) => panic!("by handle: {got:?}"),
        }
    }
    // Once a fault zeroed the mapping (guarded), by capture time and caps too.
    if said.last().is_some_and(|e| e.contains("was truncated")) {
        assert!(copying.seq_at(0, AtRule::Nearest).is_err());
        assert!(copying.oldest_since(0).is_err());
        assert!(copying.current_caps().is_err());
    }
    said
}

#[test]
fn a_file_shrunk_below_the_newest_frame_is_an_error_before_that_frame_is_handed_out() {
    // Guarded (this process), the frame's pages fault and read as zeros, which is
    // noticed before the frame goes out.
    let dir = TestDir::new("trunc-before");
    let said = shrink_below_the_newest_frame(&dir.ring("cut"), || {});
    for err in &said {
        assert!(err.contains("cut.ring was truncated"), "{err}");
    }
    // Without the guard, or once a handler that does not chain replaced it, fstat
    // notices the shrink before any fault.
    for role in ["shrink-unguarded", "shrink-guard-replaced"] {
        let mut child = spawn_with(role, &dir.ring(role), Stdio::piped());
        let (status, said) = finish(&mut child, Duration::from_secs(20));
        assert_eq!(
            status.code(),
            Some(0),
            "{role}: not killed: {status:?} {said}"
        );
        assert_eq!(
            said.matches(&format!("{role}.ring is corrupt: file shrank to"))
                .count(),
            4,
            "{role}: {said}"
        );
    }
}

#[test]
fn a_ring_truncated_under_busy_processes_ends_them_with_an_error_not_sigbus() {
    let dir = TestDir::new("trunc-busy");
    let loc = dir.ring("busy");
    let mut w = spawn_with("writer", &loc, Stdio::piped());
    wait_ready(&mut w);
    let mut r = spawn_with("lease-reader", &loc, Stdio::piped());
    wait_ready(&mut r);

    // To nothing: whatever either touches next faults, header included.
    truncate(loc.path(), 0);

    let (w_status, w_said) = finish(&mut w, Duration::from_secs(20));
    let (r_status, r_said) = finish(&mut r, Duration::from_secs(20));
    assert_eq!(w_status.signal(), None, "writer killed: {w_said}");
    assert!(w_status.success(), "writer: {w_status} {w_said}");
    assert!(
        w_said.contains("writer:") && w_said.contains("truncated"),
        "{w_said}"
    );
    assert_eq!(r_status.signal(), None, "reader killed: {r_said}");
    assert!(r_status.success(), "reader: {r_status} {r_said}");
    assert!(
        r_said.contains("reader:") && r_said.contains("truncated"),
        "{r_said}"
    );
}

#[test]
fn a_sigbus_that_is_not_about_a_ring_still_kills_the_process() {
    let dir = TestDir::new("trunc-other");
    let mut child = spawn_with("other-file", &dir.ring("other"), Stdio::piped());
    let (status, said) = finish(&mut child, Duration::from_secs(20));
    assert!(
        said.trim_end().ends_with("reading"),
        "the read must not return: {said}"
    );
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}

#[test]
fn a_sigbus_sent_by_kill_still_kills_the_process() {
    let dir = TestDir::new("trunc-sent");
    let mut child = spawn_with("sent-sigbus", &dir.ring("sent"), Stdio::piped());
    let (status, said) = finish(&mut child, Duration::from_secs(20));
    assert!(!said.contains("survived"), "{said}");
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}
