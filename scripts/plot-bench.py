#!/usr/bin/python3
"""Plots shmring-bench results: latency distributions and frame rates, shmring beside
shmsink/shmsrc. Usage: plot-bench.py RESULTS.json OUT.png [--scaling]
(--scaling: only the two panels of the scaling scenario, for a run of it alone)"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = {"shmring": "shmringsink/src", "shm": "shmsink/src"}
COLOURS = {"shmring": "tab:blue", "shm": "tab:orange"}


def legend(ax):
    if ax.get_legend_handles_labels()[0]:  # scenarios left out with --only draw nothing
        ax.legend()


def by(rows, transport):
    return next((r for r in rows if r["transport"] == transport), None)


def main():
    results = json.load(open(sys.argv[1]))
    if "--scaling" in sys.argv[3:]:
        fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8))
        fig.suptitle(f"shmring-bench scaling {results['date']} ({results['machine']})")
        plot_scaling(results.get("scaling", []), a, b)
        fig.tight_layout()
        fig.savefig(sys.argv[2], dpi=100)
        return
    fig, grid = plt.subplots(2, 4, figsize=(26, 9.6))
    axes = grid.flatten()
    fig.suptitle(f"shmring-bench {results['date']} ({results['machine']}), 1920x1080 I420")

    ax = axes[0]
    for key, style, how in (("latency_one", "-", ""), ("latency_one_in_place", "--", ", in place")):
        for t in ("shmring", "shm"):
            row = by(results.get(key, []), t)
            lat = sorted(x for r in row["readers"] for x in r["latencies_ms"]) if row else []
            if lat:
                ax.plot(lat, [i / len(lat) for i in range(len(lat))], style,
                        label=NAMES[t] + how, color=COLOURS[t])
    ax.set_xscale("log")
    ax.set_xlabel("latency push to receipt (ms)")
    ax.set_ylabel("fraction of frames")
    ax.set_title("1. one reader at 30 fps (all runs)")
    legend(ax)

    ax = axes[1]
    x = 0
    ticks, labels = [], []
    for key, how in (("latency_three", "copies"), ("latency_three_in_place", "in place")):
        for rank, name in enumerate(("1st", "2nd", "3rd")):
            start = x
            for t in ("shmring", "shm"):
                row = by(results.get(key, []), t)
                if not row or len(row.get("by_rank_ms_p99", [])) <= rank:
                    continue
                ax.bar(x, row["by_rank_ms_p99"][rank], color=COLOURS[t],
                       label=NAMES[t] if (key, rank) == ("latency_three", 0) else None)
                ax.plot(x, row["by_rank_ms_p50"][rank], "k_", markersize=12)
                x += 1
            if x > start:
                ticks.append((start + x - 1) / 2)
                labels.append(f"{name}\n{how}")
            x += 0.5
        x += 0.5
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_ylabel("latency push to receipt (ms)")
    ax.set_title("1. three readers: p99 (bar), p50 (dash) of each frame's\n1st, 2nd and 3rd reader")
    legend(ax)

    ax = axes[2]
    for t in ("shmring", "shm"):
        row = by(results["slow_reader"], t)
        lat = sorted(row["normal"]["latencies_ms"]) if row else []
        if lat:
            ax.plot(lat, [i / len(lat) for i in range(len(lat))], label=NAMES[t], color=COLOURS[t])
    ax.set_xscale("log")
    ax.set_xlabel("latency push to receipt (ms)")
    ax.set_title("2. normal reader beside a 300 ms/frame reader")
    legend(ax)

    ax = axes[3]
    labels, values, colours = [], [], []
    for t in ("shmring", "shm"):
        slow = by(results["slow_reader"], t)
        one = by(results["latency_one"], t)
        for label, v in (
            ("30 fps, 1 reader", min(r["fps"] for r in one["readers"]) if one and one["readers"] else 0),
            ("beside slow reader", slow["normal"]["fps"] if slow else 0),
        ):
            labels.append(f"{NAMES[t]}\n{label}")
            values.append(v)
            colours.append(COLOURS[t])
    ax.bar(range(len(values)), values, color=colours)
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.axhline(30, color="grey", linestyle="--", linewidth=0.8)
    ax.set_ylabel("frames per second delivered")
    ax.set_title("frame rate delivered (source: 30 fps)")

    ax = axes[4]
    x = 0
    ticks, labels = [], []
    for key in ("throughput_1080p", "throughput_1080p_4_slots", "throughput_1080p_in_place",
                "throughput_1080p_huge_pages", "throughput_4k"):
        for t in ("shmring", "shm"):
            row = by(results.get(key, []), t)
            if not row:
                continue
            ax.bar(x, row["fps"], color=COLOURS[t], label=NAMES[t] if key == "throughput_1080p" else None)
            runs = [r["reader"]["fps"] for r in row["runs"]]
            ax.plot([x] * len(runs), runs, "k.", markersize=4)
            ticks.append(x)
            short = row["frame"].replace("1920x1080", "1080p").replace("3840x2160", "4K")
            labels.append(short.replace(", ", "\n").replace("in place", "in\nplace")
                          .replace("huge pages", "huge\npages"))
            x += 1
        x += 0.5
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("frames per second delivered")
    ax.set_title("3. writer flat out: median (bar) and each run (dots)")
    legend(ax)
    plot_scaling(results.get("scaling", []), axes[5], axes[6])
    axes[7].axis("off")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)


def plot_scaling(scaling, ax_cpu, ax_p99):
    def of(t, slots=0, huge=False, height=720):
        return sorted((r for r in scaling if r["transport"] == t and r.get("slots", 0) == slots
                       and r.get("huge_pages", False) == huge and r.get("height", 720) == height),
                      key=lambda r: r["cameras"])

    ax = ax_cpu
    for t, slots, huge, height, style, label in (
            ("shmring", 0, False, 720, "o-", NAMES["shmring"]), ("shm", 0, False, 720, "o-", NAMES["shm"]),
            ("shmring", 4, False, 720, "o--", f"{NAMES['shmring']}, 4-slot rings"),
            ("shmring", 0, True, 720, "o:", f"{NAMES['shmring']}, rings on huge pages"),
            ("shmring", 0, False, 1080, "s-.", f"{NAMES['shmring']}, 1080p"),
            ("shm", 0, False, 1080, "s-.", f"{NAMES['shm']}, 1080p")):
        rows = of(t, slots, huge, height)
        if rows:
            ax.plot([r["cameras"] for r in rows], [r["cpu_percent_per_stream"] for r in rows],
                    style, color=COLOURS[t], label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("cameras (1280x720 unless said, 30 fps, 3 readers each)")
    ax.set_ylabel("CPU per stream (% of a core), every process")
    ax.set_ylim(bottom=0)
    ax.set_title("6. cost at scale: CPU per stream")
    legend(ax)

    ax = ax_p99
    for t in ("shmring", "shm"):
        rows = of(t)
        kinds = (("latest", "-"), ("sequential", "--"), ("header only", ":"))
        if t == "shm":  # shmsrc has no modes: three FIFO readers, the third header only
            kinds = (("FIFO 1", "-"), ("FIFO 2", "--"), ("FIFO, header only", ":"))
        for kind, (name, style) in enumerate(kinds):
            pts = [(r["cameras"], r["latency_ms_p99"][kind]) for r in rows if r["latency_ms_p99"][kind] == r["latency_ms_p99"][kind]]
            if pts:
                ax.plot(*zip(*pts), style, marker="o", color=COLOURS[t], label=f"{NAMES[t]}, {name}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("cameras")
    ax.set_ylabel("latency push to receipt p99 (ms)")
    ax.set_title("6. cost at scale: each reader's p99")
    legend(ax)


if __name__ == "__main__":
    main()
