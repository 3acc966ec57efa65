#!/usr/bin/env python3
"""Where the CPU of the scaling scenario goes, per transport: runs
`shmring-bench --quick --only scaling` under `perf record -a -e cpu-clock` (software
sampling: it needs no hardware counters, so it works on a VM), keeps the samples of the
benchmark's processes, splits them into the scenario's phases (shmring N=1, shmsink
N=1, shmring N=4, shmsink N=4: each phase is told by the samples in its transport's own
code) and prints, per phase, the share of CPU in each kind of work.

    python3 scripts/profile-scaling.py [--full] [--seconds S] [--keep DIR] [--data perf.data]

Needs root or kernel.perf_event_paranoid <= 0 for -a, and `perf` (linux-perf). Figures,
not pass/fail."""

import argparse
import collections
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
FREQ = 2000

LINE = re.compile(r"\s*(.+?)\s+(\d+)\s+([\d.]+):\s+[0-9a-f]+\s+(.*?)\s*\(([^()]*)\)\s*$")


def kind(sym, dso):
    if re.search(r"gstshmring|shmring_common|ShmRing", sym):
        return "shmring's own code"
    if dso == "libgstshm.so":
        return "shmsink's own code"
    if "patterned_frame" in sym or "writer::{{closure}}" in sym:
        return "writer fills frames"
    if "reader::{{closure}}" in sym:
        return "reader reads frames"
    if dso == "[kernel.kallsyms]":
        if re.search(r"shmem_|clear_page|fault|folio|pte|page_range|smaps|lru|memcg", sym):
            return "kernel: memory, page faults"
        if re.search(r"futex|sched|switch|wake|spin|irq|timer|idle|enqueue|dequeue|poll|sock|unix|skb", sym):
            return "kernel: wake-ups, scheduling, sockets"
        return "kernel: other"
    if re.match(r"libgst(reamer|base|video|app)", dso):
        return "GStreamer"
    if dso.startswith(("libglib", "libgobject")):
        return "GLib"
    if dso.startswith("libc"):
        return "libc"
    if dso.startswith("ld-linux"):
        return "process start (loader)"
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="directory for perf.data and the benchmark's output")
    ap.add_argument("--data", help="analyse this perf.data of an earlier run instead")
    ap.add_argument("--seconds", help="how long each measurement runs (the benchmark's own "
                    "default: 8 s, 1.5 s quick)")
    ap.add_argument("--full", action="store_true",
                    help="the full scenario (1 to 16 cameras, 8 s each) rather than the quick one")
    args = ap.parse_args()
    work = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="shmring-profile-"))
    work.mkdir(parents=True, exist_ok=True)
    if shutil.which("perf") is None:
        print("profile-scaling: no `perf` here; apt-get install linux-perf", file=sys.stderr)
        return 2
    bench = REPO / "target" / "release" / "shmring-bench"
    if not args.data:
        subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "shmring-bench"],
                       cwd=REPO, check=True)
    data = pathlib.Path(args.data) if args.data else work / "perf.data"
    if not args.data:
        subprocess.run(["perf", "record", "-q", "-a", "-F", str(FREQ), "-e", "cpu-clock",
                        "-o", str(data), "--", str(bench)] + ([] if args.full else ["--quick"])
                       + (["--seconds", args.seconds] if args.seconds else [])
                       + ["--only", "scaling", "--out", str(work)], cwd=REPO, check=True)
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "comm,pid,time,ip,sym,dso"],
                            capture_output=True, text=True, check=True).stdout
    rows = []
    for line in script.splitlines():
        m = LINE.match(line)
        if m:
            comm, pid, t, sym, dso = m.groups()
            rows.append((comm, int(pid), float(t), sym, dso.rsplit("/", 1)[-1]))
    ours = {r[1] for r in rows if r[0] == "shmring-bench"}
    rows = [r for r in rows if r[1] in ours]
    first = {}
    for r in rows:
        first.setdefault(r[1], r[2])
    main_pid = min(first, key=first.get)  # the coordinator, not a role
    rows = [r for r in rows if r[1] != main_pid]
    # Phases: runs of samples in one transport's own code; boundaries halfway between.
    marks = sorted((r[2], "shmring" if kind(r[3], r[4]) == "shmring's own code" else "shmsink")
                   for r in rows if kind(r[3], r[4]).endswith("own code"))
    runs = []
    for t, k in marks:
        if runs and runs[-1][0] == k:
            runs[-1][2] = t
            runs[-1][3] += 1
        else:
            runs.append([k, t, t, 1])
    # A few stray samples (the other transport's code shares the binary) are no phase.
    runs = [r[:3] for r in runs if r[3] >= 3]
    merged = []
    for r in runs:
        if merged and merged[-1][0] == r[0]:
            merged[-1][2] = r[2]
        else:
            merged.append(r)
    cameras = [n for n in ([1, 2, 4, 8, 16] if args.full else [1, 4]) for _ in range(2)]
    print(f"perf record -e cpu-clock at {FREQ} Hz over the scaling scenario "
          f"({'full' if args.full else 'quick'} run); "
          f"CPU share of the benchmark's processes per phase")
    for i, (k, a, z) in enumerate(merged):
        lo = (merged[i - 1][2] + a) / 2 if i else a - 1.0
        hi = (z + merged[i + 1][1]) / 2 if i + 1 < len(merged) else z + 1.0
        sub = [r for r in rows if lo <= r[2] < hi]
        if not sub:
            continue
        n = len(sub)
        shares = collections.Counter(kind(r[3], r[4]) for r in sub)
        label = f"{k} N={cameras[i]}" if len(merged) == len(cameras) else k
        print(f"\n{label}: {n} samples, {n / FREQ * 1000:.0f} ms of CPU")
        for name, v in shares.most_common():
            print(f"  {name:<40} {v * 100 / n:5.1f} %")
    print(f"\nperf data: {data}" if args.keep else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
