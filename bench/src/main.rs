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
//! Scenarios: latency1, latency1-4slots, latency3, latency1-inplace, latency3-inplace,
//! latency3-inplace-4slots, transport1, transport3, transport1-300fps,
//! transport3-300fps, slow, max1080, max1080-4slots, max1080-inplace, max1080-huge,
//! max4k, restart, copy, scaling, scaling-4slots, scaling-huge, scaling-1080p.
//!
//! transport1 and transport3 time the transport alone at 30 fps (frames written in
//! place, timed as they leave the source element); the -300fps pair does the same with
//! frames 3.3 ms apart, when the CPUs seldom go idle between frames. Each of the four
//! also runs the floor under it (src/floor.rs): shmring's ring through its Rust API
//! with header-only frames and no GStreamer, the same roles and clocks, which says how
//! much of a transport row is this machine waking a reader and how much the elements.
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
//! shmringsink runs with its default slots (half a second of video) except in the
//! -4slots scenarios, where the ring is small enough to stay in the cache. Writers fill
//! frames in buffers of their own, which the sinks copy, except in the -inplace
//! scenarios, where they fill the memory the sink proposes (zero-copy write for both).
//!
//! Prints a table with ratios and writes DIR/results.json (default bench-results/)
//! after each scenario, whole: a run stopped by a time limit keeps every scenario it
//! finished, and its role processes die with it.

mod args;
mod floor;
mod procs;
mod results;
mod roles;
mod scenarios;
mod table;

use args::Args;
use roles::ROLE_ENV;

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        std::process::exit(roles::run(&role));
    }
    let args = Args::parse();
    let (quick, seconds, out) = (args.quick, args.seconds, &args.out);
    println!(
        "shmring-bench: {} run, {seconds} s per measurement, 1920x1080 I420 unless said",
        if quick { "quick" } else { "full" }
    );

    std::fs::create_dir_all(out).expect("output directory");
    let path = format!("{out}/results.json");
    // Written whole and renamed into place: a run stopped while it writes leaves the
    // results of the scenario before.
    let partial = format!("{path}.partial");
    let save = |results: &results::Results| {
        std::fs::write(&partial, serde_json::to_string_pretty(results).unwrap())
            .and_then(|()| std::fs::rename(&partial, &path))
            .expect("results.json written");
    };
    let results = scenarios::run(&args, save);
    table::print_table(&results);
    println!("\nresults: {path}");
}
