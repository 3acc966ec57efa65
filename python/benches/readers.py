#!/usr/bin/env python3
"""What a frame costs a Python reader, three ways, in the same run: `Reader.latest()`
zero-copy (a view on the leased slot), `Reader.latest()` copying, and PyGObject with
`shmringsrc ! appsink` (the way to reach a ring from Python before this package).

A writer process fills 1080p and 4K I420 frames at 30 fps; each reader takes the latest
frame as it comes and reads one byte of it, as an analytics step that looks at part of a
frame would. Per frame: CPU of the reading process (all its threads, GStreamer's
included; a blocking read pays for the wake-up of its thread too) and latency from the
frame's commit to its receipt (p50, p99). Last rows give the CPU of the call alone,
`latest()` with the frame already there plus the array and the release: what the package
itself costs, hot, cold after the sleep, and after the thread sat idle in a busy wait for
1, 10 and 33 ms beside plain numpy after the same (on a VM whose host shares its cores,
how cold a step runs grows with how long its memory sat untouched, sleep or not).

    python3 python/benches/readers.py [--quick]

Figures, not pass/fail: they print with the date and the machine.
"""

import argparse
import datetime
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

import shmring

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("SHMRING_BUILD_DIR", REPO / "target" / "debug"))


def writer(ring_dir, ring, width, height, seconds):
    code = textwrap.dedent(f"""
        import time, numpy as np, shmring
        w = shmring.Writer({ring!r}, {width}, {height}, "I420", 30, dir={ring_dir!r})
        frame = np.full(w.frame_size, 128, dtype=np.uint8)
        print("ready", flush=True)
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < {seconds}:
            w.write(frame)
            n += 1
            time.sleep(max(0.0, start + n / 30 - time.monotonic()))
        w.eos()
        time.sleep(0.5)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ring_dir)
    assert child.stdout.readline().strip() == "ready"
    return child


def measure(frames, receive):
    """Calls receive() `frames` times; returns (CPU us per frame, latencies in ms)."""
    latencies = []
    cpu = time.process_time()
    for _ in range(frames):
        latencies.append(receive())
    cpu = time.process_time() - cpu
    return cpu / frames * 1e6, np.array(latencies)


def call_cost(ring_dir, ring, frames):
    """CPU of latest() + array + byte + release() alone, with the frame already there (no
    wait): what the package adds, apart from the wake-up any blocking read pays. Timed
    as numpy_baseline is, two clock reads around it; then again with a clock read
    between the parts, which adds cold clock reads of its own, for where it goes.
    Returns the total and the parts (latest(), .array, reading a byte, release()) in
    us."""
    reader = shmring.Reader(ring, dir=ring_dir)

    def cold_calls(apart):
        parts, n = np.zeros(4), 0
        while n < frames:
            time.sleep(1 / 30)  # a new frame is there by now
            t0 = time.thread_time()
            f = reader.latest(timeout=0)
            if f is None:
                continue
            if apart:
                t1 = time.thread_time()
                a = f.array
                t2 = time.thread_time()
                _ = int(a[0, 0])
                t3 = time.thread_time()
                f.release()
                parts += (t1 - t0, t2 - t1, t3 - t2, time.thread_time() - t3)
            else:
                _ = int(f.array[0, 0])
                f.release()
                parts[0] += time.thread_time() - t0
            n += 1
        return parts / frames * 1e6

    return cold_calls(apart=False)[0], cold_calls(apart=True)


IDLE_MS = (0, 1, 10, 33)


def busy_wait(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def idle_sweep(step, frames, before=lambda: None):
    """CPU of step() after the thread spent 0, 1, 10 and 33 ms in a busy wait (no
    sleep, so no context switch), us for each: how much of a cold step is the time
    its memory sat untouched. `before` runs ahead of each wait."""
    costs = []
    for idle in IDLE_MS:
        spent = 0
        for i in range(frames + 20):
            before()
            busy_wait(idle / 1000)
            t = time.thread_time_ns()
            step()
            if i >= 20:  # the first calls warm up
                spent += time.thread_time_ns() - t
        costs.append(spent / frames / 1e3)
    return costs


def call_sweep(width, height, frames):
    """latest() + array + byte + release() by idle_sweep, the writer in the same
    process committing a frame in place before each wait. Idle 0 is the call hot. The
    frame's bytes are left as they are (a copy of a whole 4K frame before each call
    would flush the caches and time the memory, not the call)."""
    ring_dir = tempfile.mkdtemp(prefix="shmring-pybench-hot-", dir="/dev/shm")
    try:
        w = shmring.Writer("h", width, height, "I420", 30, dir=ring_dir)
        reader = shmring.Reader("h", dir=ring_dir)

        def commit():
            with w.frame():
                pass

        def call():
            f = reader.latest(timeout=0)
            _ = int(f.array[0, 0])
            f.release()

        costs = idle_sweep(call, frames, before=commit)
        w.close()
        return costs
    finally:
        shutil.rmtree(ring_dir, ignore_errors=True)


def numpy_baseline(frames):
    """The same timing around plain numpy, after the same sleep: a view of a local
    array and a byte of it. What any Python step costs once the sleep has left the
    caches cold on this machine, apart from shmring."""
    local = np.zeros((1080, 1920), dtype=np.uint8)
    spent = 0.0
    for _ in range(frames):
        time.sleep(1 / 30)
        t = time.thread_time()
        v = local[:, :]
        _ = int(v[0, 0])
        spent += time.thread_time() - t
    return spent / frames * 1e6


def shmring_reader(ring_dir, ring, zero_copy):
    reader = shmring.Reader(ring, dir=ring_dir, zero_copy=zero_copy)

    def receive():
        with reader.latest(timeout=5) as f:
            _ = int(f.array[0, 0])
            return (time.time_ns() - f.captured_at) / 1e6

    return receive


def appsink_reader(ring_dir, ring):
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"shmringsrc ring={ring} dir={ring_dir} ! appsink name=s max-buffers=1 drop=true sync=false"
    )
    sink = pipeline.get_by_name("s")
    pipeline.set_state(Gst.State.PLAYING)
    unix = Gst.Caps.from_string("timestamp/x-unix")

    def receive():
        sample = sink.emit("try-pull-sample", 5 * Gst.SECOND)
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        _ = info.data[0]
        buf.unmap(info)
        meta = buf.get_reference_timestamp_meta(unix)
        return (time.time_ns() - meta.timestamp) / 1e6

    return receive, lambda: pipeline.set_state(Gst.State.NULL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    frames = 45 if args.quick else 300
    os.environ["GST_PLUGIN_PATH"] = str(BUILD)
    print(f"shmring Python reader benchmark, {datetime.date.today()}, {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}; "
          f"{frames} frames a row")
    print(f"{'':6} {'path':<22} {'CPU/frame':>12} {'latency p50':>12} {'p99':>9}")
    results = {}
    for label, (w, h) in {"1080p": (1920, 1080), "4K": (3840, 2160)}.items():
        ring_dir = tempfile.mkdtemp(prefix="shmring-pybench-", dir="/dev/shm")
        os.chmod(ring_dir, 0o700)
        child = writer(ring_dir, "b", w, h, seconds=5 * frames / 30 + 20)
        try:
            # One reader at a time: a pipeline left playing would add its CPU to the
            # next path's.
            paths = {
                "latest() zero-copy": lambda: (shmring_reader(ring_dir, "b", True), None),
                "latest() copying": lambda: (shmring_reader(ring_dir, "b", False), None),
                "appsink (PyGObject)": lambda: appsink_reader(ring_dir, "b"),
            }
            for name, make in paths.items():
                try:
                    receive, stop = make()
                except (ImportError, ValueError) as e:
                    print(f"{label}: no PyGObject here ({e}): {name} left out")
                    continue
                receive()  # warm up
                cpu, lat = measure(frames, receive)
                if stop:
                    stop()
                results[(label, name)] = cpu
                print(f"{label:<6} {name:<22} {cpu:>9.1f} us {np.percentile(lat, 50):>9.2f} ms "
                      f"{np.percentile(lat, 99):>6.2f} ms")
            sweep = call_sweep(w, h, frames)
            print(f"{label:<6} {'latest() call, hot loop':<22} {sweep[0]:>9.1f} us   (after "
                  + ", ".join(f"{ms} ms idle {c:.1f}" for ms, c in zip(IDLE_MS[1:], sweep[1:]))
                  + ")")
            ready, parts = call_cost(ring_dir, "b", frames)
            results[(label, "call")] = ready
            print(f"{label:<6} {'latest() call, cold':<22} {ready:>9.1f} us   (timed apart: "
                  f"latest() {parts[0]:.1f}, .array {parts[1]:.1f}, a byte {parts[2]:.1f}, "
                  f"release() {parts[3]:.1f})")
        finally:
            child.kill()
            child.wait()
            shutil.rmtree(ring_dir, ignore_errors=True)
    base = numpy_baseline(frames)
    print(f"{'':6} {'numpy view + byte':<22} {base:>9.1f} us   (plain numpy after the same sleep)")
    local = np.zeros((1080, 1920), dtype=np.uint8)
    sweep = idle_sweep(lambda: int(local[:, :][0, 0]), frames)
    print(f"{'':6} {'numpy view + byte':<22} {sweep[0]:>9.1f} us   hot (after "
          + ", ".join(f"{ms} ms idle {c:.1f}" for ms, c in zip(IDLE_MS[1:], sweep[1:])) + ")")
    for label in ("1080p", "4K"):
        if (label, "call") in results:
            print(f"{label}: the latest() call costs {results[(label, 'call')] / base:.1f} times a "
                  f"plain numpy view and byte after the same sleep")
    for label in ("1080p", "4K"):
        zc = results.get((label, "latest() zero-copy"))
        app = results.get((label, "appsink (PyGObject)"))
        if zc and app:
            print(f"{label}: zero-copy latest() costs {zc / app:.3f} of the appsink path's CPU per frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
