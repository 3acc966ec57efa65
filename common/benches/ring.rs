//! Ring benchmark: write and read cost per frame as a ratio to one plain memcpy of the
//! same frame (measured in the same run, with the same rotation over slots), and
//! commit-to-wake latency across processes, and a frame written then read at once with
//! ordinary and with non-temporal stores. Prints figures; asserts nothing.
//!
//!   cargo bench -p shmring-common --bench ring            full run
//!   cargo bench -p shmring-common --bench ring -- --quick  short run (CI)

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use shmring_common::testing::{copy_costs, write_then_read_costs, TestDir};
use shmring_common::*;

const CHILD_ENV: &str = "SHMRING_BENCH_WAKE_READER";
const SLOTS: u32 = 8;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The reader side of the wake benchmark: waits for each frame, prints its latency.
fn wake_reader(path: &str) {
    let loc = RingLocation::parse(path, None).unwrap();
    let mut r = RingReader::open(&loc).unwrap();
    r.seek_after(r.head());
    println!("ready");
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

fn wake_latency(quick: bool) {
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
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
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
        "wake       commit to reader awake, across processes, {} frames: p50 {:.1} us  p99 {:.1} us  max {:.1} us",
        lat.len(),
        percentile(&lat, 50.0) as f64 / 1e3,
        percentile(&lat, 99.0) as f64 / 1e3,
        *lat.last().unwrap() as f64 / 1e3
    );
}

fn main() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        return wake_reader(&path);
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
    wake_latency(quick);
}
