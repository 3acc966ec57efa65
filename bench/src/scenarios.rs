//! The scenarios: which run (--only), and each one's processes, measured and summed up.

use std::time::Duration;

use crate::args::{Args, HUGE_PAGES_DIR};
use crate::procs::{channel, reader_role, remove_channel, writer_role, Proc, READER_START};
use crate::results::{
    date, latencies_by_rank, machine, median, quantile, CopyCostRow, LatencyRow, RestartRow,
    Results, ScalingRow, SlowRow, ThroughputRow, ThroughputRun,
};
use crate::roles::{ReaderReport, Role, Transport, WriterReport};

const SLOW_READER_MS: u64 = 300;
const LATENCY_REPETITIONS: usize = 5;
const THROUGHPUT_REPETITIONS: usize = 5;
/// Runs of each scaling variant for each number of cameras (the median is reported):
/// one run per N gave ratios from 0.72 to 1.09 against shmsink, which two runs of the
/// same build did not agree on.
const SCALING_REPETITIONS: usize = 3;

/// A 1080p ring of 4 slots (12 MB) fits in half of a 32 MiB last-level cache, so its
/// writer uses ordinary stores and the slot it writes next is still cached.
const IN_CACHE_SLOTS: u32 = 4;

/// Hands the results so far on to be written.
type Save<'s> = &'s mut dyn FnMut(&Results);

/// Runs the scenarios the command line asks for, in a fixed order, handing the results
/// so far to `save` after each scenario, so that a run stopped by a time limit keeps
/// every scenario it finished.
pub fn run(args: &Args, mut save: impl FnMut(&Results)) -> Results {
    let mut results = Results {
        quick: args.quick,
        seconds: args.seconds,
        lease_slots: args.lease_slots,
        date: date(),
        machine: machine(),
        ..Default::default()
    };
    run_latency(args, &mut results, &mut save);
    run_slow_and_restart(args, &mut results, &mut save);
    run_throughput(args, &mut results, &mut save);
    run_copy(args, &mut results);
    save(&results);
    run_scaling(args, &mut results, &mut save);
    results
}

/// Scenario 1: latency1, latency1-4slots, latency3, latency1-inplace, latency3-inplace,
/// latency3-inplace-4slots, and the transport's own latency, transport1 and transport3,
/// at 30 and at 300 fps.
fn run_latency(args: &Args, results: &mut Results, save: Save) {
    let (seconds, reps) = (args.seconds, args.reps(LATENCY_REPETITIONS));
    type Rows = fn(&mut Results) -> &mut Vec<LatencyRow>;
    let scenarios: [(&str, Rows, Latency); 10] = [
        (
            "latency1",
            |r| &mut r.latency_one,
            Latency::end_to_end(1, false),
        ),
        (
            "latency1-4slots",
            |r| &mut r.latency_one_4_slots,
            Latency {
                slots: IN_CACHE_SLOTS,
                ..Latency::end_to_end(1, false)
            },
        ),
        (
            "latency3",
            |r| &mut r.latency_three,
            Latency::end_to_end(3, false),
        ),
        (
            "latency1-inplace",
            |r| &mut r.latency_one_in_place,
            Latency::end_to_end(1, true),
        ),
        (
            "latency3-inplace",
            |r| &mut r.latency_three_in_place,
            Latency::end_to_end(3, true),
        ),
        (
            "latency3-inplace-4slots",
            |r| &mut r.latency_three_in_place_4_slots,
            Latency {
                slots: IN_CACHE_SLOTS,
                ..Latency::end_to_end(3, true)
            },
        ),
        (
            "transport1",
            |r| &mut r.transport_one,
            Latency::transport(1, CAMERA_FPS),
        ),
        (
            "transport3",
            |r| &mut r.transport_three,
            Latency::transport(3, CAMERA_FPS),
        ),
        (
            "transport1-300fps",
            |r| &mut r.transport_one_300fps,
            Latency::transport(1, AWAKE_FPS),
        ),
        (
            "transport3-300fps",
            |r| &mut r.transport_three_300fps,
            Latency::transport(3, AWAKE_FPS),
        ),
    ];
    for (name, rows, how) in scenarios {
        if args.run(name) {
            *rows(results) = scenario_latency(how, seconds, reps);
            save(results);
        }
    }
}

