//! The two roles a benchmark process plays: a writer pushing patterned frames from an
//! appsrc, and a reader checking them at an appsink.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use serde::{Deserialize, Serialize};

use crate::floor;

pub const ROLE_ENV: &str = "SHMRING_BENCH_ROLE";
/// The pid of the run that started a role.
pub const PARENT_ENV: &str = "SHMRING_BENCH_PARENT";
/// push time (monotonic ns), sequence, writer pid and CPU: three u64 at the start of a
/// frame (`Header`).
const HEADER_WORDS: usize = 3;

/// What a frame's first three words say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// CLOCK_MONOTONIC ns when the writer pushed it.
    pub pushed: u64,
    pub seq: u64,
    pub pid: u32,
    /// The CPU the writer pushed it from, if it knew.
    pub cpu: Option<u32>,
}

impl Header {
    /// This process pushing frame `seq` now, from the CPU it runs on.
    pub fn now(seq: u64) -> Header {
        Header {
            pushed: shmring_common::monotonic_ns(),
            seq,
            pid: std::process::id(),
            cpu: this_cpu(),
        }
    }

    /// The three words, the pid in the low half of the third and CPU + 1 (0: unknown)
    /// in the high half.
    pub fn write(&self, to: &mut [u8]) {
        let cpu = self.cpu.map_or(0, |c| u64::from(c) + 1);
        to[8..16].copy_from_slice(&self.seq.to_le_bytes());
        to[16..24].copy_from_slice(&(u64::from(self.pid) | cpu << 32).to_le_bytes());
        to[0..8].copy_from_slice(&self.pushed.to_le_bytes());
    }

    /// The header at the start of `data`, if it is `expected_size` bytes long.
    pub fn read(data: &[u8], expected_size: usize) -> Option<Header> {
        if data.len() != expected_size || data.len() < HEADER_WORDS * 8 {
            return None;
        }
        let word = |i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
        let cpu = (word(2) >> 32) as u32;
        Some(Header {
            pushed: word(0),
            seq: word(1),
            pid: word(2) as u32,
            cpu: cpu.checked_sub(1),
        })
    }
}

