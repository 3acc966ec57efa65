//! Ring benchmark: write and read cost per frame as a ratio to one plain memcpy of the
//! same frame (measured in the same run, with the same rotation over slots), and
//! commit-to-wake latency across processes (with futex_waitv, and with futex_waitv
//! refused by a seccomp filter so that the fallback runs), a frame written then read at once with
//! ordinary and with non-temporal stores, and a zero-copy read after the sleep between
//! two frames of a 30 fps camera (cold caches). Prints figures; asserts nothing.
//!
//!   cargo bench -p shmring-common --bench ring            full run
//!   cargo bench -p shmring-common --bench ring -- --quick  short run (CI)

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use shmring_common::testing::{copy_costs, write_then_read_costs, TestDir};
use shmring_common::*;

#[path = "../tests/support/seccomp.rs"]
mod seccomp;

const CHILD_ENV: &str = "SHMRING_BENCH_WAKE_READER";
const REFUSE_ENV: &str = "SHMRING_BENCH_REFUSE_WAITV";
const SLOTS: u32 = 8;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The reader side of the wake benchmark: waits for each frame, prints its latency.
/// With `refuse`, futex_waitv is refused first (the fallback path).
fn wake_reader(path: &str, refuse: bool) {
    if refuse {
        seccomp::refuse_futex_waitv(libc::EPERM);
    }
    let loc = RingLocation::parse(path, None).unwrap();
    let mut r = RingReader::open(&loc).unwrap();
    r.seek_after(r.head());
    let _ = r.next(Duration::from_millis(1), |_| Vec::new()); // decides the wait path
    println!("ready {:?}", wait_path().unwrap());
    let mut buf = vec![0u8; 64];
    loop {
        match r
            .next(Duration::from_secs(5), |_| std::mem::take(&mut buf))
            .unwrap()
        {
            Next::Frame(f) => {
                println!("{}", monotonic_ns().saturating_sub(f.info.commit_mono_ns));
                buf = f.data;
            }
            _ => return,
        }
    }
}

/// Commit-to-wake latency across processes: (wait path, p50 ns, p99 ns).
fn wake_latency(quick: bool, refuse: bool) -> (String, u64, u64) {
    let frames = if quick { 200 } else { 3000 };
    let dir = TestDir::new("bench-wake");
    let loc = dir.ring("wake");
    let mut w = RingWriter::create(
        &loc,
        &WriterConfig {
            slots: 16,
            max_frame: 64,
            ..Default::default()
        },
    )
    .unwrap();
    let mut child = shmring_common::testing::this_test_binary()
        .env(CHILD_ENV, loc.path())
        .env(REFUSE_ENV, if refuse { "1" } else { "" })
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    let path = ready.strip_prefix("ready ").expect("ready line").to_owned();
    std::thread::sleep(Duration::from_millis(50));
    let payload = [7u8; 64];
    for _ in 0..frames {
        // 1 ms apart: the reader is asleep on the futex when each frame comes.
        std::thread::sleep(Duration::from_millis(1));
        w.write(&FrameMeta::default(), &payload).unwrap();
    }
    w.set_state(WriterState::Eos);
    let mut lat: Vec<u64> = lines.map_while(|l| l.ok()?.parse().ok()).collect();
    let _ = child.wait();
    lat.sort_unstable();
    println!(
        "wake       {path:<7} commit to reader awake, across processes, {} frames: p50 {:.1} us  p99 {:.1} us  max {:.1} us",
        lat.len(),
        percentile(&lat, 50.0) as f64 / 1e3,
        percentile(&lat, 99.0) as f64 / 1e3,
        *lat.last().unwrap() as f64 / 1e3
    );
    (path, percentile(&lat, 50.0), percentile(&lat, 99.0))
}

