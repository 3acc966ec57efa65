//! A ring file truncated under the processes that map it: what they held reads as
//! zeros, and the writer and readers report the truncation as an error instead of
//! dying of SIGBUS. A SIGBUS that is not about a ring still kills the process.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use shmring_common::testing::{check, fill, spawn_child_test, TestDir};
use shmring_common::*;

const CHILD_ENV: &str = "SHMRING_TRUNCATION_CHILD";
const FRAME: usize = 1 << 20;

fn writer(loc: &RingLocation) -> RingWriter {
    let config = WriterConfig {
        slots: 4,
        max_frame: FRAME as u64,
        ..Default::default()
    };
    RingWriter::create(loc, &config).unwrap()
}

fn truncate(path: &std::path::Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Child roles: a writer writing 1 MiB frames flat out, and a zero-copy reader checking
/// every byte of each (so most of their time is spent touching ring pages); each prints
/// "ready" once going and the error that ends it. And a process that installs the
/// guard, then reads a truncated mapping of a file that is not a ring.
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
            let mut frame = vec![0u8; FRAME];
            for seq in 1.. {
                fill(&mut frame, seq);
                if let Err(e) = w.write(&FrameMeta::default(), &frame) {
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
            assert!(r.enable_zero_copy().unwrap());
            let (mut good, mut zeroed) = (0u64, 0u64);
            loop {
                match r.latest_zero_copy(Duration::from_secs(5), |i| vec![0u8; i.len as usize]) {
                    Ok(Next::Frame(f)) => {
                        // Bytes read as zeros once the file is cut: not a good frame.
                        match check(f.data.as_ref(), f.info.seq) {
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
        _ => unreachable!("{what}"),
    }
    std::process::exit(0);
}

fn spawn(role: &str, loc: &RingLocation) -> Child {
    spawn_child_test(
        "child_role",
        CHILD_ENV,
        &format!("{role}:{}", loc.path().display()),
        Stdio::piped(),
    )
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
    check(lease.as_ref(), 1).unwrap();

    truncate(loc.path(), 4096);

    // Without the guard, this read is a SIGBUS and ends the test binary.
    assert!(
        lease.as_ref().iter().all(|&b| b == 0),
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

#[test]
fn a_ring_truncated_under_busy_processes_ends_them_with_an_error_not_sigbus() {
    let dir = TestDir::new("trunc-busy");
    let loc = dir.ring("busy");
    let mut w = spawn("writer", &loc);
    wait_ready(&mut w);
    let mut r = spawn("reader", &loc);
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
    let mut child = spawn("other-file", &dir.ring("other"));
    let (status, said) = finish(&mut child, Duration::from_secs(20));
    assert!(
        said.trim_end().ends_with("reading"),
        "the read must not return: {said}"
    );
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}