/// The CPU this thread runs on now, if the kernel says.
pub fn this_cpu() -> Option<u32> {
    nix::sched::sched_getcpu().ok().map(|c| c as u32)
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Shmring,
    Shm,
    /// Not a transport users pick: shmring's ring through its Rust API, header-only
    /// frames, no GStreamer (floor.rs). The floor under the transport-only rows.
    Floor,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleKind {
    Writer,
    Reader,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Role {
    pub kind: RoleKind,
    pub transport: Transport,
    pub channel: String,
    pub width: u32,
    pub height: u32,
    /// Frames per second; 0: as fast as the transport takes them.
    pub fps: u32,
    pub seconds: f64,
    /// Readers: time spent on each frame (a slow consumer).
    pub delay_ms: u64,
    /// shmring writers: frames the ring holds (0: the sink's default, half a second).
    pub slots: u32,
    /// shmring writers: spare slots for zero-copy leases.
    pub lease_slots: u32,
    /// Writers: fill frames in memory the sink proposes (shmringsink's pool of ring
    /// slots, shmsink's allocator of its shared area), as an upstream element that
    /// honours the allocation query does, instead of in buffers of their own.
    #[serde(default)]
    pub in_place: bool,
    /// shmring: the ring directory (`dir`), if not the default.
    #[serde(default)]
    pub dir: Option<String>,
    /// shmring readers: shmringsrc's mode ("latest" unless said).
    #[serde(default)]
    pub mode: Option<String>,
    /// Readers: look at the frame's header only, as an analytics step that reads a
    /// few bytes of each frame, instead of checking every byte.
    #[serde(default)]
    pub peek: bool,
    /// Readers: time each frame as it leaves the source element (a pad probe on
    /// shmringsrc's or shmsrc's src pad, header only), not at an appsink: what the
    /// transport itself costs.
    #[serde(default)]
    pub at_source: bool,
    /// Writers: the window, seconds from their first frame, that their report covers.
    pub measure_from: f64,
    pub measure_for: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct WriterReport {
    pub frames: u64,
    pub fps: f64,
    pub cpu_ms_per_frame: f64,
    /// Where frames were filled: "own" buffers, the sink's "pool" or its "allocator".
    #[serde(default)]
    pub memory: String,
    /// shmring: KiB of the ring's mapping backed by huge pages, while writing.
    #[serde(default)]
    pub huge_pages_kib: f64,
    /// The process's proportional set size at the end, KiB (shared pages divided among
    /// the processes that map them).
    #[serde(default)]
    pub pss_kib: f64,
    /// CPU of the whole process while it ran, ms.
    #[serde(default)]
    pub cpu_ms_total: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct PerWriter {
    pub pid: u32,
    pub frames: u64,
    pub first_receipt_ns: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ReaderReport {
    pub frames: u64,
    pub fps: f64,
    /// Frames whose bytes were not exactly what their writer wrote.
    pub torn: u64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    pub cpu_ms_per_frame: f64,
    pub per_writer: Vec<PerWriter>,
    /// Every latency, ms, for the plot (paced writers only: flat out there are too many).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latencies_ms: Vec<f64>,
    /// The frame (writer sequence) of each latency in `latencies_ms`, so the readers
    /// of one run can be compared frame by frame.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seqs: Vec<u64>,
    pub error: Option<String>,
    /// Frames a writer committed between two this reader received (gaps in the
    /// sequence), over the run.
    #[serde(default)]
    pub gaps: u64,
    #[serde(default)]
    pub pss_kib: f64,
    #[serde(default)]
    pub cpu_ms_total: f64,
    /// Of the frames whose writer's CPU and this reader's are both known, how many
    /// arrived on the CPU their writer pushed them from: a reader woken there ran
    /// after its writer, not beside it on the other CPU.
    #[serde(default)]
    pub on_writer_cpu: u64,
    #[serde(default)]
    pub cpu_known: u64,
}

pub fn run(role: &str) -> i32 {
    let role: Role = match serde_json::from_str(role) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shmring-bench: bad role: {e}");
            return 2;
        }
    };
    // A run stopped by a time limit (SIGTERM, SIGKILL) takes its roles with it, rather
    // than leaving them to run out their seconds beside whatever comes next. Every role
    // is started from the run's main thread, which lives as long as the run. A run
    // already gone before this line left this process to another parent: it stops.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let started_by = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse().ok());
    if started_by.is_some_and(|p: u32| p != std::os::unix::process::parent_id()) {
        return 2;
    }
    let json = match (role.transport, role.kind) {
        (Transport::Floor, RoleKind::Writer) => serde_json::to_string(&floor::writer(&role)),
        (Transport::Floor, RoleKind::Reader) => serde_json::to_string(&floor::reader(&role)),
        (_, kind) => {
            gst::init().expect("GStreamer initialises");
            gstshmring::plugin_register_static().expect("shmring registers");
            match kind {
                RoleKind::Writer => serde_json::to_string(&writer(&role)),
                RoleKind::Reader => serde_json::to_string(&reader(&role)),
            }
        }
    };
    println!("{}", json.unwrap());
    0
}

pub fn cpu_ms() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t =
                |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1e3 + tv.tv_usec() as f64 / 1e3;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

/// This process's proportional set size, KiB (/proc/self/smaps_rollup), or 0.
pub fn pss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0.0)
}

fn frame_size(role: &Role) -> usize {
    (role.width * role.height * 3 / 2) as usize
}

fn caps(role: &Role) -> String {
    format!(
        "video/x-raw,format=I420,width={},height={},framerate=30/1",
        role.width, role.height
    )
}

fn pattern_word(seq: u64, i: usize) -> u64 {
    seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64)
}

fn words(bytes: &mut [u8]) -> impl Iterator<Item = &mut [u8]> {
    bytes.chunks_exact_mut(8)
}

/// What the writer's streaming thread has pushed so far.
#[derive(Default)]
struct Pushed {
    frames: u64,
    elapsed: Duration,
    cpu_ms: f64,
    memory: &'static str,
}

/// Where a writer gets the memory of its frames.
enum Memory {
    /// Buffers of its own.
    Own,
    /// The pool the sink proposed.
    Pool(gst::BufferPool),
    /// The allocator the sink proposed, without a pool.
    Allocator(gst::Allocator),
}

impl Memory {
    /// What the sink downstream of `src` proposes for `caps` (an allocation query, as
    /// an upstream element makes after negotiating).
    fn proposed(src: &gst_app::AppSrc, caps: &gst::Caps) -> Memory {
        let mut q = gst::query::Allocation::new(Some(caps), true);
        if !src.static_pad("src").unwrap().peer_query(&mut q) {
            return Memory::Own;
        }
        if let Some((Some(pool), size, min, max)) = q.allocation_pools().next() {
            let mut config = pool.config();
            config.set_params(Some(caps), size, min, max);
            if pool.set_config(config).is_ok() && pool.set_active(true).is_ok() {
                return Memory::Pool(pool);
            }
        }
        match q.allocation_params().next() {
            Some((Some(allocator), _)) => Memory::Allocator(allocator),
            _ => Memory::Own,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Memory::Own => "own",
            Memory::Pool(_) => "pool",
            Memory::Allocator(_) => "allocator",
        }
    }

