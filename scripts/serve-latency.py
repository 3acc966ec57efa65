#!/usr/bin/env python3
"""Latency from capture to a client's decoded frame through `shmring serve`, on loopback.

A writer (the Python package) fills a ring with dark frames and, once a second, a bright
one, noting the wall-clock time it captures it. `shmring serve` encodes the ring for an
RTSP client (rtspsrc ! rtph264depay ! avdec_h264, jitter buffer off) in this process,
which notes when each bright frame comes out of its decoder. Prints p50 and max with the
date and the machine.

    target/pyenv/bin/python scripts/serve-latency.py [--flashes 10] [--shmring PATH]
"""

import argparse
import datetime
import os
import pathlib
import platform
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import numpy as np

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

import shmring  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
W, H = 640, 360


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flashes", type=int, default=10)
    ap.add_argument("--shmring", default=str(REPO / "target" / "debug" / "shmring"))
    args = ap.parse_args()
    os.environ.setdefault("GST_PLUGIN_PATH", str(pathlib.Path(args.shmring).parent))
    Gst.init(None)
    ring_dir = tempfile.mkdtemp(prefix="shmring-latency-", dir="/dev/shm")
    os.chmod(ring_dir, 0o700)
    writer = shmring.Writer("lat", W, H, "I420", 30, dir=ring_dir)
    dark = np.full(writer.frame_size, 16, dtype=np.uint8)
    dark[W * H:] = 128
    bright = dark.copy()
    bright[: W * H] = 235
    flashes = {}  # flash number -> wall-clock ns at capture
    stop = threading.Event()

    def write():
        n, start = 0, time.monotonic()
        while not stop.is_set():
            flash = n % 30 == 15
            now = time.time_ns()
            writer.write(bright if flash else dark, captured_at=now)
            if flash:
                flashes[n // 30] = now
            n += 1
            time.sleep(max(0.0, start + n / 30 - time.monotonic()))

    threading.Thread(target=write, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [args.shmring, "--dir", ring_dir, "serve", "--port", str(port), "lat"],
        stderr=subprocess.DEVNULL,
    )
    latencies = []
    try:
        time.sleep(1)
        client = Gst.parse_launch(
            f"rtspsrc location=rtsp://127.0.0.1:{port}/lat latency=0 ! rtph264depay "
            "! avdec_h264 ! video/x-raw,format=I420 ! fakesink name=out signal-handoffs=true sync=false"
        )
        seen = set()

        def on_frame(_sink, buf, _pad):
            ok, info = buf.map(Gst.MapFlags.READ)
            luma = info.data[W * H // 2 + W // 2]
            buf.unmap(info)
            if luma > 128:
                now = time.time_ns()
                # The flash shown: the latest one written before now.
                k = max((k for k, t in flashes.items() if t <= now), default=None)
                if k is not None and k not in seen:
                    seen.add(k)
                    latencies.append((now - flashes[k]) / 1e6)

        client.get_by_name("out").connect("handoff", on_frame)
        client.set_state(Gst.State.PLAYING)
        deadline = time.monotonic() + args.flashes + 15
        while len(latencies) < args.flashes + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        client.set_state(Gst.State.NULL)
    finally:
        stop.set()
        server.kill()
        server.wait()
        writer.close()
        shutil.rmtree(ring_dir, ignore_errors=True)
    steady = latencies[2:]  # the first are the stream's start (key frame, caps)
    if not steady:
        raise SystemExit("no flash reached the client")
    print(f"shmring serve, capture to a decoded frame on loopback ({datetime.date.today()}, "
          f"{platform.machine()}, {os.cpu_count()} cores, {W}x{H} x264enc zerolatency): "
          f"{len(steady)} flashes, p50 {np.percentile(steady, 50):.1f} ms, max {max(steady):.1f} ms")


if __name__ == "__main__":
    main()
