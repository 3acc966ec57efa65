//! Every wake-up path, taken for real in a child process: a reader whose futex_waitv a
//! seccomp filter refuses (EPERM, as Docker's default profile answers calls it does not
//! know, and ENOSYS, as an older kernel does) gets every frame, and sees EOS, a ring
//! replaced, the writer closing, the writer SIGKILLed and an interrupt promptly, while
//! a wait on a silent ring costs next to no CPU. The same scenario runs without a
//! filter: on this machine's kernel that is futex_waitv, under qemu-user (which has no
//! futex_waitv) the fallback again, on another CPU.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Stdio};
use std::time::Duration;

use shmring_common::testing::{check, fill, spawn_child_test, under_runner, TestDir};
use shmring_common::*;

mod support {
    pub mod seccomp;
}
use support::seccomp::refuse_futex_waitv;

const CHILD_ENV: &str = "SHMRING_WAKE_CHILD";
const FRAME: usize = 4096;
const FRAMES: u64 = 200;
/// How late a reader may learn of an event. The design bounds are 100 ms (the liveness
/// interval) and one fallback slice; this leaves room for a loaded machine or qemu-user,
/// and is still far below the 10 s a reader took before the fallback was fixed.
const PROMPT: Duration = Duration::from_millis(600);

fn frame_len(seq: u64) -> usize {
    FRAME - (seq % 7) as usize * 8
}

fn write_frame(w: &mut RingWriter, seq: u64) {
    let mut buf = vec![0u8; FRAME];
    let len = frame_len(seq);
    fill(&mut buf[..len], seq);
    w.write(
        &FrameMeta {
            pts: Some(seq),
            ..Default::default()
        },
        &buf[..len],
    )
    .unwrap();
}

fn config() -> WriterConfig {
    WriterConfig {
        slots: 256,
        max_frame: FRAME as u64,
        ..Default::default()
    }
}

/// A child reader and the lines it prints.
struct ReaderChild {
    child: Child,
    lines: std::io::Lines<BufReader<ChildStdout>>,
}

impl ReaderChild {
    fn spawn(role: &str) -> Self {
        let mut child = spawn_child_test("child_role", CHILD_ENV, role, Stdio::piped());
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        ReaderChild { child, lines }
    }

    /// What the child said next with `say(word, ...)`; panics when the child ends.
    fn expect(&mut self, word: &str) -> String {
        let marker = format!("@{word}@");
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            eprintln!("child: {line}");
            if let Some((_, rest)) = line.split_once(&marker) {
                return rest.trim().to_owned();
            }
        }
        panic!("the child ended before saying {word:?}");
    }

    /// The child's monotonic time on a line `word <ns>`, as a delay after `since_ns`.
    fn delay_after(&mut self, word: &str, since_ns: u64) -> Duration {
        let at: u64 = self
            .expect(word)
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Duration::from_nanos(at.saturating_sub(since_ns))
    }

    fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the child reader failed: {status}");
    }
}