    fn buffer(&self, size: usize) -> gst::Buffer {
        let proposed = match self {
            Memory::Own => None,
            Memory::Pool(pool) => pool.acquire_buffer(None).ok(),
            Memory::Allocator(a) => a.alloc(size, None).ok().map(|m| {
                let mut b = gst::Buffer::new();
                b.get_mut().unwrap().append_memory(m);
                b
            }),
        };
        proposed.unwrap_or_else(|| gst::Buffer::with_size(size).unwrap())
    }
}

/// A frame of `role`'s size: its `Header` and the pattern of `seq`.
fn patterned_frame(role: &Role, memory: &Memory, seq: u64) -> gst::Buffer {
    let mut buffer = memory.buffer(frame_size(role));
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(seq * 33_333_333));
        let mut map = b.map_writable().unwrap();
        for (i, w) in words(map.as_mut_slice()).enumerate().skip(HEADER_WORDS) {
            w.copy_from_slice(&pattern_word(seq, i).to_le_bytes());
        }
        Header::now(seq).write(map.as_mut_slice());
    }
    buffer
}

/// ` dir=...` for a role's shmring element, if it has a ring directory.
fn dir_property(role: &Role) -> String {
    role.dir
        .as_ref()
        .map(|d| format!(" dir={d}"))
        .unwrap_or_default()
}

impl Role {
    /// Where a shmring role's ring is: its channel, in its directory if it has one.
    pub fn location(&self) -> Option<shmring_common::RingLocation> {
        let dir = self.dir.as_deref().map(std::path::Path::new);
        shmring_common::RingLocation::parse(&self.channel, dir).ok()
    }
}

/// KiB of this process's mappings of its ring backed by huge pages.
fn huge_pages_kib(role: &Role) -> f64 {
    role.location()
        .map(|loc| shmring_common::testing::huge_pages_kib_per_mapping(loc.path()))
        .map_or(0.0, |kib| kib.iter().sum::<u64>() as f64)
}

/// Frames are made and pushed in appsrc's own streaming thread (its need-data
/// callback), so a writer is one busy thread, as a reader is: on a two-core machine
/// each gets a core, and how the scheduler splits three busy threads over two cores
/// does not decide the result.
fn writer(role: &Role) -> WriterReport {
    let sink = match role.transport {
        Transport::Shmring => {
            format!(
                "shmringsink ring={} sync=false slots={} lease-slots={}{}",
                role.channel,
                role.slots,
                role.lease_slots,
                dir_property(role)
            )
        }
        Transport::Shm => format!(
            "shmsink socket-path={} wait-for-connection=false sync=false",
            role.channel
        ),
        Transport::Floor => unreachable!("floor roles run in floor.rs"),
    };
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src is-live=true format=time max-buffers=1 caps={} ! {sink}",
        caps(role)
    ))
    .expect("writer pipeline");
    let src = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let pushed = Arc::new(Mutex::new(Pushed::default()));
    let (p, r) = (pushed.clone(), role.clone());
    let mut start: Option<Instant> = None;
    // (seq, time, CPU ms) where the measured window began.
    let mut window: Option<(u64, Instant, f64)> = None;
    let mut seq = 0u64;
    let mut memory = Memory::Own;
    let frame_caps = gst::Caps::from_str(&caps(role)).unwrap();
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                let start = *start.get_or_insert_with(Instant::now);
                let t = start.elapsed().as_secs_f64();
                if t >= r.measure_from && window.is_none() {
                    window = Some((seq, Instant::now(), cpu_ms()));
                }
                if let Some((seq0, t0, cpu0)) = window {
                    let mut p = p.lock().unwrap();
                    if t >= r.measure_from + r.measure_for && p.elapsed.is_zero() {
                        *p = Pushed {
                            frames: seq - seq0,
                            elapsed: t0.elapsed(),
                            cpu_ms: cpu_ms() - cpu0,
                            memory: memory.name(),
                        };
                    }
                }
                if t >= r.seconds {
                    let _ = src.end_of_stream();
                    return;
                }
                seq += 1;
                if r.fps > 0 {
                    let due = Duration::from_secs_f64(seq as f64 / f64::from(r.fps));
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                // The first frame takes the caps downstream; then the sink can say
                // what memory it would have frames in.
                if r.in_place && seq == 2 {
                    memory = Memory::proposed(src, &frame_caps);
                }
                let _ = src.push_buffer(patterned_frame(&r, &memory, seq));
            })
            .build(),
    );
    pipeline
        .set_state(gst::State::Playing)
        .expect("writer plays");
    let _ = pipeline.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds_f64(role.seconds + 5.0),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    // Still mapped: the sink lets go of its ring when it stops.
    let huge = huge_pages_kib(role);
    let _ = pipeline.set_state(gst::State::Null);
    let p = pushed.lock().unwrap();
    WriterReport {
        frames: p.frames,
        fps: p.frames as f64 / p.elapsed.as_secs_f64().max(1e-9),
        cpu_ms_per_frame: p.cpu_ms / p.frames.max(1) as f64,
        memory: p.memory.to_owned(),
        huge_pages_kib: huge,
        pss_kib: pss_kib(),
        cpu_ms_total: p.cpu_ms,
    }
}

