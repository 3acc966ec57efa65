#!/usr/bin/python3
"""Mosaic of shmring rings: tiles every ring given, with its name, frame rate and
latency (capture to display) drawn on it; prints the same figures every second; saves
the mosaic as a PNG (and shows it in a window when a display exists).

Usage: mosaic.py [--seconds N] [--png FILE] [--summary FILE.json] RING...
Stops after N seconds (default: until Ctrl-C), writing the summary as JSON.
"""
import argparse
import json
import math
import os
import signal
import statistics
import struct
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

TILE_W, TILE_H, COLUMNS = 320, 180, 3
UNIX = Gst.Caps.from_string("timestamp/x-unix")


class Stream:
    def __init__(self, name):
        self.name = name
        self.frames = 0
        self.window_frames = 0
        self.latencies_ms = []
        self.window_latencies = []
        self.overlay = None
        self.src = None
        self.rates = []
        self.in_place = None

    def on_buffer(self, _pad, info):
        buf = info.get_buffer()
        self.frames += 1
        self.window_frames += 1
        meta = buf.get_reference_timestamp_meta(UNIX)
        if meta is not None:
            lat = (time.time_ns() - meta.timestamp) / 1e6
            self.latencies_ms.append(lat)
            self.window_latencies.append(lat)
        return Gst.PadProbeReturn.OK


def ring_path(name):
    if name.startswith("/"):
        return name
    directory = os.environ.get("SHMRING_DIR") or f"/dev/shm/shmring-{os.geteuid()}"
    return os.path.join(directory, name + ".ring")


def written_in_place(name):
    """The share of the frames its writer committed that were written in place (no
    copy), from the ring's superblock (docs/ring-format.md, layout 1.1), or None."""
    try:
        with open(ring_path(name), "rb") as f:
            head = f.read(152)
    except OSError:
        return None
    if len(head) < 152 or head[:8] != b"SHMRING\0":
        return None
    major, minor = struct.unpack_from("<II", head, 8)
    (committed,) = struct.unpack_from("<Q", head, 104)
    (in_place,) = struct.unpack_from("<Q", head, 144)
    if major != 1 or minor < 1 or committed == 0:
        return None
    return in_place / committed


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(math.ceil(p / 100 * len(v))) - 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--png", default="mosaic.png")
    ap.add_argument("--summary")
    ap.add_argument("--window", action="store_true", help="also show a window (needs a display)")
    ap.add_argument("rings", nargs="+")
    args = ap.parse_args()

    Gst.init(None)
    rows = (len(args.rings) + COLUMNS - 1) // COLUMNS
    width, height = TILE_W * min(COLUMNS, len(args.rings)), TILE_H * rows
    parts = [f"compositor name=mix background=black ! video/x-raw,width={width},height={height},framerate=30/1 "
             "! videoconvert ! tee name=t "
             "t. ! queue leaky=downstream max-size-buffers=2 ! videorate drop-only=true max-rate=1 "
             f"! pngenc ! multifilesink name=png location={args.png} sync=false async=false "]
    show = args.window and os.environ.get("DISPLAY")
    parts.append("t. ! queue leaky=downstream ! " + ("autovideosink sync=false " if show else "fakesink sync=false async=false "))
    for i, ring in enumerate(args.rings):
        x, y = (i % COLUMNS) * TILE_W, (i // COLUMNS) * TILE_H
        parts.append(
            f"shmringsrc name=src{i} ring={ring} ! videoconvert ! videoscale "
            f"! video/x-raw,width={TILE_W},height={TILE_H},pixel-aspect-ratio=1/1 "
            f"! textoverlay name=text{i} valignment=top halignment=left font-desc=\"Sans 10\" text={ring} "
            f"! queue leaky=downstream max-size-buffers=2 ! mix.sink_{i} "
        )
    pipeline = Gst.parse_launch(" ".join(parts))
    mix = pipeline.get_by_name("mix")
    streams = []
    for i, ring in enumerate(args.rings):
        s = Stream(ring)
        s.overlay = pipeline.get_by_name(f"text{i}")
        s.src = pipeline.get_by_name(f"src{i}")
        s.src.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, s.on_buffer)
        pad = mix.get_static_pad(f"sink_{i}")
        pad.set_property("xpos", (i % COLUMNS) * TILE_W)
        pad.set_property("ypos", (i // COLUMNS) * TILE_H)
        streams.append(s)

    loop = GLib.MainLoop()
    started = time.monotonic()
    last = [started]
    failed = []

    def tick():
        now = time.monotonic()
        dt = now - last[0]
        last[0] = now
        cells = []
        for s in streams:
            fps = s.window_frames / dt if dt > 0 else 0.0
            lat = statistics.median(s.window_latencies) if s.window_latencies else float("nan")
            skipped = s.src.get_property("stats").get_value("skipped")
            if s.frames:
                s.rates.append(fps)
            s.in_place = written_in_place(s.name)
            in_place = "" if s.in_place is None else f" {s.in_place:4.0%} in place"
            s.overlay.set_property("text", f"{s.name}  {fps:4.1f} fps  {lat:5.1f} ms")
            cells.append(f"{s.name} {fps:4.1f} fps {lat:6.1f} ms drop {skipped}{in_place}")
            s.window_frames = 0
            s.window_latencies = []
        print(f"[{now - started:5.1f}s] " + " | ".join(cells), flush=True)
        if args.seconds and now - started >= args.seconds:
            pipeline.send_event(Gst.Event.new_eos())
            GLib.timeout_add(3000, loop.quit)
            return False
        return True

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            print(f"mosaic: error from {msg.src.get_name()}: {err.message} ({dbg})", file=sys.stderr)
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

    summary = {"seconds": round(time.monotonic() - started, 1), "png": args.png, "errors": failed, "streams": {}}
    for s in streams:
        st = s.src.get_property("stats")
        # The first second is attach and start-up; the rate is that of the rest.
        steady = s.rates[1:] if len(s.rates) > 2 else s.rates
        summary["streams"][s.name] = {
            "frames": s.frames,
            "fps": round(statistics.mean(steady), 2) if steady else 0.0,
            "latency_ms_p50": round(percentile(s.latencies_ms, 50), 2),
            "latency_ms_p99": round(percentile(s.latencies_ms, 99), 2),
            "skipped": st.get_value("skipped"),
            "torn_retries": st.get_value("torn-retries"),
            "reattaches": st.get_value("reattaches"),
            # Share of the frames its writer wrote without a copy (zero-copy write).
            "written_in_place": None if s.in_place is None else round(s.in_place, 3),
        }
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=2)
    print(json.dumps(summary["streams"], indent=None))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
