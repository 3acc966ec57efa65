#!/usr/bin/python3
"""Rings side by side by capture time: `shmringsrc timestamps=capture` into
`compositor`, so that each output frame shows one instant of every camera. Measures,
for every output frame, the spread of the capture times of the frames its tiles show
(the skew), and writes it as JSON.

Usage: aligned.py [--seconds N] [--summary FILE.json] [--timestamps capture|arrival] RING...
"""
import argparse
import collections
import json
import math
import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

TILE_W, TILE_H = 160, 90
UNIX = Gst.Caps.from_string("timestamp/x-unix")


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(math.ceil(p / 100 * len(v))) - 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--summary")
    ap.add_argument("--timestamps", default="capture", choices=["capture", "arrival"])
    ap.add_argument("--max-age", type=int, default=300_000_000, help="ns (timestamps=capture)")
    ap.add_argument("rings", nargs="+")
    args = ap.parse_args()

    Gst.init(None)
    n = len(args.rings)
    parts = [f"compositor name=mix background=black ! video/x-raw,width={TILE_W * n},height={TILE_H} "
             "! fakesink name=out sync=false async=false "]
    for i, ring in enumerate(args.rings):
        parts.append(f"shmringsrc name=src{i} ring={ring} timestamps={args.timestamps} "
                     f"max-age={args.max_age} ! mix.sink_{i} ")
    pipeline = Gst.parse_launch(" ".join(parts))
    mix = pipeline.get_by_name("mix")

    # Per input: the (pts, capture time) of its recent buffers. For an output frame at
    # pts P, compositor shows on each tile the input buffer whose time covers P.
    seen = [collections.deque(maxlen=64) for _ in args.rings]
    skews_ms = []

    def on_input(i):
        def probe(_pad, info):
            buf = info.get_buffer()
            meta = buf.get_reference_timestamp_meta(UNIX)
            if meta is not None and buf.pts != Gst.CLOCK_TIME_NONE:
                seen[i].append((buf.pts, meta.timestamp))
            return Gst.PadProbeReturn.OK
        return probe

    def on_output(_pad, info):
        pts = info.get_buffer().pts
        shown = []
        for recent in seen:
            before = [c for p, c in recent if p <= pts]
            if not before:
                return Gst.PadProbeReturn.OK
            shown.append(before[-1])
        skews_ms.append((max(shown) - min(shown)) / 1e6)
        return Gst.PadProbeReturn.OK

    for i in range(n):
        pad = mix.get_static_pad(f"sink_{i}")
        pad.set_property("xpos", i * TILE_W)
        pad.set_property("width", TILE_W)
        pad.set_property("height", TILE_H)
        pad.add_probe(Gst.PadProbeType.BUFFER, on_input(i))
    mix.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_output)

    loop = GLib.MainLoop()
    started = time.monotonic()
    failed = []

    def tick():
        window = skews_ms[-30:]
        print(f"[{time.monotonic() - started:5.1f}s] aligned ({args.timestamps}): "
              f"skew p50 {percentile(window, 50):5.1f} ms, max {max(window, default=float('nan')):5.1f} ms",
              flush=True)
        if args.seconds and time.monotonic() - started >= args.seconds:
            pipeline.send_event(Gst.Event.new_eos())
            GLib.timeout_add(3000, loop.quit)
            return False
        return True

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            print(f"aligned: error from {msg.src.get_name()}: {err.message} ({dbg})", file=sys.stderr)
            failed.append(err.message)
            loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, lambda: pipeline.send_event(Gst.Event.new_eos()) or True)
    GLib.timeout_add(1000, tick)
    pipeline.set_state(Gst.State.PLAYING)
    loop.run()
    pipeline.set_state(Gst.State.NULL)

    # The first second is attach and start-up.
    steady = skews_ms[30:] if len(skews_ms) > 60 else skews_ms
    summary = {
        "timestamps": args.timestamps,
        "rings": args.rings,
        "frames": len(skews_ms),
        "skew_ms_p50": round(percentile(steady, 50), 2),
        "skew_ms_p99": round(percentile(steady, 99), 2),
        "skew_ms_max": round(max(steady, default=float("nan")), 2),
        "errors": failed,
    }
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=2)
    print(json.dumps(summary))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