/// What a reader counts as frames arrive.
#[derive(Default)]
pub struct Tally {
    latencies_ns: Vec<u64>,
    seqs: Vec<u64>,
    torn: u64,
    per_writer: Vec<PerWriter>,
    /// Frames received on the CPU their writer pushed them from, of those where both
    /// CPUs are known.
    on_writer_cpu: u64,
    cpu_known: u64,
}

impl Tally {
    /// A frame with header `h`, received at `now` (monotonic ns) on CPU `cpu`.
    pub fn frame(&mut self, h: Header, now: u64, cpu: Option<u32>) {
        self.latencies_ns.push(now.saturating_sub(h.pushed));
        self.seqs.push(h.seq);
        if let (Some(a), Some(b)) = (h.cpu, cpu) {
            self.cpu_known += 1;
            self.on_writer_cpu += u64::from(a == b);
        }
        match self.per_writer.iter_mut().find(|p| p.pid == h.pid) {
            Some(p) => p.frames += 1,
            None => self.per_writer.push(PerWriter {
                pid: h.pid,
                frames: 1,
                first_receipt_ns: now,
            }),
        }
    }

    /// A frame whose bytes were not what its writer wrote.
    pub fn torn(&mut self) {
        self.torn += 1;
    }
}

/// The header of a frame of `expected_size` bytes whose every byte after the header
/// is its pattern; None for a frame torn or of another size.
fn check(data: &[u8], expected_size: usize) -> Option<Header> {
    let h = Header::read(data, expected_size)?;
    for (i, w) in data.chunks_exact(8).enumerate().skip(HEADER_WORDS) {
        if u64::from_le_bytes(w.try_into().unwrap()) != pattern_word(h.seq, i) {
            return None;
        }
    }
    Some(h)
}

