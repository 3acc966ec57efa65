//! The floor under the transport rows: shmring's ring through its Rust API alone, with
//! no GStreamer around it, carrying only the 24-byte header of each frame.
//!
//! What is left is the ring's commit, one futex wake, the kernel waking each reader on
//! a core and the reader's check of the commit word: what any futex-woken transport pays
//! on this machine before an element does anything. Timed exactly as the transport rows
//! are, from the writer's clock reading before the commit to the reader's after its
//! read returns, it says how much of those rows is the machine's and how much the
//! elements', and whether a goal can be met here at all.

use std::time::{Duration, Instant};

use shmring_common::reader::{Next, RingReader};
use shmring_common::writer::{RingWriter, WriterConfig};
use shmring_common::FrameMeta;

use crate::roles::{cpu_ms, pss_kib, summarise, this_cpu, Header, Role, Tally, WriterReport};

/// Push time, sequence and writer pid, as the elements' frames begin.
const FRAME_BYTES: usize = 24;
/// Slots of the ring: a handful, as nothing but the newest frame is read.
const SLOTS: u32 = 8;

/// Commits a header-only frame `role.fps` times a second for `role.seconds`.
pub fn writer(role: &Role) -> WriterReport {
    let config = WriterConfig {
        slots: SLOTS,
        max_frame: FRAME_BYTES as u64,
        ..WriterConfig::default()
    };
    let Some(mut ring) = role
        .location()
        .and_then(|loc| RingWriter::create(&loc, &config).ok())
    else {
        return WriterReport::default();
    };
    let fps = f64::from(role.fps.max(1));
    let start = Instant::now();
    let (mut frames, mut window) = (0u64, None);
    let mut report = WriterReport::default();
    for seq in 1u64.. {
        let due = Duration::from_secs_f64(seq as f64 / fps);
        if due.as_secs_f64() >= role.seconds {
            break;
        }
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let t = start.elapsed().as_secs_f64();
        if t >= role.measure_from && window.is_none() {
            window = Some((frames, Instant::now(), cpu_ms()));
        }
        if let Some((f0, t0, cpu0)) = window {
            if t >= role.measure_from + role.measure_for && report.frames == 0 {
                let n = (frames - f0).max(1);
                report.frames = n;
                report.fps = n as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                report.cpu_ms_total = cpu_ms() - cpu0;
                report.cpu_ms_per_frame = report.cpu_ms_total / n as f64;
            }
        }
        let mut header = [0u8; FRAME_BYTES];
        Header::now(seq).write(&mut header);
        if ring.write(&FrameMeta::default(), &header).is_ok() {
            frames += 1;
        }
    }
    report.memory = "ring".into();
    report.pss_kib = pss_kib();
    report
}

/// Reads the newest frame as each is committed, for `role.seconds`.
pub fn reader(role: &Role) -> crate::roles::ReaderReport {
    let deadline = Instant::now() + Duration::from_secs_f64(role.seconds);
    let mut tally = Tally::default();
    let (cpu0, mut error) = (cpu_ms(), None);
    let mut ring = None;
    while ring.is_none() && Instant::now() < deadline {
        ring = role.location().and_then(|loc| RingReader::open(&loc).ok());
        if ring.is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    while let (Some(r), Some(left)) = (
        ring.as_mut(),
        deadline.checked_duration_since(Instant::now()),
    ) {
        match r.latest(left, |info| vec![0u8; info.len as usize]) {
            Ok(Next::Frame(frame)) => {
                let (now, cpu) = (shmring_common::monotonic_ns(), this_cpu());
                match Header::read(&frame.data, FRAME_BYTES) {
                    Some(h) => tally.frame(h, now, cpu),
                    None => tally.torn(),
                }
            }
            Ok(Next::TimedOut | Next::Interrupted) => {}
            Ok(Next::Eos | Next::WriterGone(_)) => break,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    if ring.is_none() {
        error = Some(format!("no ring {} to read", role.channel));
    }
    summarise(&tally, role, cpu_ms() - cpu0, pss_kib(), error)
}
