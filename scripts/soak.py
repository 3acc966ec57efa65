#!/usr/bin/python3
"""Soak run: three writers at 30 fps and six readers (two per ring, one latest, one
sequential) for a set time, outside the normal CI; beside them what else a deployment
keeps running for months: a Python reader (the shmring package, zero-copy `latest()`),
`shmring metrics` scraped every 10 s, and `shmring serve` with an RTSP client.

Every 10 s it samples each process's resident memory and open file descriptors. At
the end it checks that memory and descriptors stayed flat, that each reader's
counters add up (the frames written while it was attached, from the ring sequence
numbers it saw, equal the frames it received plus those it skipped or lost), that
every scrape answered and that the RTSP client was still playing.

Usage: scripts/soak.py [SECONDS]   (default 600; GST_PLUGIN_PATH must find the plugin;
SHMRING_CLI names the shmring binary, default target/release/shmring; the Python reader
runs in target/pyenv, left out where that has no shmring package)
Exit status 0 when every check passes.
"""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

RINGS = ["soak1", "soak2", "soak3"]
REPO = pathlib.Path(__file__).resolve().parents[1]
PYENV = REPO / "target" / "pyenv" / "bin" / "python"


def reader_main(ring, mode):
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst

    Gst.init(None)
    pipeline = Gst.parse_launch(f"shmringsrc name=src ring={ring} mode={mode} ! fakesink sync=false")
    src = pipeline.get_by_name("src")
    seen = {"first": None, "last": None}

    def probe(_pad, info):
        off = info.get_buffer().offset
        if seen["first"] is None:
            seen["first"] = off
        seen["last"] = off
        return Gst.PadProbeReturn.OK

    src.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    pipeline.set_state(Gst.State.PLAYING)
    loop.run()
    stats = src.get_property("stats")
    pipeline.set_state(Gst.State.NULL)
    out = {k: stats.get_value(k) for k in ("received", "skipped", "lost", "reattaches")}
    out.update(seen)
    print(json.dumps(out), flush=True)


def python_reader_main(ring):
    """`Reader.latest()` in a loop, looking at a byte of each frame, until SIGINT."""
    import shmring

    reader = shmring.Reader(ring)
    seen = {"first": None, "last": None, "received": 0, "skipped": 0, "lost": 0}
    try:
        while True:
            frame = reader.latest(timeout=1.0)
            if frame is None:
                continue
            with frame:
                _ = int(frame.array[0, 0])
                if seen["first"] is None:
                    seen["first"] = frame.seq
                else:
                    seen["skipped"] += frame.missed
                seen["last"] = frame.seq
                seen["received"] += 1
    except KeyboardInterrupt:
        pass
    print(json.dumps(seen), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 600
    writers = [
        subprocess.Popen(
            ["gst-launch-1.0", "-q", "-e", "videotestsrc", "is-live=true", "!",
             "video/x-raw,format=I420,width=1280,height=720,framerate=30/1", "!", "shmringsink", f"ring={r}"])
        for r in RINGS
    ]
    time.sleep(1)
    readers = [
        (ring, mode, subprocess.Popen([sys.executable, __file__, "--reader", ring, mode], stdout=subprocess.PIPE, text=True))
        for ring in RINGS for mode in ("latest", "sequential")
    ]
    if subprocess.run([str(PYENV), "-c", "import shmring"], capture_output=True).returncode == 0:
        readers.append((RINGS[0], "python", subprocess.Popen(
            [str(PYENV), __file__, "--python-reader", RINGS[0]], stdout=subprocess.PIPE, text=True)))
    else:
        print("soak: no shmring package in target/pyenv; the Python reader is left out")
    cli = os.environ.get("SHMRING_CLI", str(REPO / "target" / "release" / "shmring"))
    metrics_port, rtsp_port = free_port(), free_port()
    metrics = subprocess.Popen([cli, "metrics", "--listen", f"127.0.0.1:{metrics_port}"],
                               stderr=subprocess.DEVNULL)
    serve = subprocess.Popen([cli, "serve", "--port", str(rtsp_port)], stderr=subprocess.DEVNULL)
    time.sleep(2)
    client = subprocess.Popen(
        ["gst-launch-1.0", "-q", "rtspsrc", f"location=rtsp://127.0.0.1:{rtsp_port}/{RINGS[1]}",
         "latency=100", "!", "decodebin", "!", "fakesink"], stdout=subprocess.DEVNULL)
    procs = {f"writer {r}": w.pid for r, w in zip(RINGS, writers)}
    procs.update({f"reader {r} {m}": p.pid for r, m, p in readers})
    procs.update({"shmring metrics": metrics.pid, "shmring serve": serve.pid,
                  "rtsp client": client.pid})
    scrapes = failed_scrapes = 0
    samples = {name: [] for name in procs}
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        time.sleep(min(10, max(0.1, seconds - (time.monotonic() - start))))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
                answered = r.status == 200 and b"shmring_" in r.read()
        except OSError:
            answered = False
        scrapes += answered
        failed_scrapes += not answered
        for name, pid in procs.items():
            s = sample(pid)
            if s:
                samples[name].append(s)
        print(f"[{time.monotonic() - start:6.0f}s] " + "  ".join(
            f"{n.split()[1]}{'/' + n.split()[2][:3] if n.startswith('reader') else ''}:{v[-1][0] // 1024}MB"
            for n, v in samples.items() if v), flush=True)

    ok = True
    client_playing = client.poll() is None
    client.send_signal(signal.SIGINT)
    for p in (client, metrics, serve):
        if p.poll() is None:
            p.terminate()
        p.wait(timeout=30)
    for _, _, p in readers:
        p.send_signal(signal.SIGINT)
    results = []
    for ring, mode, p in readers:
        out, _ = p.communicate(timeout=30)
        results.append((ring, mode, json.loads(out.strip().splitlines()[-1])))
    for w in writers:
        w.send_signal(signal.SIGINT)
        if w.wait(timeout=30) != 0:
            print(f"writer {w.pid} did not stop cleanly", file=sys.stderr)
            ok = False

    print("\nreader                 written  received  skipped  lost  adds up")
    for ring, mode, r in results:
        written = (r["last"] - r["first"] + 1) if r["first"] is not None else 0
        accounted = r["received"] + r["skipped"] + r["lost"]
        adds_up = written == accounted and r["received"] > 0
        ok &= adds_up
        print(f"{ring} {mode:<12} {written:>10} {r['received']:>9} {r['skipped']:>8} {r['lost']:>5}  {'yes' if adds_up else 'NO'}")

    print(f"\nmetrics scrapes answered: {scrapes}, failed: {failed_scrapes}; "
          f"RTSP client playing to the end: {'yes' if client_playing else 'NO'}")
    ok &= failed_scrapes == 0 and scrapes > 0 and client_playing

    print("\nprocess                  RSS first->last MB   fds first->last  flat")
    for name, v in samples.items():
        if len(v) < 2:
            continue
        # Skip the first quarter: start-up allocations.
        base = v[len(v) // 4]
        last = v[-1]
        flat = last[0] <= base[0] * 1.10 + 2048 and last[1] == base[1]
        ok &= flat
        print(f"{name:<24} {base[0] / 1024:8.1f} -> {last[0] / 1024:8.1f}   {base[1]:4} -> {last[1]:4}      {'yes' if flat else 'NO'}")
    print("\nsoak:", "passed" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--reader":
        reader_main(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--python-reader":
        python_reader_main(sys.argv[2])
    else:
        main()
