//! The command line: every option read and checked here, and the settings roles read.

/// The names `--only` takes.
pub const SCENARIOS: [&str; 22] = [
    "latency1",
    "latency1-4slots",
    "latency3",
    "latency1-inplace",
    "latency3-inplace",
    "latency3-inplace-4slots",
    "transport1",
    "transport3",
    "transport1-300fps",
    "transport3-300fps",
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

/// Spare slots the shmring writers get (--lease-slots).
pub static LEASE_SLOTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Where max1080-huge puts shmring's rings (--huge-pages-dir).
pub static HUGE_PAGES_DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// shmring-bench: the same scenarios over shmringsink/shmringsrc and over GStreamer's
/// shmsink/shmsrc in one run, every byte of every frame checked; prints a table with
/// ratios and writes DIR/results.json as each group of scenarios finishes.
#[derive(clap::Parser, Debug)]
#[command(name = "shmring-bench", version)]
struct Cli {
    /// Shorter measurements, fewer repetitions and cameras, no 4K
    #[arg(long)]
    quick: bool,
    /// Where results.json goes
    #[arg(long, value_name = "DIR", default_value = "bench-results")]
    out: String,
    /// Spare slots the shmring writers get for zero-copy readers
    #[arg(long, value_name = "N", default_value_t = shmring_common::writer::DEFAULT_SPARES)]
    lease_slots: u32,
    /// The scenarios to run, comma-separated (all without it)
    #[arg(long, value_name = "LIST", value_parser = scenario_list)]
    only: Option<String>,
    /// How long each measurement runs, at least 0.5 (default 8, or 1.5 with --quick)
    #[arg(long, value_name = "S", value_parser = seconds)]
    seconds: Option<f64>,
    /// A huge-page tmpfs for the max1080-huge and scaling-huge rings
    #[arg(long, value_name = "DIR")]
    huge_pages_dir: Option<String>,
}

/// `--only`: names of SCENARIOS, comma-separated.
fn scenario_list(list: &str) -> Result<String, String> {
    match list.split(',').find(|s| !SCENARIOS.contains(s)) {
        Some(unknown) => Err(format!(
            "no scenario {unknown:?}; it takes some of {}",
            SCENARIOS.join(",")
        )),
        None => Ok(list.to_owned()),
    }
}

/// `--seconds`: a number of seconds, at least 0.5.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.5 => Ok(s),
        _ => Err("a number of seconds, at least 0.5".into()),
    }
}

/// What the command line asks for.
pub struct Args {
    /// --quick: shorter measurements, fewer repetitions and cameras, no 4K.
    pub quick: bool,
    /// --out: where results.json goes.
    pub out: String,
    pub lease_slots: u32,
    /// --only: the scenarios to run, comma-separated (all without it).
    pub only: Option<String>,
    /// --seconds: how long each measurement runs.
    pub seconds: f64,
}

impl Args {
    /// The process's arguments, parsed by clap: `--help`, and an error (status 2) for
    /// an unknown flag, an unknown scenario in --only or a --seconds that is not a
    /// number of seconds (at least 0.5). Sets LEASE_SLOTS and HUGE_PAGES_DIR.
    pub fn parse() -> Args {
        let cli = <Cli as clap::Parser>::parse();
        if let Some(dir) = cli.huge_pages_dir {
            let _ = HUGE_PAGES_DIR.set(dir);
        }
        LEASE_SLOTS.store(cli.lease_slots, std::sync::atomic::Ordering::Relaxed);
        let seconds = cli.seconds.unwrap_or(if cli.quick { 1.5 } else { 8.0 });
        Args {
            quick: cli.quick,
            out: cli.out,
            lease_slots: cli.lease_slots,
            only: cli.only,
            seconds,
        }
    }

    /// Whether scenario `name` runs (--only).
    pub fn run(&self, name: &str) -> bool {
        debug_assert!(SCENARIOS.contains(&name), "{name} missing from SCENARIOS");
        self.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|s| s == name))
    }

    /// How many times a repeated scenario runs: `full`, or once in a quick run.
    /// Scenarios 1 and 3 depend on what else the machine runs at the time, so they are
    /// repeated with the transports taking turns.
    pub fn reps(&self, full: usize) -> usize {
        if self.quick {
            1
        } else {
            full
        }
    }

    /// Whether --huge-pages-dir was given.
    pub fn huge_pages(&self) -> bool {
        HUGE_PAGES_DIR.get().is_some()
    }
}
