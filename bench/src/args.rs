//! The command line: every option read and checked here, and the settings roles read.

/// The names `--only` takes.
pub const SCENARIOS: [&str; 16] = [
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

/// Spare slots the shmring writers get (--lease-slots).
pub static LEASE_SLOTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Where max1080-huge puts shmring's rings (--huge-pages-dir).
pub static HUGE_PAGES_DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

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
    /// The process's arguments, checked: an unknown scenario in --only or a --seconds
    /// that is not a number of seconds (at least 0.5) ends the process with status 2.
    /// Sets LEASE_SLOTS and HUGE_PAGES_DIR.
    pub fn parse() -> Args {
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
        Args {
            quick,
            out,
            lease_slots,
            only,
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
