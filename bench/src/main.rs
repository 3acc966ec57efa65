//! shmring-bench: the same scenarios over shmringsink/shmringsrc and over GStreamer's
//! shmsink/shmsrc, in one run, on the same frames. Every frame carries its push time,
//! sequence and writer pid in a header and a pattern after it; readers check every
//! byte and measure latency from push to receipt (CLOCK_MONOTONIC, shared by all
//! processes). Writers and readers are separate processes: this binary started again
//! in a role.
//!
//!   shmring-bench [--quick] [--out DIR] [--lease-slots N] [--only SCENARIO,...]
//!                 [--huge-pages-dir DIR] [--seconds S]
//!
//! --seconds sets how long each measurement runs (8 s, 1.5 s with --quick).
//!
//! Scenarios: latency1, latency3, latency1-inplace, latency3-inplace, slow, max1080,
//! max1080-4slots, max1080-inplace, max1080-huge, max4k, restart, copy, scaling,
//! scaling-4slots, scaling-huge, scaling-1080p.
//!
//! scaling: N cameras (1, 2, 4, 8, 16; 1 and 4 in a quick run), each a 1280x720 writer
//! at 30 fps filling frames in place, each with three readers (shmring: one latest, one
//! sequential, one that looks at a frame's header only; shmsrc: three FIFO readers,
//! the third looking at the header only): CPU of every process per stream and per
//! frame, each reader kind's latency, frames the sequential readers missed, memory.
//! Each N is run three times (once in a quick run), the transports taking turns, and
//! the run with the median CPU per stream is reported. scaling-4slots adds a variant to
//! the turns: shmring with 4-slot rings instead of the default half second, the
//! control that says what the default ring's size costs; scaling-huge one more:
//! default rings in the --huge-pages-dir (left out without it), the control that says
//! how much of that is the TLB. scaling-1080p: the same at 1920x1080, both transports,
//! N = 1, 2, 4 and 8 (1 and 2 in a quick run; 16 such streams with every byte of two
//! readers' frames checked would need more than two cores).
//!
//! max1080-huge puts shmring's rings in DIR, a directory on a tmpfs mounted with huge
//! pages (`huge=advise` or `huge=within_size`; scripts/bench.sh mounts one when it runs
//! as root), and is left out without --huge-pages-dir. shmsink has no setting for where
//! its shared memory lives and stays in /dev/shm.
//!
//! shmringsink runs with its default slots (half a second of video) except in
//! max1080-4slots, where the ring is small enough to stay in the cache. Writers fill
//! frames in buffers of their own, which the sinks copy, except in the -inplace
//! scenarios, where they fill the memory the sink proposes (zero-copy write for both).
//!
//! Prints a table with ratios and writes DIR/results.json (default bench-results/).

mod roles;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use roles::{ReaderReport, Role, RoleKind, Transport, WriterReport, ROLE_ENV};

const SLOW_READER_MS: u64 = 300;

