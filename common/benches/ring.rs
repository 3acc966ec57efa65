//! Ring benchmark: write and read cost per frame as a ratio to one plain memcpy of the
//! same frame (measured in the same run, with the same rotation over slots), and
//! commit-to-wake latency across processes. Prints figures; asserts nothing.
//!
//!   cargo bench -p shmring-common --bench ring            full run
//!   cargo bench -p shmring-common --bench ring -- --quick  short run (CI)

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmring_common::testing::TestDir;
use shmring_common::*;

const CHILD_ENV: &str = "SHMRING_BENCH_WAKE_READER";
const SLOTS: u32 = 8;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Median over `batches` of the mean ns per call of `f` over `iters` calls.
fn time_per_call(batches: usize, iters: usize, mut f: impl FnMut(usize)) -> f64 {
    f(0); // warm up (page faults of fresh memory)
    let mut results = Vec::with_capacity(batches);
    for b in 0..batches {
        let t = Instant::now();
        for i in 0..iters {
            f(b * iters + i);
        }
        results.push(t.elapsed().as_nanos() as f64 / iters as f64);
    }
    median(results)
}

fn copy_costs(label: &str, width: usize, height: usize, quick: bool) {
    let size = width * height * 3 / 2; // I420
    let (batches, iters) = if quick { (3, 10) } else { (15, 40) };
    let frame: Vec<u8> = (0..size).map(|i| i as u8).collect();

    // Baseline for writing: one memcpy of the frame into one of SLOTS destinations.
    let mut dsts: Vec<Vec<u8>> = (0..SLOTS).map(|_| vec![1u8; size]).collect();
    let memcpy_write = time_per_call(batches, iters, |i| {
        let d = &mut dsts[i % SLOTS as usize];
        d.copy_from_slice(black_box(&frame));
        black_box(d);
    });
    // Baseline for reading: one memcpy from one of SLOTS sources into one buffer.
    let mut out = vec![0u8; size];
    let memcpy_read = time_per_call(batches, iters, |i| {
        out.copy_from_slice(black_box(&dsts[i % SLOTS as usize]));
        black_box(&out);
    });
    drop(dsts);

    let dir = TestDir::new("bench");
    let loc = dir.ring("bench");
    let mut w = RingWriter::create(
        &loc,
        &WriterConfig {
            slots: SLOTS,
            max_frame: size as u64,
            ..Default::default()
        },
    )
    .expect("ring");
    let meta = FrameMeta::default();
    let write = time_per_call(batches, iters, |_| {
        w.write(&meta, black_box(&frame)).unwrap();
    });
    let mut r = RingReader::open(&loc).unwrap();
    let mut buf = vec![0u8; size];
    let read = time_per_call(batches, iters, |i| {
        // A committed frame of a different slot each time, as a reader following the writer.
        let h = w.handle(w.head() - (i as u64 % u64::from(SLOTS - 1)));
        // The same buffer every time, moved in and out: no allocation per read.
        match r.by_handle(&h, |_| std::mem::take(&mut buf)).unwrap() {
            ByHandle::Frame(f) => buf = black_box(f.data),
            other => panic!("{other:?}"),
        }
    });
    println!(
        "{label:<10} {:>6.2} MB  memcpy {:>7.1} us | write {:>7.1} us  ratio {:.2} | read {:>7.1} us  ratio {:.2}",
        size as f64 / 1e6,
        memcpy_write / 1e3,
        write / 1e3,
        write / memcpy_write,
        read / 1e3,
        read / memcpy_read
    );
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
    let mut child = Command::new(std::env::current_exe().unwrap())
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
    copy_costs("1080p I420", 1920, 1080, quick);
    copy_costs("4K I420", 3840, 2160, quick);
    wake_latency(quick);
}