/// How a latency scenario runs.
#[derive(Clone, Copy)]
struct Latency {
    readers: usize,
    /// Frames written in place (in the memory the sink proposes).
    in_place: bool,
    measured: Measured,
    /// shmring's ring size in frames (0: the sink's default, half a second).
    slots: u32,
    fps: u32,
}

impl Latency {
    /// At an appsink, every byte checked, at a camera's rate.
    fn end_to_end(readers: usize, in_place: bool) -> Self {
        Latency {
            readers,
            in_place,
            measured: Measured::AtAppsink,
            slots: 0,
            fps: CAMERA_FPS,
        }
    }

    /// The transport alone: written in place, timed as frames leave the source.
    fn transport(readers: usize, fps: u32) -> Self {
        Latency {
            readers,
            in_place: true,
            measured: Measured::AtSource,
            slots: 0,
            fps,
        }
    }
}

/// The frame rate of the latency scenarios: a camera's.
const CAMERA_FPS: u32 = 30;
/// The transport-only scenarios again with frames 3.3 ms apart: the CPUs seldom go idle
/// between them, so beside the 30 fps rows these say what waking from idle adds.
const AWAKE_FPS: u32 = 300;

/// Where a reader takes a frame's arrival time.
#[derive(Clone, Copy)]
enum Measured {
    /// At an appsink, after checking every byte: what an application sees.
    AtAppsink,
    /// As the frame leaves the source element, looking at its header only: what the
    /// transport itself costs.
    AtSource,
}

/// Scenarios 2 and 4: slow and restart, each transport in turn.
fn run_slow_and_restart(args: &Args, results: &mut Results, save: Save) {
    let seconds = args.seconds;
    for transport in [Transport::Shmring, Transport::Shm] {
        if args.run("slow") {
            results
                .slow_reader
                .push(scenario_slow_reader(transport, seconds));
            save(results);
        }
        if args.run("restart") {
            results.restart.push(scenario_restart(transport, seconds));
            save(results);
        }
    }
}

/// Scenario 3: max1080, max1080-4slots, max1080-inplace, max1080-huge, max4k.
fn run_throughput(args: &Args, results: &mut Results, save: Save) {
    let (seconds, quick) = (args.seconds, args.quick);
    let reps = args.reps(THROUGHPUT_REPETITIONS);
    let throughput = |w, h, slots, in_place| {
        let how = Throughput {
            width: w,
            height: h,
            slots,
            in_place,
            huge_pages: false,
        };
        scenario_throughput(how, seconds, reps)
    };
    if args.run("max1080") {
        results.throughput_1080p = throughput(1920, 1080, 0, false);
        save(results);
    }
    if args.run("max1080-4slots") {
        results.throughput_1080p_4_slots = throughput(1920, 1080, IN_CACHE_SLOTS, false);
        save(results);
    }
    if args.run("max1080-inplace") {
        results.throughput_1080p_in_place = throughput(1920, 1080, 0, true);
        save(results);
    }
    if args.run("max1080-huge") {
        if args.huge_pages() {
            let how = Throughput {
                width: 1920,
                height: 1080,
                slots: 0,
                in_place: false,
                huge_pages: true,
            };
            results.throughput_1080p_huge_pages = scenario_throughput(how, seconds, reps);
            save(results);
        } else {
            println!("max1080-huge left out: no --huge-pages-dir");
        }
    }
    if args.run("max4k") && !quick {
        results.throughput_4k = throughput(3840, 2160, 0, false);
        save(results);
    }
}

