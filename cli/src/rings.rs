//! What the subcommands share: opening a ring to look at it, listing rings, rates, names.

use std::path::Path;
use std::time::Duration;

use shmring_common::{RingLocation, RingReader, WriterStatus};

pub(crate) type Result<T> = std::result::Result<T, String>;

/// Opens a ring to look at it: the tool does not count among its readers.
pub(crate) fn open(dir: &Path, ring: &str) -> Result<RingReader> {
    let loc = RingLocation::parse(ring, Some(dir)).map_err(|e| e.to_string())?;
    RingReader::open_for_inspection(&loc).map_err(|e| e.to_string())
}

/// How many readers have the ring open: counted by the kernel's lock table, or, where
/// that cannot be read, those with an entry in the reader table.
pub(crate) fn reader_total(r: &RingReader) -> usize {
    r.reader_count().unwrap_or(0).max(r.readers().len())
}

/// Names of the rings in `dir`, sorted.
pub(crate) fn ring_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .filter_map(|n| n.strip_suffix(".ring").map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

pub(crate) fn state_name(s: WriterStatus) -> &'static str {
    match s {
        WriterStatus::Live => "live",
        WriterStatus::Eos => "eos",
        WriterStatus::Closed => "closed",
        WriterStatus::Replaced => "replaced",
        WriterStatus::Dead => "dead",
    }
}

/// Frame rate over the last second from the commit times of the frames still held, and
/// the age of the newest frame.
pub(crate) struct Rates {
    pub(crate) fps: Option<f64>,
    pub(crate) last_age: Option<Duration>,
    pub(crate) capture_latency: Option<Duration>,
}

pub(crate) fn rates(r: &RingReader) -> Rates {
    let head = r.head();
    let now = shmring_common::monotonic_ns();
    let newest = r.peek(head).ok().flatten();
    let mut times = vec![];
    for seq in (head
        .saturating_sub(u64::from(r.geometry().slot_count.saturating_sub(1)))
        .max(1)..=head)
        .rev()
    {
        match r.peek(seq) {
            Ok(Some(info)) if now.saturating_sub(info.commit_mono_ns) <= 1_000_000_000 => {
                times.push(info.commit_mono_ns)
            }
            _ => break,
        }
    }
    // Commit times are the writer's word: a hostile ring may make them go down.
    let fps = (times.len() >= 2).then(|| {
        let span = times[0].abs_diff(times[times.len() - 1]) as f64 / 1e9;
        (times.len() - 1) as f64 / span.max(1e-9)
    });
    Rates {
        fps,
        last_age: newest
            .as_ref()
            .map(|i| Duration::from_nanos(now.saturating_sub(i.commit_mono_ns))),
        capture_latency: newest.as_ref().map(|i| {
            Duration::from_nanos(shmring_common::realtime_ns().saturating_sub(i.captured_at_ns))
        }),
    }
}
