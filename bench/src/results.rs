//! What a run found: the rows of results.json, and the statistics that make them.

use std::process::Command;

use serde::Serialize;

use crate::roles::{ReaderReport, Transport, WriterReport};

#[derive(Serialize, Default)]
pub struct Results {
    pub quick: bool,
    pub seconds: f64,
    pub lease_slots: u32,
    pub date: String,
    pub machine: String,
    pub latency_one: Vec<LatencyRow>,
    /// As latency_one, shmring's ring holding 4 frames instead of half a second: a ring
    /// that fits in the cache, written with ordinary stores, beside one written around it.
    pub latency_one_4_slots: Vec<LatencyRow>,
    pub latency_three: Vec<LatencyRow>,
    pub latency_one_in_place: Vec<LatencyRow>,
    pub latency_three_in_place: Vec<LatencyRow>,
    /// As latency_three_in_place, shmring's ring holding 4 frames instead of half a
    /// second: how much of its figures is the history's memory.
    pub latency_three_in_place_4_slots: Vec<LatencyRow>,
    /// The transport alone: frames written in place, timed as they leave the source
    /// element, readers looking at a frame's header only.
    pub transport_one: Vec<LatencyRow>,
    pub transport_three: Vec<LatencyRow>,
    /// As transport_one and transport_three at 300 fps instead of 30: frames 3.3 ms
    /// apart, so the CPUs seldom go idle between them. Beside the 30 fps rows, what the
    /// machine's waking from idle adds.
    pub transport_one_300fps: Vec<LatencyRow>,
    pub transport_three_300fps: Vec<LatencyRow>,
    pub slow_reader: Vec<SlowRow>,
    pub throughput_1080p: Vec<ThroughputRow>,
    pub throughput_1080p_4_slots: Vec<ThroughputRow>,
    pub throughput_1080p_in_place: Vec<ThroughputRow>,
    pub throughput_1080p_huge_pages: Vec<ThroughputRow>,
    pub throughput_4k: Vec<ThroughputRow>,
    pub restart: Vec<RestartRow>,
    pub copy_costs: Vec<CopyCostRow>,
    pub scaling: Vec<ScalingRow>,
}

/// The scaling scenario for one transport and number of cameras: the run with the
/// median CPU per stream of its repetitions.
#[derive(Serialize, Clone)]
pub struct ScalingRow {
    pub transport: Transport,
    /// shmring's ring size in frames; 0: the sink's default (half a second).
    pub slots: u32,
    /// shmring's rings in the --huge-pages-dir, and how much of them (every writer's,
    /// MiB) the kernel gave huge pages.
    pub huge_pages: bool,
    pub huge_pages_mib: f64,
    /// Each camera's frame.
    pub width: u32,
    pub height: u32,
    pub cameras: u32,
    /// CPU of the writer and its three readers, percent of one core, per camera.
    pub cpu_percent_per_stream: f64,
    /// The same in every repetition, in the order they ran.
    pub cpu_percent_runs: Vec<f64>,
    /// The same per frame written, ms.
    pub cpu_ms_per_frame: f64,
    /// Latency p50 and p99 of each reader kind (latest, sequential, header only), over
    /// every camera.
    pub latency_ms_p50: [f64; 3],
    pub latency_ms_p99: [f64; 3],
    /// Frames the sequential readers (shmsrc: the first FIFO reader) missed, in all.
    pub sequential_missed: u64,
    /// Frames written (every camera, within the readers' time), for scale.
    pub frames_written: u64,
    /// Proportional set sizes of all the processes, MiB, and the shared memory the
    /// transport keeps (ring files or shmsink areas), MiB.
    pub pss_mib: f64,
    pub shared_mib: f64,
    pub torn: u64,
}

/// Scenario 1 for one transport: latency over every frame of every reader of every
/// run (each reader's first frame left out), and each reader's report.
#[derive(Serialize)]
pub struct LatencyRow {
    pub transport: Transport,
    pub runs: usize,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// The median of the runs' own p99s (of all their readers' frames): one run whose
    /// VM stalled moves it less than the pooled p99 above.
    pub latency_ms_p99_median_run: f64,
    /// The fewest frames any one reader got in a run.
    pub fewest_frames: u64,
    pub torn: u64,
    /// With several readers: p50 and p99 of the first, second, ... reader to receive
    /// each frame (frames every reader of a run received).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_rank_ms_p50: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_rank_ms_p99: Vec<f64>,
    /// Per cent of frames a reader received on the CPU their writer pushed them from
    /// (of those where both were known).
    pub on_writer_cpu_percent: f64,
    pub readers: Vec<ReaderReport>,
}