/// The names `--only` takes.
const SCENARIOS: [&str; 16] = [
    "latency1",
    "latency3",
    "latency1-inplace",
    "latency3-inplace",
    "slow",
    "max1080",
    "max1080-4slots",
    "max1080-inplace",
    "max1080-huge",
    "max4k",
    "restart",
    "copy",
    "scaling",
    "scaling-4slots",
    "scaling-huge",
    "scaling-1080p",
];

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        std::process::exit(roles::run(&role));
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "bench-results".into());
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let lease_slots: u32 = value("--lease-slots")
        .map(|v| v.parse().expect("--lease-slots takes a number"))
        .unwrap_or(shmring_common::writer::DEFAULT_SPARES);
    let only = value("--only");
    if let Some(dir) = value("--huge-pages-dir") {
        let _ = HUGE_PAGES_DIR.set(dir);
    }
    if let Some(unknown) = only
        .iter()
        .flat_map(|o| o.split(','))
        .find(|s| !SCENARIOS.contains(s))
    {
        eprintln!(
            "shmring-bench: no scenario {unknown:?}; --only takes some of {}",
            SCENARIOS.join(",")
        );
        std::process::exit(2);
    }
    let run = |name: &str| {
        debug_assert!(SCENARIOS.contains(&name), "{name} missing from SCENARIOS");
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|s| s == name))
    };
    LEASE_SLOTS.store(lease_slots, std::sync::atomic::Ordering::Relaxed);
    let seconds: f64 = match value("--seconds").map(|v| v.parse::<f64>()) {
        Some(Ok(s)) if s.is_finite() && s >= 0.5 => s,
        Some(_) => {
            eprintln!("shmring-bench: --seconds takes a number of seconds, at least 0.5");
            std::process::exit(2);
        }
        None if quick => 1.5,
        None => 8.0,
    };
    println!(
        "shmring-bench: {} run, {seconds} s per measurement, 1920x1080 I420 unless said",
        if quick { "quick" } else { "full" }
    );

    let mut results = Results {
        quick,
        seconds,
        lease_slots,
        date: date(),
        machine: machine(),
        ..Default::default()
    };
    // Scenarios 1 and 3 depend on what else the machine runs at the time, so they are
    // repeated with the transports taking turns.
    let reps = |full: usize| if quick { 1 } else { full };
    if run("latency1") {
        results.latency_one = scenario_latency(1, false, seconds, reps(LATENCY_REPETITIONS));
    }
    if run("latency3") {
        results.latency_three = scenario_latency(3, false, seconds, reps(LATENCY_REPETITIONS));
    }
    if run("latency1-inplace") {
        results.latency_one_in_place =
            scenario_latency(1, true, seconds, reps(LATENCY_REPETITIONS));
    }
    if run("latency3-inplace") {
        results.latency_three_in_place =
            scenario_latency(3, true, seconds, reps(LATENCY_REPETITIONS));
    }
    for transport in [Transport::Shmring, Transport::Shm] {
        if run("slow") {
            results
                .slow_reader
                .push(scenario_slow_reader(transport, seconds));
        }
        if run("restart") {
            results.restart.push(scenario_restart(transport, seconds));
        }
    }
    let throughput = |w, h, slots, in_place| {
        let how = Throughput {
            width: w,
            height: h,
            slots,
            in_place,
            huge_pages: false,
        };
        scenario_throughput(how, seconds, reps(THROUGHPUT_REPETITIONS))
    };
    if run("max1080") {
        results.throughput_1080p = throughput(1920, 1080, 0, false);
    }
    if run("max1080-4slots") {
        results.throughput_1080p_4_slots = throughput(1920, 1080, IN_CACHE_SLOTS, false);
    }
    if run("max1080-inplace") {
        results.throughput_1080p_in_place = throughput(1920, 1080, 0, true);
    }
    if run("max1080-huge") {
        if HUGE_PAGES_DIR.get().is_some() {
            let how = Throughput {
                width: 1920,
                height: 1080,
                slots: 0,
                in_place: false,
                huge_pages: true,
            };
            results.throughput_1080p_huge_pages =
                scenario_throughput(how, seconds, reps(THROUGHPUT_REPETITIONS));
        } else {
            println!("max1080-huge left out: no --huge-pages-dir");
        }
    }
    if run("max4k") && !quick {
        results.throughput_4k = throughput(3840, 2160, 0, false);
    }
    for (label, w, h) in [("1080p", 1920, 1080), ("4K", 3840, 2160)]
        .into_iter()
        .filter(|_| run("copy"))
    {
        let c = shmring_common::testing::copy_costs(w, h, 8, quick);
        results.copy_costs.push(CopyCostRow {
            frame: label.into(),
            memcpy_us: c.memcpy_write_ns / 1e3,
            write_us: c.write_ns / 1e3,
            write_ratio: c.write_ratio(),
            read_us: c.read_ns / 1e3,
            read_ratio: c.read_ratio(),
        });
    }
    if run("scaling") || run("scaling-4slots") || run("scaling-huge") {
        let cameras: &[u32] = if quick { &[1, 4] } else { &[1, 2, 4, 8, 16] };
        // (transport, slots, huge pages): slots 0 is the sink's default, half a second.
        let mut variants = vec![];
        if run("scaling") {
            variants.push((Transport::Shmring, 0, false));
        }
        if run("scaling-4slots") {
            variants.push((Transport::Shmring, 4, false));
        }
        if run("scaling-huge") {
            if HUGE_PAGES_DIR.get().is_some() {
                variants.push((Transport::Shmring, 0, true));
            } else {
                println!("scaling-huge left out: no --huge-pages-dir");
            }
        }
        // Every ratio is against shmsink's figures of the same run.
        variants.push((Transport::Shm, 0, false));
        results.scaling.extend(scenario_scaling_median(
            &variants,
            (1280, 720),
            cameras,
            seconds,
            reps(SCALING_REPETITIONS),
        ));
    }
    if run("scaling-1080p") {
        let cameras: &[u32] = if quick { &[1, 2] } else { &[1, 2, 4, 8] };
        let variants = [(Transport::Shmring, 0, false), (Transport::Shm, 0, false)];
        results.scaling.extend(scenario_scaling_median(
            &variants,
            (1920, 1080),
            cameras,
            seconds,
            reps(SCALING_REPETITIONS),
        ));
    }
    print_table(&results);
    std::fs::create_dir_all(&out).expect("output directory");
    let path = format!("{out}/results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap())
        .expect("results.json written");
    println!("\nresults: {path}");
}

#[derive(Serialize, Default)]
struct Results {
    quick: bool,
    seconds: f64,
    lease_slots: u32,
    date: String,
    machine: String,
    latency_one: Vec<LatencyRow>,
    latency_three: Vec<LatencyRow>,
    latency_one_in_place: Vec<LatencyRow>,
    latency_three_in_place: Vec<LatencyRow>,
    slow_reader: Vec<SlowRow>,
    throughput_1080p: Vec<ThroughputRow>,
    throughput_1080p_4_slots: Vec<ThroughputRow>,
    throughput_1080p_in_place: Vec<ThroughputRow>,
    throughput_1080p_huge_pages: Vec<ThroughputRow>,
    throughput_4k: Vec<ThroughputRow>,
    restart: Vec<RestartRow>,
    copy_costs: Vec<CopyCostRow>,
    scaling: Vec<ScalingRow>,
}