/// Scenario 5: copy, what writing and reading a frame cost against memcpy.
fn run_copy(args: &Args, results: &mut Results) {
    for (label, w, h) in [("1080p", 1920, 1080), ("4K", 3840, 2160)]
        .into_iter()
        .filter(|_| args.run("copy"))
    {
        let c = shmring_common::testing::copy_costs(w, h, 8, args.quick);
        results.copy_costs.push(CopyCostRow {
            frame: label.into(),
            memcpy_us: c.memcpy_write_ns / 1e3,
            write_us: c.write_ns / 1e3,
            write_ratio: c.write_ratio(),
            read_us: c.read_ns / 1e3,
            read_ratio: c.read_ratio(),
        });
    }
}

/// Scenario 6: scaling, scaling-4slots, scaling-huge (720p), scaling-1080p.
fn run_scaling(args: &Args, results: &mut Results, save: Save) {
    let (seconds, quick) = (args.seconds, args.quick);
    let reps = args.reps(SCALING_REPETITIONS);
    if args.run("scaling") || args.run("scaling-4slots") || args.run("scaling-huge") {
        let cameras: &[u32] = if quick { &[1, 4] } else { &[1, 2, 4, 8, 16] };
        // (transport, slots, huge pages): slots 0 is the sink's default, half a second.
        let mut variants = vec![];
        if args.run("scaling") {
            variants.push((Transport::Shmring, 0, false));
        }
        if args.run("scaling-4slots") {
            variants.push((Transport::Shmring, 4, false));
        }
        if args.run("scaling-huge") {
            if args.huge_pages() {
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
            reps,
        ));
        save(results);
    }
    if args.run("scaling-1080p") {
        let cameras: &[u32] = if quick { &[1, 2] } else { &[1, 2, 4, 8] };
        let variants = [(Transport::Shmring, 0, false), (Transport::Shm, 0, false)];
        results.scaling.extend(scenario_scaling_median(
            &variants,
            (1920, 1080),
            cameras,
            seconds,
            reps,
        ));
        save(results);
    }
}

/// `reps` runs of `run` for each transport, taking turns (the first transport
/// alternates), so that a slower or faster spell of the machine falls on both. The
/// runs come back by transport, in order: run i of each ran back to back.
fn paired_runs<T>(reps: usize, run: impl FnMut(Transport) -> T) -> Vec<(Transport, Vec<T>)> {
    runs_in_turn(reps, &[Transport::Shmring, Transport::Shm], run)
}

/// `reps` runs of each transport, taking turns, each repetition starting one further
/// along, so that no transport always runs first or on a machine the previous one
/// warmed.
fn runs_in_turn<T>(
    reps: usize,
    transports: &[Transport],
    mut run: impl FnMut(Transport) -> T,
) -> Vec<(Transport, Vec<T>)> {
    let mut runs: Vec<(Transport, Vec<T>)> = transports.iter().map(|&t| (t, Vec::new())).collect();
    let n = runs.len();
    for rep in 0..reps {
        for k in 0..n {
            let i = (rep + k) % n;
            let t = runs[i].0;
            runs[i].1.push(run(t));
        }
    }
    runs
}

fn latency_run(transport: Transport, how: Latency, seconds: f64) -> Vec<ReaderReport> {
    let Latency {
        readers,
        in_place,
        measured,
        slots,
        fps,
    } = how;
    let ch = channel(transport, &format!("lat{readers}-{in_place}"));
    let w = Role {
        in_place,
        slots,
        ..writer_role(transport, &ch, 1920, 1080, fps, seconds, 2.0)
    };
    let writer = Proc::start(&w);
    std::thread::sleep(READER_START);
    let reader = Role {
        at_source: matches!(measured, Measured::AtSource),
        ..reader_role(&w, seconds, 0)
    };
    let procs: Vec<Proc> = (0..readers).map(|_| Proc::start(&reader)).collect();
    let reports = procs
        .into_iter()
        .map(|p| p.report::<ReaderReport>().unwrap_or_default())
        .collect();
    drop(writer);
    remove_channel(transport, &ch, None);
    reports
}