#[derive(Serialize)]
pub struct SlowRow {
    pub transport: Transport,
    pub writer_fps: f64,
    pub normal: ReaderReport,
    pub slow: ReaderReport,
}

/// Scenario 3 for one transport: medians over its runs, and the runs.
#[derive(Serialize)]
pub struct ThroughputRow {
    pub transport: Transport,
    pub frame: String,
    /// shmring's slots (0: the default).
    pub slots: u32,
    pub fps: f64,
    pub torn: u64,
    pub writer_fps: f64,
    pub writer_cpu_ms_per_frame: f64,
    pub reader_cpu_ms_per_frame: f64,
    /// Writer and reader together, per frame: the median over runs of their sum.
    pub cpu_ms_per_frame: f64,
    /// MiB of the writer's ring mapping backed by huge pages (shmring; 0 for shmsink).
    pub writer_huge_pages_mib: f64,
    pub runs: Vec<ThroughputRun>,
}

#[derive(Serialize)]
pub struct ThroughputRun {
    pub writer: Option<WriterReport>,
    pub reader: ReaderReport,
}

#[derive(Serialize)]
pub struct RestartRow {
    pub transport: Transport,
    pub first_writer_frames: u64,
    pub new_writer_frames: u64,
    pub first_new_frame_after_ms: Option<f64>,
    pub reader_error: Option<String>,
}

#[derive(Serialize)]
pub struct CopyCostRow {
    pub frame: String,
    pub memcpy_us: f64,
    pub write_us: f64,
    pub write_ratio: f64,
    pub read_us: f64,
    pub read_ratio: f64,
}

/// The `p` quantile (0 to 1) of `sorted`, nearest rank.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The median of the finite values of `v`.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// For the readers of each run: each frame's latencies sorted, so rank 0 is the reader
/// that received the frame first. Returns every rank's latencies over all runs, sorted.
pub fn latencies_by_rank(runs: &[Vec<ReaderReport>]) -> Vec<Vec<f64>> {
    let mut ranks: Vec<Vec<f64>> = Vec::new();
    for readers in runs.iter().filter(|r| r.len() > 1) {
        let mut by_frame: std::collections::HashMap<u64, Vec<f64>> = Default::default();
        for r in readers {
            for (&seq, &ms) in r.seqs.iter().zip(&r.latencies_ms) {
                by_frame.entry(seq).or_default().push(ms);
            }
        }
        for mut l in by_frame.into_values().filter(|l| l.len() == readers.len()) {
            l.sort_by(f64::total_cmp);
            ranks.resize(l.len(), Vec::new());
            for (rank, ms) in l.into_iter().enumerate() {
                ranks[rank].push(ms);
            }
        }
    }
    for r in &mut ranks {
        r.sort_by(f64::total_cmp);
    }
    ranks
}

/// Today's date (UTC), for results.json.
pub fn date() -> String {
    Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The cores and GStreamer version, for results.json.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let gst = Command::new("gst-launch-1.0")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.replace("gst-launch-1.0 version ", "GStreamer "))
        });
    format!(
        "{cores} cores, {}",
        gst.unwrap_or_else(|| "GStreamer ?".into())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(seqs: &[u64], latencies_ms: &[f64]) -> ReaderReport {
        ReaderReport {
            seqs: seqs.to_vec(),
            latencies_ms: latencies_ms.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn ranks_compare_the_readers_of_a_run_frame_by_frame() {
        let runs = vec![
            vec![
                reader(&[1, 2, 3], &[0.1, 0.9, 0.5]),
                // Missed frame 2: that frame is left out of the ranks.
                reader(&[1, 3], &[0.3, 0.2]),
            ],
            vec![reader(&[7], &[0.4]), reader(&[7], &[0.6])],
            // A run with one reader has no ranks.
            vec![reader(&[1], &[5.0])],
        ];
        assert_eq!(
            latencies_by_rank(&runs),
            vec![vec![0.1, 0.2, 0.4], vec![0.3, 0.5, 0.6]]
        );
    }
}