fn thread_cpu_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// CPU of a zero-copy `latest()` (the lease taken and given back) after the 33 ms sleep
/// a reader of a 30 fps camera has between frames, a writer thread committing 1080p
/// frames at 30 fps: what the ring's own read costs with caches and TLB gone cold.
/// Returns (us per read, us for the two clock reads around nothing, timed the same way).
fn cold_lease(quick: bool) -> (f64, f64) {
    let reads = if quick { 60 } else { 300 };
    let dir = TestDir::new("bench-cold");
    let loc = dir.ring("cold");
    let frame = vec![7u8; 1920 * 1080 * 3 / 2];
    let mut w = RingWriter::create(
        &loc,
        &WriterConfig {
            slots: 16,
            max_frame: frame.len() as u64,
            ..Default::default()
        },
    )
    .unwrap();
    let mut r = RingReader::open(&loc).unwrap();
    assert!(r.enable_zero_copy().unwrap());
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                w.write(&FrameMeta::default(), &frame).unwrap();
                std::thread::sleep(Duration::from_millis(33));
            }
        });
        let mut empty = 0;
        for _ in 0..reads {
            std::thread::sleep(Duration::from_millis(33));
            let t = thread_cpu_ns();
            empty += thread_cpu_ns() - t;
        }
        let (mut read, mut n) = (0, 0);
        while n < reads {
            std::thread::sleep(Duration::from_millis(33));
            let t = thread_cpu_ns();
            let got = r.latest_zero_copy(Duration::ZERO, |i| vec![0u8; i.len as usize]);
            let leased = matches!(
                got,
                Ok(Next::Frame(Frame {
                    data: Payload::Leased(_),
                    ..
                }))
            );
            drop(got);
            let spent = thread_cpu_ns() - t;
            if leased {
                // Else no new frame had come yet: the next try counts.
                (read, n) = (read + spent, n + 1);
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (
            read as f64 / n as f64 / 1e3,
            empty as f64 / reads as f64 / 1e3,
        )
    })
}

fn main() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        let refuse = std::env::var_os(REFUSE_ENV).is_some_and(|v| !v.is_empty());
        return wake_reader(&path, refuse);
    }
    let quick = std::env::args().any(|a| a == "--quick");
    println!(
        "shmring ring benchmark ({} run, {SLOTS} slots; ratio = cost / one memcpy of the frame)",
        if quick { "quick" } else { "full" }
    );
    for (label, w, h) in [("1080p I420", 1920, 1080), ("4K I420", 3840, 2160)] {
        let c = copy_costs(w, h, SLOTS, quick);
        println!(
            "{label:<10} {:>6.2} MB  memcpy {:>7.1} us | write {:>7.1} us  ratio {:.2} | read {:>7.1} us  ratio {:.2}",
            c.frame_bytes as f64 / 1e6,
            c.memcpy_write_ns / 1e3,
            c.write_ns / 1e3,
            c.write_ratio(),
            c.read_ns / 1e3,
            c.read_ratio()
        );
    }
    println!(
        "\nwritten into the ring and read back at once (a reader following its writer), per frame:"
    );
    for (label, w, h) in [("1080p I420", 1920, 1080), ("4K I420", 3840, 2160)] {
        let (cw, cr) = write_then_read_costs(w, h, SLOTS, false, quick);
        let (nw, nr) = write_then_read_costs(w, h, SLOTS, true, quick);
        println!(
            "{label:<10} ordinary stores: write {:>7.1} us  read {:>7.1} us  sum {:>7.1} us | non-temporal: write {:>7.1} us  read {:>7.1} us  sum {:>7.1} us  ({:.2})",
            cw / 1e3,
            cr / 1e3,
            (cw + cr) / 1e3,
            nw / 1e3,
            nr / 1e3,
            (nw + nr) / 1e3,
            (nw + nr) / (cw + cr)
        );
    }
    let (cold, clock) = cold_lease(quick);
    println!(
        "cold read  1080p zero-copy latest() after a 33 ms sleep: {cold:.1} us CPU (the clock reads alone {clock:.1} us)"
    );
    let (kernel_path, p50, p99) = wake_latency(quick, false);
    let (_, fb50, fb99) = wake_latency(quick, true);
    println!(
        "wake       fallback (futex_waitv refused) / {kernel_path}: p50 {:.2}  p99 {:.2}",
        fb50 as f64 / p50.max(1) as f64,
        fb99 as f64 / p99.max(1) as f64
    );
}
