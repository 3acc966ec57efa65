#!/usr/bin/env python3
"""What an encoded ring saves, both sides measured in the same run.

1. `shmring serve` CPU per 1080p stream: one RTSP client of a ring of the camera's
   H.264 (served as it is: parse, payload) against one of the decoded ring beside it
   (which serve must encode again, with its default x264enc). The rounds alternate,
   and the CPU is the server process's own (utime + stime from /proc), per second.
2. Shared memory per minute of look-back: the encoded ring sized for 60 s at the
   stream's bit rate, against the decoded ring's bytes per second of history.

One writer process makes both rings from one 1080p30 test source (moving SMPTE bars,
x264enc at 4 Mbit/s,
a keyframe every 2 s). Prints figures and ratios with the date and the machine; with
--json, writes them.

    python3 scripts/bench-encoded.py [--seconds 15] [--rounds 2] [--shmring PATH] [--json FILE]
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
BITRATE = 4_000_000
LOOKBACK_S = 60
RAW_HISTORY_S = 2


def cpu_seconds(pid):
    """utime + stime of process `pid`, in seconds."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def stat(shmring, ring_dir, ring):
    out = subprocess.run(
        [shmring, "--dir", ring_dir, "stat", "--json", ring],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def serve_cpu(shmring, ring_dir, ring, seconds, env):
    """CPU seconds a second of a fresh `shmring serve` with one client of `ring`."""
    server = subprocess.Popen(
        [shmring, "--dir", ring_dir, "serve", "--port", "0"],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        port = None
        for line in server.stderr:
            m = re.search(r"://127\.0\.0\.1:(\d+)/RING", line)
            if m:
                port = m.group(1)
                break
        if port is None:
            raise SystemExit(f"shmring serve did not start for {ring}")
        client = subprocess.Popen(
            ["gst-launch-1.0", "-q", "rtspsrc", f"location=rtsp://127.0.0.1:{port}/{ring}",
             "latency=0", "!", "fakesink", "sync=false"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)  # the media prepared, the encoder (if any) warmed up
            if client.poll() is not None:
                raise SystemExit(f"the RTSP client of {ring} stopped")
            c0, t0 = cpu_seconds(server.pid), time.monotonic()
            time.sleep(seconds)
            c1, t1 = cpu_seconds(server.pid), time.monotonic()
            if client.poll() is not None:
                raise SystemExit(f"the RTSP client of {ring} stopped")
            return (c1 - c0) / (t1 - t0)
        finally:
            client.terminate()
            client.wait()
    finally:
        server.terminate()
        server.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--shmring", default=str(REPO / "target" / "release" / "shmring"))
    ap.add_argument("--json")
    args = ap.parse_args()
    shmring = args.shmring
    env = dict(os.environ)
    env.setdefault("GST_PLUGIN_PATH", str(pathlib.Path(shmring).parent))
    ring_dir = tempfile.mkdtemp(prefix="shmring-bench-enc-", dir="/dev/shm")
    os.chmod(ring_dir, 0o700)
    env["SHMRING_DIR"] = ring_dir
    writer = subprocess.Popen(
        ["gst-launch-1.0", "-q", "-e", *(
            "videotestsrc is-live=true pattern=smpte horizontal-speed=8 "
            "! video/x-raw,format=I420,width=1920,height=1080,framerate=30/1 ! tee name=t "
            f"t. ! queue ! shmringsink ring=raw history={RAW_HISTORY_S * 10**9} "
            f"t. ! queue ! x264enc tune=zerolatency speed-preset=ultrafast "
            f"bitrate={BITRATE // 1000} key-int-max=60 "
            f"! shmringsink ring=enc history={LOOKBACK_S * 10**9} bitrate={BITRATE}"
        ).split()],
        env=env, stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(4)
        if writer.poll() is not None:
            raise SystemExit("the writer stopped")
        cpu = {"enc": [], "raw": []}
        for _ in range(args.rounds):
            for ring in ("enc", "raw"):
                cpu[ring].append(serve_cpu(shmring, ring_dir, ring, args.seconds, env))
        enc, raw = stat(shmring, ring_dir, "enc"), stat(shmring, ring_dir, "raw")
    finally:
        writer.terminate()
        writer.wait()
        shutil.rmtree(ring_dir, ignore_errors=True)

    served = {k: statistics.median(v) for k, v in cpu.items()}
    enc_per_min = enc["total_size"] / LOOKBACK_S * 60
    raw_per_min = raw["total_size"] / (raw["slots"] / 30) * 60
    machine = f"{os.cpu_count()}-core {platform.machine()}"
    today = datetime.date.today().isoformat()
    print(f"encoded rings, {today}, {machine}, 1080p30, x264enc at {BITRATE // 10**6} Mbit/s")
    print(f"{'':46} {'encoded':>12} {'decoded':>12} {'ratio':>7}")
    print(f"{'shmring serve, CPU per stream (cores)':46} {served['enc']:12.3f} "
          f"{served['raw']:12.3f} {served['enc'] / served['raw']:7.3f}")
    print(f"{'shared memory per minute of look-back (MB)':46} {enc_per_min / 1e6:12.1f} "
          f"{raw_per_min / 1e6:12.1f} {enc_per_min / raw_per_min:7.4f}")
    print(f"encoded ring: {enc['total_size'] / 1e6:.1f} MB for {LOOKBACK_S} s at "
          f"{BITRATE / 1e6:.0f} Mbit/s; stream measured {enc['bitrate'] / 1e6:.2f} Mbit/s, "
          f"gop {enc['gop']}; decoded ring: {raw['total_size'] / 1e6:.1f} MB for "
          f"{raw['slots']} frames ({raw['slots'] / 30:.1f} s)")
    print(f"serve CPU per round (cores): encoded {cpu['enc']}, decoded {cpu['raw']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "date": today, "machine": machine, "cpu_rounds": cpu, "cpu_median": served,
                "cpu_ratio": served["enc"] / served["raw"],
                "mb_per_minute": {"enc": enc_per_min / 1e6, "raw": raw_per_min / 1e6},
                "memory_ratio": enc_per_min / raw_per_min,
                "stream_bitrate": enc["bitrate"], "gop": enc["gop"],
            }, f, indent=2)


if __name__ == "__main__":
    main()