/// The scaling scenario for one transport and number of cameras: the run with the
/// median CPU per stream of its repetitions.
#[derive(Serialize, Clone)]
struct ScalingRow {
    transport: Transport,
    /// shmring's ring size in frames; 0: the sink's default (half a second).
    slots: u32,
    /// shmring's rings in the --huge-pages-dir, and how much of them (every writer's,
    /// MiB) the kernel gave huge pages.
    huge_pages: bool,
    huge_pages_mib: f64,
    /// Each camera's frame.
    width: u32,
    height: u32,
    cameras: u32,
    /// CPU of the writer and its three readers, percent of one core, per camera.
    cpu_percent_per_stream: f64,
    /// The same in every repetition, in the order they ran.
    cpu_percent_runs: Vec<f64>,
    /// The same per frame written, ms.
    cpu_ms_per_frame: f64,
    /// Latency p50 and p99 of each reader kind (latest, sequential, header only), over
    /// every camera.
    latency_ms_p50: [f64; 3],
    latency_ms_p99: [f64; 3],
    /// Frames the sequential readers (shmsrc: the first FIFO reader) missed, in all.
    sequential_missed: u64,
    /// Frames written (every camera, within the readers' time), for scale.
    frames_written: u64,
    /// Proportional set sizes of all the processes, MiB, and the shared memory the
    /// transport keeps (ring files or shmsink areas), MiB.
    pss_mib: f64,
    shared_mib: f64,
    torn: u64,
}

/// Scenario 1 for one transport: latency over every frame of every reader of every
/// run (each reader's first frame left out), and each reader's report.
#[derive(Serialize)]
struct LatencyRow {
    transport: Transport,
    runs: usize,
    latency_ms_p50: f64,
    latency_ms_p99: f64,
    latency_ms_max: f64,
    /// The fewest frames any one reader got in a run.
    fewest_frames: u64,
    torn: u64,
    /// With several readers: p50 and p99 of the first, second, ... reader to receive
    /// each frame (frames every reader of a run received).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    by_rank_ms_p50: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    by_rank_ms_p99: Vec<f64>,
    readers: Vec<ReaderReport>,
}