fn reader(role: &Role) -> ReaderReport {
    let size = frame_size(role);
    let src = match role.transport {
        Transport::Shmring => format!(
            "shmringsrc name=source ring={} mode={}{}",
            role.channel,
            role.mode.as_deref().unwrap_or("latest"),
            dir_property(role)
        ),
        Transport::Shm => format!(
            "shmsrc name=source socket-path={} is-live=true ! {}",
            role.channel,
            caps(role)
        ),
        Transport::Floor => unreachable!("floor roles run in floor.rs"),
    };
    let tally = Arc::new(Mutex::new(Tally::default()));
    let t = tally.clone();
    let peek = role.peek || role.at_source;
    // Takes one frame's figures, `now` being when it arrived.
    let record =
        move |buffer: &gst::BufferRef, now: u64, cpu: Option<u32>| -> Result<(), gst::FlowError> {
            let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
            let checked = if peek {
                Header::read(map.as_slice(), size)
            } else {
                check(map.as_slice(), size)
            };
            let mut t = t.lock().unwrap();
            match checked {
                Some(h) => t.frame(h, now, cpu),
                None => t.torn(),
            }
            Ok(())
        };
    let pipeline = if role.at_source {
        let pipeline =
            gst::parse::launch(&format!("{src} ! fakesink sync=false")).expect("reader pipeline");
        let source = pipeline
            .downcast_ref::<gst::Bin>()
            .unwrap()
            .by_name("source")
            .unwrap();
        source
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let (now, cpu) = (shmring_common::monotonic_ns(), this_cpu());
                if let Some(buffer) = info.buffer() {
                    let _ = record(buffer, now, cpu);
                }
                gst::PadProbeReturn::Ok
            });
        pipeline
    } else {
        let pipeline = gst::parse::launch(&format!(
            "{src} ! appsink name=sink sync=false max-buffers=1"
        ))
        .expect("reader pipeline");
        let sink = pipeline
            .downcast_ref::<gst::Bin>()
            .unwrap()
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let delay = Duration::from_millis(role.delay_ms);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let (now, cpu) = (shmring_common::monotonic_ns(), this_cpu());
                    record(sample.buffer().ok_or(gst::FlowError::Error)?, now, cpu)?;
                    if !delay.is_zero() {
                        std::thread::sleep(delay);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
    };
    let cpu0 = cpu_ms();
    let _ = pipeline.set_state(gst::State::Playing);
    let bus = pipeline.bus().unwrap();
    let mut error = None;
    let deadline = Instant::now() + Duration::from_secs_f64(role.seconds);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let left = gst::ClockTime::from_nseconds(left.as_nanos() as u64);
        if let Some(msg) =
            bus.timed_pop_filtered(left, &[gst::MessageType::Error, gst::MessageType::Eos])
        {
            if let gst::MessageView::Error(e) = msg.view() {
                error = Some(e.error().to_string());
            }
            break;
        }
    }
    let cpu = cpu_ms() - cpu0;
    let pss = pss_kib();
    let _ = pipeline.set_state(gst::State::Null);
    let t = tally.lock().unwrap();
    summarise(&t, role, cpu, pss, error)
}

/// A reader's report from what it tallied, `cpu` ms of CPU and `pss` KiB at the end.
pub fn summarise(
    t: &Tally,
    role: &Role,
    cpu: f64,
    pss: f64,
    error: Option<String>,
) -> ReaderReport {
    let gaps = t
        .seqs
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]).saturating_sub(1))
        .sum();
    // The first frame a reader gets was committed before it attached (shmring's latest
    // mode hands over the newest frame at once): attach warm-up, not steady-state
    // latency. Dropped from the statistics of both transports alike.
    let steady: Vec<u64> = t.latencies_ns.iter().skip(1).copied().collect();
    let mut sorted = steady.clone();
    sorted.sort_unstable();
    let pct = |p: f64| {
        if sorted.is_empty() {
            f64::NAN
        } else {
            sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1] as f64
                / 1e6
        }
    };
    let frames = t.latencies_ns.len() as u64;
    ReaderReport {
        frames,
        fps: frames as f64 / role.seconds,
        torn: t.torn,
        latency_ms_p50: pct(0.5),
        latency_ms_p99: pct(0.99),
        latency_ms_max: pct(1.0),
        cpu_ms_per_frame: cpu / frames.max(1) as f64,
        per_writer: t.per_writer.clone(),
        latencies_ms: if role.fps > 0 {
            steady.iter().map(|&n| n as f64 / 1e6).collect()
        } else {
            Vec::new()
        },
        seqs: if role.fps > 0 {
            t.seqs.iter().skip(1).copied().collect()
        } else {
            Vec::new()
        },
        error,
        gaps,
        pss_kib: pss,
        cpu_ms_total: cpu,
        on_writer_cpu: t.on_writer_cpu,
        cpu_known: t.cpu_known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_reads_back_as_written_with_or_without_a_cpu() {
        for cpu in [Some(0), Some(7), None] {
            let h = Header {
                pushed: 123_456_789,
                seq: 42,
                pid: u32::MAX,
                cpu,
            };
            let mut frame = [0u8; 40];
            h.write(&mut frame);
            assert_eq!(Header::read(&frame, 40), Some(h));
            assert_eq!(Header::read(&frame, 41), None);
        }
        assert_eq!(Header::read(&[0u8; 16], 16), None);
    }

    #[test]
    fn a_frame_counts_as_on_the_writers_cpu_only_when_both_are_known() {
        let mut t = Tally::default();
        let h = |cpu| Header {
            pushed: 1,
            seq: 1,
            pid: 9,
            cpu,
        };
        t.frame(h(Some(1)), 5, Some(1));
        t.frame(h(Some(1)), 5, Some(0));
        t.frame(h(None), 5, Some(0));
        t.frame(h(Some(0)), 5, None);
        assert_eq!((t.on_writer_cpu, t.cpu_known), (1, 2));
        assert_eq!(t.latencies_ns, [4, 4, 4, 4]);
    }
}