/// Runs the whole scenario with the reader refusing futex_waitv with `refuse` (an errno
/// name) or not at all ("none"), and returns the wait path the reader used.
fn scenario(refuse: &str) -> String {
    let dir = TestDir::new(&format!("wake-{refuse}"));
    let loc = dir.ring("w");
    let mut w = RingWriter::create(&loc, &config()).unwrap();
    let mut r = ReaderChild::spawn(&format!("{refuse}:frames:{}", loc.path().display()));
    let path = r.expect("path");
    r.expect("ready");
    // Every frame, 1 ms apart, so that the reader sleeps for most of them.
    for seq in 1..=FRAMES {
        write_frame(&mut w, seq);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        r.expect("frames"),
        FRAMES.to_string(),
        "every frame, intact"
    );
    // A replacement (a caps change to larger frames) reaches the waiting reader.
    std::thread::sleep(Duration::from_millis(300));
    let t = monotonic_ns();
    w.replace(&WriterConfig {
        max_frame: 2 * FRAME as u64,
        ..config()
    })
    .unwrap();
    let late = r.delay_after("replaced", t);
    eprintln!("{refuse}: replacement seen after {late:?}");
    assert!(late < PROMPT, "the replacement took {late:?}");
    // It reads the new ring; then EOS, then the writer closes.
    r.expect("reattached");
    write_frame(&mut w, 1);
    assert_eq!(r.expect("frame"), "1");
    std::thread::sleep(Duration::from_millis(300));
    let t = monotonic_ns();
    w.set_state(WriterState::Eos);
    let late = r.delay_after("eos", t);
    eprintln!("{refuse}: EOS seen after {late:?}");
    assert!(late < PROMPT, "EOS took {late:?}");
    std::thread::sleep(Duration::from_millis(300));
    let t = monotonic_ns();
    drop(w);
    let late = r.delay_after("closed", t);
    eprintln!("{refuse}: close after EOS seen after {late:?}");
    assert!(late < PROMPT, "the close took {late:?}");
    // A SIGKILLed writer (another process) is noticed within the liveness interval.
    let mut writer = spawn_child_test(
        "child_role",
        CHILD_ENV,
        &format!("none:writer:{}", loc.path().display()),
        Stdio::piped(),
    );
    let mut writer_says = BufReader::new(writer.stdout.take().unwrap()).lines();
    assert!(writer_says.any(|l| l.unwrap().contains("@written@")));
    r.go();
    assert_eq!(r.expect("frame"), "1");
    std::thread::sleep(Duration::from_millis(300));
    let t = monotonic_ns();
    writer.kill().unwrap();
    let late = r.delay_after("dead", t);
    let _ = writer.wait();
    eprintln!("{refuse}: SIGKILLed writer seen after {late:?}");
    assert!(late < PROMPT, "the dead writer took {late:?}");
    // An interrupt, and the cost of waiting on a silent ring: the child measures both.
    let interrupt = r.expect("interrupted");
    let idle = r.expect("idle-cpu");
    eprintln!("{refuse}: interrupt seen after {interrupt} us, idle CPU {idle} us in 1 s");
    let interrupt: u64 = interrupt.parse().unwrap();
    assert!(
        interrupt < PROMPT.as_micros() as u64,
        "the interrupt took {interrupt} us"
    );
    let idle: u64 = idle.parse().unwrap();
    // 1 % of a core; an emulator spends several times a real CPU's time on each
    // syscall, so there the bound is what qemu-user allows, not a figure of the product.
    let bound = if emulated() { 30_000 } else { 10_000 };
    assert!(
        idle < bound,
        "waiting 1 s on a silent ring took {idle} us of CPU"
    );
    r.finish();
    path
}

/// Whether this binary runs under an emulator, where seccomp filters of the emulated
/// CPU cannot be installed (and are not needed: qemu-user has no futex_waitv).
fn emulated() -> bool {
    under_runner()
}

#[test]
fn a_reader_whose_futex_waitv_is_refused_with_eperm_misses_nothing() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if emulated() {
        eprintln!("skipped: under an emulator; its own futex_waitv is missing anyway");
        return;
    }
    assert_eq!(scenario("EPERM"), "Slices");
}

#[test]
fn a_reader_whose_futex_waitv_is_refused_with_enosys_misses_nothing() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if emulated() {
        eprintln!("skipped: under an emulator; its own futex_waitv is missing anyway");
        return;
    }
    assert_eq!(scenario("ENOSYS"), "Slices");
}

#[test]
fn a_reader_on_the_kernels_own_path_misses_nothing() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let path = scenario("none");
    eprintln!("wait path without a filter: {path}");
    if emulated() {
        assert_eq!(path, "Slices", "qemu-user has no futex_waitv");
    }
}

fn read_next(r: &mut RingReader, timeout: Duration) -> Next<Vec<u8>> {
    r.next(timeout, |i| vec![0u8; i.len as usize]).unwrap()
}

fn now() -> u64 {
    monotonic_ns()
}

