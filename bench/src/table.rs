//! The table printed at the end of a run: shmring's figure, shmsink's, their ratio.

use crate::results::{
    median, LatencyRow, RestartRow, Results, ScalingRow, ThroughputRow, ThroughputRun,
};
use crate::roles::Transport;

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

/// Prints what `r` holds, scenario by scenario, skipping what did not run.
pub fn print_table(r: &Results) {
    println!(
        "\n{:<58} {:>18} {:>18} {:>8}",
        "scenario", "shmring", "shmsink/shmsrc", "ratio"
    );
    print_latency(r);
    print_slow_reader(r);
    print_throughput(r);
    print_restart(r);
    print_copy_costs(r);
    print_scaling(r);
    print_flatness(r);
}

/// Scenario 1: latency, with one reader and three, frames copied or written in place.
fn print_latency(r: &Results) {
    for (name, rows) in [
        ("1. one reader at 30 fps", &r.latency_one),
        ("1. one reader, shmring 4 slots", &r.latency_one_4_slots),
        ("1. three readers at 30 fps", &r.latency_three),
        ("1. one reader, written in place", &r.latency_one_in_place),
        (
            "1. three readers, written in place",
            &r.latency_three_in_place,
        ),
        (
            "1. three readers, in place, shmring 4 slots",
            &r.latency_three_in_place_4_slots,
        ),
    ] {
        let get = |t: Transport| rows.iter().find(|x| x.transport == t);
        let (Some(a), Some(b)) = (get(Transport::Shmring), get(Transport::Shm)) else {
            continue; // not run (--only)
        };
        print_latency_rows(name, a, b, "ms", 1.0);
    }
    // The transport alone, in microseconds.
    for (name, rows) in [
        ("1. transport only, one reader", &r.transport_one),
        ("1. transport only, three readers", &r.transport_three),
        (
            "1. transport only at 300 fps, one reader",
            &r.transport_one_300fps,
        ),
        (
            "1. transport only at 300 fps, three readers",
            &r.transport_three_300fps,
        ),
    ] {
        let get = |t: Transport| rows.iter().find(|x| x.transport == t);
        let (Some(a), Some(b)) = (get(Transport::Shmring), get(Transport::Shm)) else {
            continue;
        };
        print_latency_rows(name, a, b, "us", 1000.0);
        if let Some(f) = get(Transport::Floor) {
            print_floor(name, f);
        }
    }
}

/// The floor under a transport-only row (floor.rs): its figures, in us, where the two
/// transports' stand in the table.
fn print_floor(name: &str, f: &LatencyRow) {
    let us = |ms: f64| format!("{:.2}", ms * 1000.0);
    println!(
        "{:<58} {:>18.2}",
        format!("{name}: floor, frames read on the writer's CPU %"),
        f.on_writer_cpu_percent
    );
    println!(
        "{:<58} {:>18}",
        format!("{name}: floor p50/p99/p99 run med us"),
        format!(
            "{}/{}/{}",
            us(f.latency_ms_p50),
            us(f.latency_ms_p99),
            us(f.latency_ms_p99_median_run)
        )
    );
    if f.by_rank_ms_p99.len() > 1 {
        for (label, v) in [("p50", &f.by_rank_ms_p50), ("p99", &f.by_rank_ms_p99)] {
            let joined: Vec<String> = v.iter().map(|&ms| us(ms)).collect();
            println!(
                "{:<58} {:>18}",
                format!("{name}: floor {label} us, 1st/2nd/3rd"),
                joined.join("/")
            );
        }
    }
    if f.torn > 0 {
        println!(
            "{:<58} {:>18}",
            format!("{name}: floor TORN FRAMES"),
            f.torn
        );
    }
}

/// `unit` is what `scale` times milliseconds makes.
fn print_latency_rows(name: &str, a: &LatencyRow, b: &LatencyRow, unit: &str, scale: f64) {
    let all = if a.runs > 1 {
        format!(", {} runs", a.runs)
    } else {
        String::new()
    };
    for (label, x, y) in [
        ("latency p50", a.latency_ms_p50, b.latency_ms_p50),
        ("latency p99", a.latency_ms_p99, b.latency_ms_p99),
        ("latency max", a.latency_ms_max, b.latency_ms_max),
        (
            "p99 run med",
            a.latency_ms_p99_median_run,
            b.latency_ms_p99_median_run,
        ),
    ] {
        row(format!("{name}{all}: {label} {unit}"), x * scale, y * scale);
    }
    if !a.by_rank_ms_p99.is_empty() && !b.by_rank_ms_p99.is_empty() {
        let joined = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{:.2}", x * scale))
                .collect::<Vec<_>>()
                .join("/")
        };
        for (label, x, y) in [
            ("p50", &a.by_rank_ms_p50, &b.by_rank_ms_p50),
            ("p99", &a.by_rank_ms_p99, &b.by_rank_ms_p99),
        ] {
            println!(
                "{:<58} {:>18} {:>18} {:>8}",
                format!("{name}: {label} {unit}, 1st/2nd/3rd"),
                joined(x),
                joined(y),
                ""
            );
        }
    }
    row(
        format!("{name}: frames read on the writer's CPU %"),
        a.on_writer_cpu_percent,
        b.on_writer_cpu_percent,
    );
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