/// For the readers of each run: each frame's latencies sorted, so rank 0 is the reader
/// that received the frame first. Returns every rank's latencies over all runs, sorted.
fn latencies_by_rank(runs: &[Vec<ReaderReport>]) -> Vec<Vec<f64>> {
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

const LATENCY_REPETITIONS: usize = 5;

/// The `p` quantile (0 to 1) of `sorted`, nearest rank.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[derive(Serialize)]
struct SlowRow {
    transport: Transport,
    writer_fps: f64,
    normal: ReaderReport,
    slow: ReaderReport,
}

/// Scenario 3 for one transport: medians over its runs, and the runs.
#[derive(Serialize)]
struct ThroughputRow {
    transport: Transport,
    frame: String,
    /// shmring's slots (0: the default).
    slots: u32,
    fps: f64,
    torn: u64,
    writer_fps: f64,
    writer_cpu_ms_per_frame: f64,
    reader_cpu_ms_per_frame: f64,
    /// Writer and reader together, per frame: the median over runs of their sum.
    cpu_ms_per_frame: f64,
    /// MiB of the writer's ring mapping backed by huge pages (shmring; 0 for shmsink).
    writer_huge_pages_mib: f64,
    runs: Vec<ThroughputRun>,
}

#[derive(Serialize)]
struct ThroughputRun {
    writer: Option<WriterReport>,
    reader: ReaderReport,
}

const THROUGHPUT_REPETITIONS: usize = 5;
/// Runs of each scaling variant for each number of cameras (the median is reported):
/// one run per N gave ratios from 0.72 to 1.09 against shmsink, which two runs of the
/// same build did not agree on.
const SCALING_REPETITIONS: usize = 3;

/// A 1080p ring of 4 slots (12 MB) fits in half of a 32 MiB last-level cache, so its
/// writer uses ordinary stores and the slot it writes next is still cached.
const IN_CACHE_SLOTS: u32 = 4;

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[derive(Serialize)]
struct RestartRow {
    transport: Transport,
    first_writer_frames: u64,
    new_writer_frames: u64,
    first_new_frame_after_ms: Option<f64>,
    reader_error: Option<String>,
}

#[derive(Serialize)]
struct CopyCostRow {
    frame: String,
    memcpy_us: f64,
    write_us: f64,
    write_ratio: f64,
    read_us: f64,
    read_ratio: f64,
}

fn date() -> String {
    Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
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

/// A role process; killed when dropped.
struct Proc(Child);

impl Proc {
    fn start(role: &Role) -> Self {
        let child = Command::new(std::env::current_exe().unwrap())
            .env(ROLE_ENV, serde_json::to_string(role).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("benchmark role starts");
        Proc(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The JSON report the role printed last, once it exits.
    fn report<T: serde::de::DeserializeOwned>(mut self) -> Option<T> {
        let mut out = String::new();
        self.0.stdout.take()?.read_to_string(&mut out).ok()?;
        let _ = self.0.wait();
        out.lines().rev().find_map(|l| serde_json::from_str(l).ok())
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        if self.0.wait().is_ok() {
            remove_shm_areas_of(self.0.id());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A killed shmsink leaves its shared memory (/dev/shm/shmpipe.PID.N) behind.
fn remove_shm_areas_of(pid: u32) {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let mut parts = name.to_str().unwrap_or("").split('.');
        if parts.next() == Some("shmpipe") && parts.next().map(str::trim) == Some(&pid.to_string())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes what a scenario's channel left: the ring file once its writer is gone
/// (rings outlive their writers by design), or shmsink's socket file.
fn remove_channel(transport: Transport, channel: &str, dir: Option<&str>) {
    match transport {
        Transport::Shmring => {
            let dir = dir.map(std::path::Path::new);
            if let Ok(loc) = shmring_common::location::RingLocation::parse(channel, dir) {
                let _ = shmring_common::writer::remove_if_dead(&loc);
            }
        }
        Transport::Shm => {
            let _ = std::fs::remove_file(channel);
        }
    }
}

fn channel(transport: Transport, scenario: &str) -> String {
    match transport {
        Transport::Shmring => format!("bench-{scenario}-{}", std::process::id()),
        Transport::Shm => format!("/tmp/shmring-bench-{scenario}-{}.sock", std::process::id()),
    }
}

/// Spare slots the shmring writers get (--lease-slots).
static LEASE_SLOTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn writer_role(
    transport: Transport,
    channel: &str,
    width: u32,
    height: u32,
    fps: u32,
    reader_seconds: f64,
    extra_seconds: f64,
) -> Role {
    let lease_slots = LEASE_SLOTS.load(std::sync::atomic::Ordering::Relaxed);
    // The writer's figures cover the middle of the readers' time, not the time before
    // they attach or after they leave, when shmsink has nobody to copy for.
    let margin = 0.3f64.min(reader_seconds / 4.0);
    Role {
        kind: RoleKind::Writer,
        transport,
        channel: channel.into(),
        width,
        height,
        fps,
        seconds: reader_seconds + extra_seconds,
        delay_ms: 0,
        slots: 0,
        lease_slots,
        in_place: false,
        dir: None,
        mode: None,
        peek: false,
        measure_from: READER_START.as_secs_f64() + margin,
        measure_for: reader_seconds - 2.0 * margin,
    }
}

fn reader_role(w: &Role, seconds: f64, delay_ms: u64) -> Role {
    Role {
        kind: RoleKind::Reader,
        seconds,
        delay_ms,
        ..w.clone()
    }
}

/// Readers start after the writer (shmsrc needs its socket); they run `seconds`.
const READER_START: Duration = Duration::from_millis(700);

/// `reps` runs of `run` for each transport, taking turns (the first transport
/// alternates), so that a slower or faster spell of the machine falls on both. The
/// runs come back by transport, in order: run i of each ran back to back.
fn paired_runs<T>(reps: usize, mut run: impl FnMut(Transport) -> T) -> [(Transport, Vec<T>); 2] {
    let mut runs = [
        (Transport::Shmring, Vec::new()),
        (Transport::Shm, Vec::new()),
    ];
    for rep in 0..reps {
        for i in [rep % 2, 1 - rep % 2] {
            let t = runs[i].0;
            runs[i].1.push(run(t));
        }
    }
    runs
}

fn latency_run(
    transport: Transport,
    readers: usize,
    in_place: bool,
    seconds: f64,
) -> Vec<ReaderReport> {
    let ch = channel(transport, &format!("lat{readers}-{in_place}"));
    let w = Role {
        in_place,
        ..writer_role(transport, &ch, 1920, 1080, 30, seconds, 2.0)
    };
    let writer = Proc::start(&w);
    std::thread::sleep(READER_START);
    let procs: Vec<Proc> = (0..readers)
        .map(|_| Proc::start(&reader_role(&w, seconds, 0)))
        .collect();
    let reports = procs
        .into_iter()
        .map(|p| p.report::<ReaderReport>().unwrap_or_default())
        .collect();
    drop(writer);
    remove_channel(transport, &ch, None);
    reports
}

fn scenario_latency(readers: usize, in_place: bool, seconds: f64, reps: usize) -> Vec<LatencyRow> {
    paired_runs(reps, |t| latency_run(t, readers, in_place, seconds))
        .into_iter()
        .map(|(transport, runs)| {
            let n = runs.len();
            let ranks = latencies_by_rank(&runs);
            let reports: Vec<ReaderReport> = runs.into_iter().flatten().collect();
            let mut all: Vec<f64> = reports
                .iter()
                .flat_map(|r| r.latencies_ms.iter().copied())
                .collect();
            all.sort_by(f64::total_cmp);
            LatencyRow {
                transport,
                runs: n,
                latency_ms_p50: quantile(&all, 0.5),
                latency_ms_p99: quantile(&all, 0.99),
                latency_ms_max: quantile(&all, 1.0),
                fewest_frames: reports.iter().map(|r| r.frames).min().unwrap_or(0),
                torn: reports.iter().map(|r| r.torn).sum(),
                by_rank_ms_p50: ranks.iter().map(|r| quantile(r, 0.5)).collect(),
                by_rank_ms_p99: ranks.iter().map(|r| quantile(r, 0.99)).collect(),
                readers: reports,
            }
        })
        .collect()
}

fn scenario_slow_reader(transport: Transport, seconds: f64) -> SlowRow {
    let ch = channel(transport, "slow");
    let w = writer_role(transport, &ch, 1920, 1080, 30, seconds, 1.5);
    let writer = Proc::start(&w);
    std::thread::sleep(READER_START);
    let slow = Proc::start(&reader_role(&w, seconds, SLOW_READER_MS));
    let normal = Proc::start(&reader_role(&w, seconds, 0));
    let normal = normal.report::<ReaderReport>().unwrap_or_default();
    let slow = slow.report::<ReaderReport>().unwrap_or_default();
    let writer = writer.report::<WriterReport>();
    remove_channel(transport, &ch, None);
    SlowRow {
        transport,
        writer_fps: writer.map(|w| w.fps).unwrap_or(0.0),
        normal,
        slow,
    }
}

/// What a scenario-3 run writes, and how.
#[derive(Clone, Copy)]
struct Throughput {
    width: u32,
    height: u32,
    /// shmring's slots (0: the default).
    slots: u32,
    /// Writers fill the memory the sink proposes.
    in_place: bool,
    /// shmring's rings live in the --huge-pages-dir.
    huge_pages: bool,
}

/// Where max1080-huge puts shmring's rings (--huge-pages-dir).
static HUGE_PAGES_DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn throughput_run(transport: Transport, how: Throughput, seconds: f64) -> ThroughputRun {
    let name = format!(
        "max{}-{}-{}-{}",
        how.height, how.slots, how.in_place, how.huge_pages
    );
    let ch = channel(transport, &name);
    let w = Role {
        slots: how.slots,
        in_place: how.in_place,
        dir: HUGE_PAGES_DIR
            .get()
            .filter(|_| how.huge_pages && transport == Transport::Shmring)
            .cloned(),
        ..writer_role(transport, &ch, how.width, how.height, 0, seconds, 1.5)
    };
    let writer = Proc::start(&w);
    std::thread::sleep(READER_START);
    let reader = Proc::start(&reader_role(&w, seconds, 0))
        .report::<ReaderReport>()
        .unwrap_or_default();
    let writer = writer.report::<WriterReport>();
    remove_channel(transport, &ch, w.dir.as_deref());
    ThroughputRun { writer, reader }
}

fn scenario_throughput(how: Throughput, seconds: f64, reps: usize) -> Vec<ThroughputRow> {
    let Throughput {
        width,
        height,
        slots,
        in_place,
        huge_pages,
    } = how;
    paired_runs(reps, |t| throughput_run(t, how, seconds))
        .into_iter()
        .map(|(transport, runs)| {
            let of = |f: &dyn Fn(&ThroughputRun) -> f64| median(runs.iter().map(f).collect());
            fn writer(r: &ThroughputRun, f: fn(&WriterReport) -> f64) -> f64 {
                r.writer.as_ref().map(f).unwrap_or(f64::NAN)
            }
            ThroughputRow {
                transport,
                frame: match (slots, in_place, huge_pages) {
                    (0, false, false) => format!("{width}x{height}"),
                    (0, true, _) => format!("{width}x{height}, in place"),
                    (0, false, true) => format!("{width}x{height}, huge pages"),
                    (n, _, _) => format!("{width}x{height}, {n} slots"),
                },
                slots,
                fps: of(&|r| r.reader.fps),
                torn: runs.iter().map(|r| r.reader.torn).sum(),
                writer_fps: of(&|r| writer(r, |w| w.fps)),
                writer_cpu_ms_per_frame: of(&|r| writer(r, |w| w.cpu_ms_per_frame)),
                reader_cpu_ms_per_frame: of(&|r| r.reader.cpu_ms_per_frame),
                cpu_ms_per_frame: of(&|r| {
                    writer(r, |w| w.cpu_ms_per_frame) + r.reader.cpu_ms_per_frame
                }),
                writer_huge_pages_mib: of(&|r| writer(r, |w| w.huge_pages_kib / 1024.0)),
                runs,
            }
        })
        .collect()
}

/// Shared memory the transport holds for its writers now: ring files, or shmsink areas.
fn shared_mib(transport: Transport, channels: &[String], dir: Option<&str>) -> f64 {
    let bytes: u64 = match transport {
        Transport::Shmring => channels
            .iter()
            .filter_map(|c| {
                let loc =
                    shmring_common::location::RingLocation::parse(c, dir.map(std::path::Path::new))
                        .ok()?;
                std::fs::metadata(loc.path()).ok().map(|m| m.len())
            })
            .sum(),
        Transport::Shm => std::fs::read_dir("/dev/shm")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("shmpipe."))
            .filter_map(|e| e.metadata().ok().map(|m| m.len()))
            .sum(),
    };
    bytes as f64 / (1 << 20) as f64
}

/// For each number of `cameras` of `size` (width, height): `reps` runs of each variant
/// (transport, slots, huge pages), the variants taking turns (their order rotates with
/// each repetition); for each variant the run with the median CPU per stream, carrying
/// every run's figure.
fn scenario_scaling_median(
    variants: &[(Transport, u32, bool)],
    size: (u32, u32),
    cameras: &[u32],
    seconds: f64,
    reps: usize,
) -> Vec<ScalingRow> {
    cameras
        .iter()
        .flat_map(|&n| scaling_median_at(variants, size, n, seconds, reps))
        .collect()
}

fn scaling_median_at(
    variants: &[(Transport, u32, bool)],
    size: (u32, u32),
    cameras: u32,
    seconds: f64,
    reps: usize,
) -> Vec<ScalingRow> {
    let mut runs: Vec<Vec<ScalingRow>> = vec![vec![]; variants.len()];
    for rep in 0..reps {
        for k in 0..variants.len() {
            let i = (k + rep) % variants.len();
            let (transport, slots, huge) = variants[i];
            runs[i].push(scenario_scaling(
                transport, slots, huge, size, cameras, seconds,
            ));
        }
    }
    runs.into_iter()
        .map(|mut rows| {
            let all: Vec<f64> = rows.iter().map(|r| r.cpu_percent_per_stream).collect();
            rows.sort_by(|a, b| {
                a.cpu_percent_per_stream
                    .total_cmp(&b.cpu_percent_per_stream)
            });
            let mut row = rows.swap_remove(rows.len() / 2);
            row.cpu_percent_runs = all;
            row
        })
        .collect()
}

fn scenario_scaling(
    transport: Transport,
    slots: u32,
    huge_pages: bool,
    (width, height): (u32, u32),
    cameras: u32,
    seconds: f64,
) -> ScalingRow {
    let dir = HUGE_PAGES_DIR.get().filter(|_| huge_pages).cloned();
    let channels: Vec<String> = (0..cameras)
        .map(|i| channel(transport, &format!("scale{height}-{i}")))
        .collect();
    let writers: Vec<(Role, Proc)> = channels
        .iter()
        .map(|ch| {
            let mut w = writer_role(transport, ch, width, height, 30, seconds, 2.0);
            w.in_place = true;
            w.slots = slots;
            w.dir = dir.clone();
            let p = Proc::start(&w);
            (w, p)
        })
        .collect();
    // Every writer up before the readers, more time for more processes to start.
    std::thread::sleep(READER_START + Duration::from_millis(100 * u64::from(cameras)));
    let mut readers = vec![];
    for (w, _) in &writers {
        for kind in 0..3 {
            let mut r = reader_role(w, seconds, 0);
            if transport == Transport::Shmring {
                r.mode = Some(if kind == 1 { "sequential" } else { "latest" }.into());
            }
            r.peek = kind == 2;
            readers.push((kind, Proc::start(&r)));
        }
    }
    // Memory while everything runs: the areas the transport keeps.
    std::thread::sleep(Duration::from_secs_f64(seconds / 2.0));
    let shared = shared_mib(transport, &channels, dir.as_deref());
    let reports: Vec<(usize, ReaderReport)> = readers
        .into_iter()
        .map(|(kind, p)| (kind, p.report::<ReaderReport>().unwrap_or_default()))
        .collect();
    let writer_reports: Vec<WriterReport> = writers
        .into_iter()
        .filter_map(|(_, p)| p.report::<WriterReport>())
        .collect();
    for ch in &channels {
        remove_channel(transport, ch, dir.as_deref());
    }
    // CPU per second of each process: a writer's per frame times its rate, a reader's
    // over its whole time.
    let writer_ms_per_s: f64 = writer_reports
        .iter()
        .map(|w| w.cpu_ms_per_frame * w.fps)
        .sum();
    let reader_ms_per_s: f64 = reports.iter().map(|(_, r)| r.cpu_ms_total / seconds).sum();
    let frames_per_s: f64 = writer_reports.iter().map(|w| w.fps).sum();
    let by_kind = |kind: usize| {
        let mut all: Vec<f64> = reports
            .iter()
            .filter(|(k, _)| *k == kind)
            .flat_map(|(_, r)| r.latencies_ms.iter().copied())
            .collect();
        all.sort_by(f64::total_cmp);
        (quantile(&all, 0.5), quantile(&all, 0.99))
    };
    let kinds = [by_kind(0), by_kind(1), by_kind(2)];
    let cpu_percent_per_stream = (writer_ms_per_s + reader_ms_per_s) / f64::from(cameras) / 10.0;
    ScalingRow {
        transport,
        slots,
        huge_pages,
        huge_pages_mib: writer_reports
            .iter()
            .map(|w| w.huge_pages_kib / 1024.0)
            .sum(),
        width,
        height,
        cameras,
        cpu_percent_per_stream,
        cpu_percent_runs: vec![cpu_percent_per_stream],
        cpu_ms_per_frame: (writer_ms_per_s + reader_ms_per_s) / frames_per_s.max(1e-9),
        latency_ms_p50: kinds.map(|k| k.0),
        latency_ms_p99: kinds.map(|k| k.1),
        sequential_missed: reports
            .iter()
            .filter(|(k, _)| *k == 1)
            .map(|(_, r)| r.gaps)
            .sum(),
        frames_written: (frames_per_s * seconds) as u64,
        pss_mib: (writer_reports.iter().map(|w| w.pss_kib).sum::<f64>()
            + reports.iter().map(|(_, r)| r.pss_kib).sum::<f64>())
            / 1024.0,
        shared_mib: shared,
        torn: reports.iter().map(|(_, r)| r.torn).sum(),
    }
}

fn scenario_restart(transport: Transport, seconds: f64) -> RestartRow {
    let ch = channel(transport, "restart");
    let w = writer_role(transport, &ch, 1920, 1080, 30, seconds, 10.0);
    let mut first = Proc::start(&w);
    std::thread::sleep(READER_START);
    let reader = Proc::start(&reader_role(&w, seconds + 2.0, 0));
    std::thread::sleep(Duration::from_secs_f64(seconds / 2.0));
    let first_pid = first.pid();
    first.kill();
    std::thread::sleep(Duration::from_millis(500));
    if transport == Transport::Shm {
        // A dead shmsink leaves its socket file behind; the new one could not bind.
        let _ = std::fs::remove_file(&ch);
    }
    let started = shmring_common::monotonic_ns();
    let second = Proc::start(&w);
    let second_pid = second.pid();
    let r = reader.report::<ReaderReport>().unwrap_or_default();
    drop(second);
    remove_channel(transport, &ch, None);
    let count = |pid: u32| {
        r.per_writer
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| p.frames)
            .unwrap_or(0)
    };
    let first_new = r
        .per_writer
        .iter()
        .find(|p| p.pid == second_pid)
        .map(|p| (p.first_receipt_ns.saturating_sub(started)) as f64 / 1e6);
    RestartRow {
        transport,
        first_writer_frames: count(first_pid),
        new_writer_frames: count(second_pid),
        first_new_frame_after_ms: first_new,
        reader_error: r.error.clone(),
    }
}

/// One row of the table: shmring's figure, shmsink's and their ratio.
fn row(label: impl std::fmt::Display, x: f64, y: f64) {
    println!("{label:<58} {x:>18.2} {y:>18.2} {:>8}", ratio(x, y));
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

fn print_table(r: &Results) {
    println!(
        "\n{:<58} {:>18} {:>18} {:>8}",
        "scenario", "shmring", "shmsink/shmsrc", "ratio"
    );
    for (name, rows) in [
        ("1. one reader at 30 fps", &r.latency_one),
        ("1. three readers at 30 fps", &r.latency_three),
        ("1. one reader, written in place", &r.latency_one_in_place),
        (
            "1. three readers, written in place",
            &r.latency_three_in_place,
        ),
    ] {
        let get = |t: Transport| rows.iter().find(|x| x.transport == t);
        let (Some(a), Some(b)) = (get(Transport::Shmring), get(Transport::Shm)) else {
            continue; // not run (--only)
        };
        let all = if a.runs > 1 {
            format!(", {} runs", a.runs)
        } else {
            String::new()
        };
        for (label, x, y) in [
            ("latency p50 ms", a.latency_ms_p50, b.latency_ms_p50),
            ("latency p99 ms", a.latency_ms_p99, b.latency_ms_p99),
            ("latency max ms", a.latency_ms_max, b.latency_ms_max),
        ] {
            row(format!("{name}{all}: {label}"), x, y);
        }
        if !a.by_rank_ms_p99.is_empty() && !b.by_rank_ms_p99.is_empty() {
            let joined = |v: &[f64]| {
                v.iter()
                    .map(|x| format!("{x:.2}"))
                    .collect::<Vec<_>>()
                    .join("/")
            };
            for (label, x, y) in [
                ("p50", &a.by_rank_ms_p50, &b.by_rank_ms_p50),
                ("p99", &a.by_rank_ms_p99, &b.by_rank_ms_p99),
            ] {
                println!(
                    "{:<58} {:>18} {:>18} {:>8}",
                    format!("{name}: {label} ms, 1st/2nd/3rd"),
                    joined(x),
                    joined(y),
                    ""
                );
            }
        }
        let (x, y) = (a.fewest_frames, b.fewest_frames);
        println!(
            "{:<58} {x:>18} {y:>18} {:>8}",
            format!("{name}: frames per reader (fewest)"),
            ratio(x as f64, y as f64)
        );
        if a.torn + b.torn > 0 {
            println!(
                "{:<58} {:>18} {:>18}",
                format!("{name}: TORN FRAMES"),
                a.torn,
                b.torn
            );
        }
    }
    let slow = |t: Transport| r.slow_reader.iter().find(|x| x.transport == t);
    if let (Some(a), Some(b)) = (slow(Transport::Shmring), slow(Transport::Shm)) {
        for (label, x, y) in [
            (
                "2. slow reader beside: normal reader fps",
                a.normal.fps,
                b.normal.fps,
            ),
            (
                "2. slow reader beside: normal p99 ms",
                a.normal.latency_ms_p99,
                b.normal.latency_ms_p99,
            ),
            (
                "2. slow reader beside: writer fps",
                a.writer_fps,
                b.writer_fps,
            ),
            (
                "2. slow reader beside: slow reader age p50 ms",
                a.slow.latency_ms_p50,
                b.slow.latency_ms_p50,
            ),
        ] {
            row(label, x, y);
        }
    }
    for rows in [
        &r.throughput_1080p,
        &r.throughput_1080p_4_slots,
        &r.throughput_1080p_in_place,
        &r.throughput_1080p_huge_pages,
        &r.throughput_4k,
    ] {
        let get = |t: Transport| rows.iter().find(|x| x.transport == t);
        if let (Some(a), Some(b)) = (get(Transport::Shmring), get(Transport::Shm)) {
            let n = a.runs.len();
            for (label, x, y) in [
                ("fps delivered", a.fps, b.fps),
                ("torn frames", a.torn as f64, b.torn as f64),
                ("writer fps", a.writer_fps, b.writer_fps),
                (
                    "writer CPU ms/frame",
                    a.writer_cpu_ms_per_frame,
                    b.writer_cpu_ms_per_frame,
                ),
                (
                    "reader CPU ms/frame",
                    a.reader_cpu_ms_per_frame,
                    b.reader_cpu_ms_per_frame,
                ),
                (
                    "writer + reader CPU ms/frame",
                    a.cpu_ms_per_frame,
                    b.cpu_ms_per_frame,
                ),
            ] {
                let label = match (label, n) {
                    ("torn frames", _) | (_, 1) => label.to_owned(),
                    _ => format!("{label}, median of {n}"),
                };
                row(format!("3. {} {label}", a.frame), x, y);
            }
            if n > 1 {
                // Run i of each transport ran back to back: their ratio cancels most of
                // what the machine was doing at the time.
                let paired = median(
                    a.runs
                        .iter()
                        .zip(&b.runs)
                        .map(|(x, y)| x.reader.fps / y.reader.fps)
                        .collect(),
                );
                println!(
                    "{:<58} {:>18} {:>18} {paired:>8.2}",
                    format!("3. {} fps ratio, median of {n} pairs", a.frame),
                    "",
                    ""
                );
                // What flat-out throughput is judged on: the CPU a frame costs the writer
                // and its reader together, which scheduling on two shared cores moves far
                // less than the rate it allows.
                let cpu = |r: &ThroughputRun| {
                    r.writer.as_ref().map_or(f64::NAN, |w| w.cpu_ms_per_frame)
                        + r.reader.cpu_ms_per_frame
                };
                let paired_cpu = median(
                    a.runs
                        .iter()
                        .zip(&b.runs)
                        .map(|(x, y)| cpu(x) / cpu(y))
                        .collect(),
                );
                println!(
                    "{:<58} {:>18} {:>18} {paired_cpu:>8.2}",
                    format!("3. {} CPU per frame ratio, median of {n} pairs", a.frame),
                    "",
                    ""
                );
            }
            if std::ptr::eq(rows, &r.throughput_1080p_huge_pages) {
                // That the ring really was in huge pages (the mount could lack them).
                println!(
                    "{:<58} {:>18.0} {:>18}",
                    format!("3. {} MiB of the ring in huge pages", a.frame),
                    a.writer_huge_pages_mib,
                    "-"
                );
            }
        }
    }
    let rs = |t: Transport| r.restart.iter().find(|x| x.transport == t);
    if let (Some(a), Some(b)) = (rs(Transport::Shmring), rs(Transport::Shm)) {
        println!(
            "{:<58} {:>18} {:>18}",
            "4. writer restarted: frames from new writer", a.new_writer_frames, b.new_writer_frames
        );
        let ms = |x: &RestartRow| {
            x.first_new_frame_after_ms
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "never".into())
        };
        println!(
            "{:<58} {:>18} {:>18}",
            "4. writer restarted: first new frame after ms",
            ms(a),
            ms(b)
        );
    }
    for c in &r.copy_costs {
        println!(
            "{:<58} {:>18}",
            format!("5. {} write cost / memcpy", c.frame),
            format!("{:.2}", c.write_ratio)
        );
        println!(
            "{:<58} {:>18}",
            format!("5. {} read cost / memcpy", c.frame),
            format!("{:.2}", c.read_ratio)
        );
    }
    // (frame height, cameras), in the order they ran.
    let runs: Vec<(u32, u32)> = {
        let mut c: Vec<(u32, u32)> = r.scaling.iter().map(|x| (x.height, x.cameras)).collect();
        c.dedup();
        c
    };
    // The row of one variant (transport, slots, huge pages) with `n` cameras of `h` lines.
    let scaling_row = |h: u32, n: u32, t: Transport, slots: u32, huge: bool| {
        r.scaling.iter().find(|x| {
            x.height == h
                && x.cameras == n
                && x.transport == t
                && x.slots == slots
                && x.huge_pages == huge
        })
    };
    for (h, n) in runs {
        let get = |t: Transport, slots: u32, huge: bool| scaling_row(h, n, t, slots, huge);
        let Some(b) = get(Transport::Shm, 0, false) else {
            continue;
        };
        for (variant, slots, huge) in [("4-slot rings", 4, false), ("rings on huge pages", 0, true)]
        {
            let Some(v) = get(Transport::Shmring, slots, huge) else {
                continue;
            };
            let name = format!("6. {n} x {h}p30, {variant}");
            row(
                format!("{name}: CPU % of a core per stream"),
                v.cpu_percent_per_stream,
                b.cpu_percent_per_stream,
            );
            println!(
                "{:<58} {:>18} {:>18}",
                format!("{name}: sequential frames missed / written"),
                format!("{} / {}", v.sequential_missed, v.frames_written),
                format!("{} / {}", b.sequential_missed, b.frames_written)
            );
            if huge {
                println!(
                    "{:<58} {:>18.1}",
                    format!("{name}: MiB of the rings in huge pages"),
                    v.huge_pages_mib
                );
            }
        }
        let Some(a) = get(Transport::Shmring, 0, false) else {
            continue;
        };
        let name = format!("6. {n} x {h}p30, 3 readers each");
        for (label, x, y) in [
            (
                "CPU % of a core per stream",
                a.cpu_percent_per_stream,
                b.cpu_percent_per_stream,
            ),
            (
                "CPU ms per frame (all processes)",
                a.cpu_ms_per_frame,
                b.cpu_ms_per_frame,
            ),
            (
                "latest reader p99 ms",
                a.latency_ms_p99[0],
                b.latency_ms_p99[0],
            ),
            (
                "sequential reader p99 ms",
                a.latency_ms_p99[1],
                b.latency_ms_p99[1],
            ),
            (
                "header-only reader p99 ms",
                a.latency_ms_p99[2],
                b.latency_ms_p99[2],
            ),
            ("memory (PSS of all) MiB", a.pss_mib, b.pss_mib),
            ("shared memory MiB", a.shared_mib, b.shared_mib),
        ] {
            row(format!("{name}: {label}"), x, y);
        }
        println!(
            "{:<58} {:>18} {:>18}",
            format!("{name}: sequential frames missed / written"),
            format!("{} / {}", a.sequential_missed, a.frames_written),
            format!("{} / {}", b.sequential_missed, b.frames_written)
        );
    }
    // Flatness, for each frame size: shmring's default ring, most cameras against fewest.
    let mut heights: Vec<u32> = r.scaling.iter().map(|x| x.height).collect();
    heights.dedup();
    for h in heights {
        let of = |n: u32| {
            scaling_row(h, n, Transport::Shmring, 0, false).map(|x| x.cpu_percent_per_stream)
        };
        let ns = r
            .scaling
            .iter()
            .filter(|x| x.height == h)
            .map(|x| x.cameras);
        let (Some(fewest), Some(most)) = (ns.clone().min(), ns.max()) else {
            continue;
        };
        if let (Some(a), Some(b)) = (of(fewest), of(most)) {
            println!(
                "{:<58} {:>18}",
                format!("6. {h}p: shmring CPU per stream, {most} cameras / {fewest}"),
                format!("{:.2}", b / a)
            );
        }
    }
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