fn scenario_latency(how: Latency, seconds: f64, reps: usize) -> Vec<LatencyRow> {
    // The transport-only rows also run the floor under them (floor.rs).
    let transports: &[Transport] = match how.measured {
        Measured::AtSource => &[Transport::Shmring, Transport::Shm, Transport::Floor],
        Measured::AtAppsink => &[Transport::Shmring, Transport::Shm],
    };
    runs_in_turn(reps, transports, |t| latency_run(t, how, seconds))
        .into_iter()
        .map(|(transport, runs)| {
            let n = runs.len();
            let ranks = latencies_by_rank(&runs);
            let run_p99s: Vec<f64> = runs
                .iter()
                .map(|run| {
                    let mut v: Vec<f64> = run
                        .iter()
                        .flat_map(|r| r.latencies_ms.iter().copied())
                        .collect();
                    v.sort_by(f64::total_cmp);
                    quantile(&v, 0.99)
                })
                .collect();
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
                latency_ms_p99_median_run: median(run_p99s),
                fewest_frames: reports.iter().map(|r| r.frames).min().unwrap_or(0),
                torn: reports.iter().map(|r| r.torn).sum(),
                by_rank_ms_p50: ranks.iter().map(|r| quantile(r, 0.5)).collect(),
                by_rank_ms_p99: ranks.iter().map(|r| quantile(r, 0.99)).collect(),
                on_writer_cpu_percent: 100.0
                    * reports.iter().map(|r| r.on_writer_cpu).sum::<u64>() as f64
                    / reports.iter().map(|r| r.cpu_known).sum::<u64>().max(1) as f64,
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
        Transport::Shmring | Transport::Floor => channels
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

/// What one scaling run brought back: each reader's kind (0 latest, 1 sequential,
/// 2 header only) and report, the writers' reports, and the shared memory (MiB) the
/// transport held while everything ran.
struct ScalingMeasured {
    readers: Vec<(usize, ReaderReport)>,
    writers: Vec<WriterReport>,
    shared_mib: f64,
}

fn scenario_scaling(
    transport: Transport,
    slots: u32,
    huge_pages: bool,
    size: (u32, u32),
    cameras: u32,
    seconds: f64,
) -> ScalingRow {
    let measured = measure_scaling(transport, slots, huge_pages, size, cameras, seconds);
    let variant = (transport, slots, huge_pages);
    scaling_row(variant, size, cameras, seconds, &measured)
}

/// Starts `cameras` writers of `width`x`height` and three readers each, and collects
/// their reports.
fn measure_scaling(
    transport: Transport,
    slots: u32,
    huge_pages: bool,
    (width, height): (u32, u32),
    cameras: u32,
    seconds: f64,
) -> ScalingMeasured {
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
    ScalingMeasured {
        readers: reports,
        writers: writer_reports,
        shared_mib: shared,
    }
}

/// The figures of a scaling run of `variant` (transport, slots, huge pages).
fn scaling_row(
    (transport, slots, huge_pages): (Transport, u32, bool),
    (width, height): (u32, u32),
    cameras: u32,
    seconds: f64,
    measured: &ScalingMeasured,
) -> ScalingRow {
    let (reports, writer_reports) = (&measured.readers, &measured.writers);
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
        shared_mib: measured.shared_mib,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_take_turns_each_repetition_starting_one_further() {
        let mut order = Vec::new();
        let runs = runs_in_turn(
            4,
            &[Transport::Shmring, Transport::Shm, Transport::Floor],
            |t| {
                order.push(t);
                order.len()
            },
        );
        use Transport::*;
        assert_eq!(
            order,
            [Shmring, Shm, Floor, Shm, Floor, Shmring, Floor, Shmring, Shm, Shmring, Shm, Floor]
        );
        // By transport, in the order each ran.
        assert_eq!(runs[0], (Shmring, vec![1, 6, 8, 10]));
        assert_eq!(runs[2], (Floor, vec![3, 5, 7, 12]));
    }
}