/// Scenario 2: a slow reader beside a normal one.
fn print_slow_reader(r: &Results) {
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
}

/// Scenario 3: throughput, flat out.
fn print_throughput(r: &Results) {
    for (rows, huge_pages) in [
        (&r.throughput_1080p, false),
        (&r.throughput_1080p_4_slots, false),
        (&r.throughput_1080p_in_place, false),
        (&r.throughput_1080p_huge_pages, true),
        (&r.throughput_4k, false),
    ] {
        let get = |t: Transport| rows.iter().find(|x| x.transport == t);
        if let (Some(a), Some(b)) = (get(Transport::Shmring), get(Transport::Shm)) {
            print_throughput_rows(a, b, huge_pages);
        }
    }
}

fn print_throughput_rows(a: &ThroughputRow, b: &ThroughputRow, huge_pages: bool) {
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
        print_paired_ratios(a, b);
    }
    if huge_pages {
        // That the ring really was in huge pages (the mount could lack them).
        println!(
            "{:<58} {:>18.0} {:>18}",
            format!("3. {} MiB of the ring in huge pages", a.frame),
            a.writer_huge_pages_mib,
            "-"
        );
    }
}

/// Run i of each transport ran back to back: their ratio cancels most of what the
/// machine was doing at the time.
fn print_paired_ratios(a: &ThroughputRow, b: &ThroughputRow) {
    let n = a.runs.len();
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
        r.writer.as_ref().map_or(f64::NAN, |w| w.cpu_ms_per_frame) + r.reader.cpu_ms_per_frame
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

/// Scenario 4: the writer restarted.
fn print_restart(r: &Results) {
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
}

/// Scenario 5: what writing and reading a frame cost against memcpy.
fn print_copy_costs(r: &Results) {
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
}

/// The row of one variant (transport, slots, huge pages) with `n` cameras of `h` lines.
fn find_scaling(
    r: &Results,
    h: u32,
    n: u32,
    t: Transport,
    slots: u32,
    huge: bool,
) -> Option<&ScalingRow> {
    r.scaling.iter().find(|x| {
        x.height == h
            && x.cameras == n
            && x.transport == t
            && x.slots == slots
            && x.huge_pages == huge
    })
}

/// Scenario 6: N cameras with three readers each, every variant against shmsink.
fn print_scaling(r: &Results) {
    // (frame height, cameras), in the order they ran.
    let runs: Vec<(u32, u32)> = {
        let mut c: Vec<(u32, u32)> = r.scaling.iter().map(|x| (x.height, x.cameras)).collect();
        c.dedup();
        c
    };
    for (h, n) in runs {
        let Some(b) = find_scaling(r, h, n, Transport::Shm, 0, false) else {
            continue;
        };
        print_scaling_variants(r, h, n, b);
        if let Some(a) = find_scaling(r, h, n, Transport::Shmring, 0, false) {
            print_scaling_default(h, n, a, b);
        }
    }
}

/// The 4-slot and huge-page variants of `n` cameras of `h` lines, against shmsink's `b`.
fn print_scaling_variants(r: &Results, h: u32, n: u32, b: &ScalingRow) {
    for (variant, slots, huge) in [("4-slot rings", 4, false), ("rings on huge pages", 0, true)] {
        let Some(v) = find_scaling(r, h, n, Transport::Shmring, slots, huge) else {
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
}

/// shmring's default rings with `n` cameras of `h` lines (`a`), against shmsink's `b`.
fn print_scaling_default(h: u32, n: u32, a: &ScalingRow, b: &ScalingRow) {
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

/// Flatness, for each frame size: shmring's default ring, most cameras against fewest.
fn print_flatness(r: &Results) {
    let mut heights: Vec<u32> = r.scaling.iter().map(|x| x.height).collect();
    heights.dedup();
    for h in heights {
        let of = |n: u32| {
            find_scaling(r, h, n, Transport::Shmring, 0, false).map(|x| x.cpu_percent_per_stream)
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