/// The child roles: `ERRNO:frames:PATH` reads the scenario above under a filter that
/// refuses futex_waitv with ERRNO (none: no filter); `none:writer:PATH` writes one frame
/// and waits to be killed.
#[test]
fn child_role() {
    let Some(role) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let role = role.into_string().unwrap();
    let mut parts = role.splitn(3, ':');
    let (refuse, what, path) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let loc = RingLocation::parse(path, None).unwrap();
    match refuse {
        "EPERM" => refuse_futex_waitv(libc::EPERM),
        "ENOSYS" => refuse_futex_waitv(libc::ENOSYS),
        _ => {}
    }
    if what == "writer" {
        let mut w = RingWriter::create(&loc, &config()).unwrap();
        write_frame(&mut w, 1);
        println!("@written@");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let long = Duration::from_secs(20);
    let mut r = RingReader::open(&loc).unwrap();
    // The first wait decides the path.
    assert!(matches!(
        read_next(&mut r, Duration::from_millis(1)),
        Next::TimedOut
    ));
    println!("@path@ {:?}", wait_path().unwrap());
    println!("@ready@");
    let mut frames = 0;
    for seq in 1..=FRAMES {
        match read_next(&mut r, long) {
            Next::Frame(f) => {
                assert_eq!(f.info.seq, seq);
                assert_eq!(f.data.len(), frame_len(seq), "length of frame {seq}");
                check(&f.data, seq).unwrap_or_else(|at| panic!("frame {seq}: byte {at}"));
                frames += 1;
            }
            other => panic!("frame {seq}: {other:?}"),
        }
    }
    println!("@frames@ {frames}");
    match read_next(&mut r, long) {
        Next::WriterGone(WriterStatus::Replaced) => println!("@replaced@ {}", now()),
        other => panic!("expected the replacement, got {other:?}"),
    }
    let mut r = RingReader::open(&loc).unwrap();
    println!("@reattached@");
    match read_next(&mut r, long) {
        Next::Frame(f) => println!("@frame@ {}", f.info.seq),
        other => panic!("{other:?}"),
    }
    match read_next(&mut r, long) {
        Next::Eos => println!("@eos@ {}", now()),
        other => panic!("expected EOS, got {other:?}"),
    }
    match read_next(&mut r, long) {
        Next::WriterGone(WriterStatus::Closed) => println!("@closed@ {}", now()),
        other => panic!("expected the close, got {other:?}"),
    }
    drop(r);
    // A writer in another process, SIGKILLed while we wait.
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let mut r = RingReader::open(&loc).unwrap();
    match read_next(&mut r, long) {
        Next::Frame(f) => println!("@frame@ {}", f.info.seq),
        other => panic!("{other:?}"),
    }
    match read_next(&mut r, long) {
        Next::WriterGone(WriterStatus::Dead) => println!("@dead@ {}", now()),
        other => panic!("expected the dead writer, got {other:?}"),
    }
    drop(r);
    // An interrupt from another thread, and a silent ring of our own.
    let idle = dir_ring(&loc);
    let _w = RingWriter::create(&idle, &config()).unwrap();
    let mut r = RingReader::open(&idle).unwrap();
    let interrupter = r.interrupter();
    let waiter = std::thread::spawn(move || {
        let result = read_next(&mut r, long);
        (result, now(), r)
    });
    std::thread::sleep(Duration::from_millis(200));
    let t = now();
    interrupter.interrupt();
    let (result, at, mut r) = waiter.join().unwrap();
    assert!(matches!(result, Next::Interrupted), "{result:?}");
    println!("@interrupted@ {}", (at - t) / 1000);
    interrupter.clear();
    let before = cpu_us();
    assert!(matches!(
        read_next(&mut r, Duration::from_secs(1)),
        Next::TimedOut
    ));
    println!("@idle-cpu@ {}", cpu_us() - before);
}

/// Another ring beside `loc`, for the child's own idle writer.
fn dir_ring(loc: &RingLocation) -> RingLocation {
    let other = loc
        .path()
        .with_file_name(format!("idle-{}.ring", std::process::id()));
    RingLocation::parse(other.to_str().unwrap(), None).unwrap()
}

/// CPU time of this thread so far, user and system, in microseconds: the waiting
/// reader's alone, not the idle writer's heartbeat beside it.
fn cpu_us() -> u64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD).unwrap();
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    us(usage.user_time()) + us(usage.system_time())
}
