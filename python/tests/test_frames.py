"""Frames across processes: every byte checked, never torn, leases given back."""

import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import shmring
from conftest import BUILD, REPO, SLOWDOWN, check, gst_launch, pattern, python_child, seq_of

W, H = 320, 240  # GRAY8 frames of 76 800 bytes


def writer_child(ring_dir, ring, frames, fps=0, fmt="GRAY8", restart=False):
    """A Python writer in another process: frame n (1, 2, ...) is pattern(n); fps 0
    is flat out. It says "ready" once the ring exists."""
    code = textwrap.dedent(f"""
        import sys, time, shmring
        from conftest import pattern
        w = shmring.Writer({ring!r}, {W}, {H}, {fmt!r}, 30, slots=8, dir={ring_dir!r})
        print("ready", flush=True)
        sys.stdin.readline()
        for n in range(1, {frames} + 1):
            w.write(pattern(n, w.frame_size))
            if {fps}:
                time.sleep(1 / {fps})
        w.eos()
        time.sleep(0.2)
    """)
    child = python_child(code, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def test_every_frame_crosses_processes_byte_for_byte(ring_dir):
    # 8 slots at 500 fps leave a reader 16 ms; an emulated one gets 6 times that.
    child = writer_child(ring_dir, "seq", 300, fps=500 / SLOWDOWN)
    reader = shmring.Reader("seq", dir=ring_dir)
    child.stdin.write("go\n")
    child.stdin.flush()
    seqs = []
    for frame in reader.frames("next"):
        with frame:
            assert frame.array.shape == (H, W)
            assert frame.format == "GRAY8"
            check(frame.array, frame.seq)
            assert seq_of(frame.array) == frame.seq
            seqs.append(frame.seq)
    assert child.wait(10) == 0
    assert seqs == list(range(seqs[0], 301)), "every frame, in order"


def test_never_a_torn_frame_under_a_writer_running_flat_out(ring_dir):
    child = writer_child(ring_dir, "flat", 3000)
    reader = shmring.Reader("flat", dir=ring_dir)
    child.stdin.write("go\n")
    child.stdin.flush()
    leased = copied = 0
    for frame in reader.frames("latest"):
        with frame:
            a = frame.array
            check(a, frame.seq)
            time.sleep(0.001)  # the writer laps the ring meanwhile
            check(a, frame.seq)  # still intact: the slot is leased
            leased += frame.zero_copy
            copied += not frame.zero_copy
    assert child.wait(30) == 0
    assert leased > 0, f"no frame was read in place ({copied} copies)"


def stat(ring_dir, ring):
    out = subprocess.run(
        [str(BUILD / "shmring"), "stat", "--json", ring],
        env={"SHMRING_DIR": ring_dir},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_leases_are_given_back(ring_dir):
    w = shmring.Writer("lease", W, H, "GRAY8", 30, slots=4, dir=ring_dir, lease_slots=4)
    r = shmring.Reader("lease", dir=ring_dir)
    full = stat(ring_dir, "lease")["lease_budget"]
    assert full == 4
    w.write(pattern(1, w.frame_size))
    with r.latest(timeout=1) as frame:
        assert frame.zero_copy
        assert stat(ring_dir, "lease")["lease_budget"] == full - 1
    assert stat(ring_dir, "lease")["lease_budget"] == full, "given back at the end of with"
    view = frame.array  # still valid memory after release
    assert view.shape == (H, W)
    # An exception inside the block gives it back too.
    w.write(pattern(2, w.frame_size))
    with pytest.raises(RuntimeError):
        with r.latest(timeout=1) as frame:
            raise RuntimeError("the application failed")
    assert stat(ring_dir, "lease")["lease_budget"] == full
    # And so does garbage collection of a frame never used in a with block.
    w.write(pattern(3, w.frame_size))
    frame = r.latest(timeout=1)
    arr = frame.array
    assert stat(ring_dir, "lease")["lease_budget"] == full - 1
    check(arr, 3)
    del frame, arr
    gc.collect()
    assert stat(ring_dir, "lease")["lease_budget"] == full


def test_a_reader_without_leases_gets_copies(ring_dir):
    w = shmring.Writer("copy", W, H, "GRAY8", 30, dir=ring_dir, lease_slots=0)
    w.write(pattern(1, w.frame_size))
    frame = shmring.Reader("copy", dir=ring_dir).latest(timeout=1)
    assert not frame.zero_copy
    check(frame.array, 1)
    for n in range(2, 40):
        w.write(pattern(n, w.frame_size))
    check(frame.array, 1)  # its own copy: the writer cannot touch it


def test_timeouts_return_none(ring_dir):
    w = shmring.Writer("quiet", W, H, "GRAY8", 30, dir=ring_dir)
    r = shmring.Reader("quiet", dir=ring_dir)
    t = time.monotonic()
    assert r.latest(timeout=0.3) is None
    assert r.next(timeout=0.2) is None
    assert 0.45 <= time.monotonic() - t < 3
    w.write(pattern(1, w.frame_size))
    assert r.latest(timeout=0).seq == 1


def test_each_error_is_an_exception_that_says_what_was_wrong(ring_dir):
    with pytest.raises(shmring.RingNotFound, match="no ring at"):
        shmring.Reader("nobody-writes-this", dir=ring_dir)
    with pytest.raises(shmring.BadName, match="invalid ring name"):
        shmring.Reader("../etc", dir=ring_dir)
    with pytest.raises(ValueError, match="format"):
        shmring.Writer("x", W, H, "NOT-A-FORMAT", 30, dir=ring_dir)
    with open(f"{ring_dir}/junk.ring", "wb") as f:
        f.write(b"\0" * 65536)
    with pytest.raises(shmring.CorruptRing):
        shmring.Reader("junk", dir=ring_dir)
    w = shmring.Writer("e", W, H, "GRAY8", 30, slots=4, dir=ring_dir)
    with pytest.raises(shmring.ShmringError, match="live writer"):
        shmring.Writer("e", W, H, "GRAY8", 30, dir=ring_dir)
    with pytest.raises(ValueError, match="bytes"):
        w.write(np.zeros(10, dtype=np.uint8))
    r = shmring.Reader("e", dir=ring_dir)
    first = w.write(pattern(1, w.frame_size))
    check(r.get(first).array, 1)
    for n in range(2, 10):
        w.write(pattern(n, w.frame_size))
    with pytest.raises(shmring.HandleGone):
        r.get(first)
    ring, epoch, _ = first.split(":")
    with pytest.raises(shmring.NotYetWritten):
        r.get(f"{ring}:{epoch}:1000")
    with pytest.raises(shmring.BadHandle):
        r.get("not a handle")
    with pytest.raises(shmring.BadHandle, match="this reader reads e"):
        r.get(f"other:{epoch}:1")
    w.eos()
    assert r.latest(timeout=1).seq == 9
    with pytest.raises(shmring.EndOfStream):
        r.latest(timeout=1)
    w2 = shmring.Writer("gone", W, H, "GRAY8", 30, dir=ring_dir)
    r2 = shmring.Reader("gone", dir=ring_dir)
    w2.close()
    with pytest.raises(shmring.WriterGone, match="no new writer came"):
        r2.latest(timeout=0.3)


def test_ctrl_c_interrupts_a_wait(ring_dir):
    w = shmring.Writer("ctrlc2", W, H, "GRAY8", 30, dir=ring_dir)  # silent
    child = python_child(
        textwrap.dedent(f"""
            import time, shmring
            r = shmring.Reader("ctrlc2", dir={ring_dir!r})
            print("waiting", flush=True)
            try:
                r.latest()
            except KeyboardInterrupt:
                print("interrupted", time.monotonic(), flush=True)
        """),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "waiting"
    time.sleep(0.3)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    words = child.stdout.readline().split()
    assert child.wait(5) == 0
    assert words and words[0] == "interrupted", words
    took = float(words[1]) - sent
    print(f"Ctrl-C reached the wait after {took * 1000:.0f} ms")
    assert took < 0.5, f"Ctrl-C took {took:.3f} s"
    del w


def test_a_writer_killed_and_restarted_under_a_reader(ring_dir):
    first = writer_child(ring_dir, "cam", 100000, fps=100)
    reader = shmring.Reader("cam", dir=ring_dir)
    first.stdin.write("go\n")
    first.stdin.flush()
    f = reader.latest(timeout=5)
    epoch = f.handle.split(":")[1]
    check(f.array, f.seq)
    first.kill()
    first.wait()
    second = writer_child(ring_dir, "cam", 100000, fps=100)
    second.stdin.write("go\n")
    second.stdin.flush()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        f = reader.latest(timeout=5)
        assert f is not None
        check(f.array, f.seq)
        if f.handle.split(":")[1] != epoch:
            break
    else:
        pytest.fail("never read the new writer's frames")
    second.kill()
    second.wait()


def reader_when_made(ring_dir, ring):
    """A reader of `ring`, once the gst-launch-1.0 writer has made it (within 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return shmring.Reader(ring, dir=ring_dir)
        except shmring.RingNotFound:
            assert time.monotonic() < deadline, "gst-launch never made the ring"
            time.sleep(0.05)


def test_a_gst_launch_writer_read_from_python(ring_dir):
    launch = gst_launch(
        ring_dir,
        "videotestsrc is-live=true ! video/x-raw,format=I420,width=64,height=48,framerate=30/1 ! shmringsink ring=gst",
    )
    try:
        reader = reader_when_made(ring_dir, "gst")
        info = reader.info
        assert (info["width"], info["height"], info["format"], info["fps"]) == (64, 48, "I420", 30.0)
        with reader.latest(timeout=5) as frame:
            assert frame.format == "I420"
            assert frame.array.shape == (72, 64), "(H * 3 / 2, W), as OpenCV takes I420"
            assert [p.shape for p in frame.planes] == [(48, 64), (24, 32), (24, 32)]
            same = reader.get(frame.handle)  # a copy, by handle
            assert np.array_equal(frame.array, same.array)
            assert frame.captured_at > 1_600_000_000 * 10**9
    finally:
        launch.kill()
        launch.wait()


def test_an_encoded_ring_is_read_unit_by_unit_from_a_keyframe(ring_dir):
    launch = gst_launch(
        ring_dir,
        "videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=30/1 "
        "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! shmringsink ring=enc",
    )
    try:
        reader = reader_when_made(ring_dir, "enc")
        seqs = []
        for _ in range(12):
            frame = reader.next(timeout=5 * SLOWDOWN)
            assert frame is not None
            with frame:
                units = frame.array
                assert units.dtype == np.uint8 and units.ndim == 1 and units.size > 0
                seqs.append(frame.seq)
        # Every unit in order, none skipped, whatever the unit sizes.
        assert seqs == list(range(seqs[0], seqs[0] + 12))
    finally:
        launch.kill()
        launch.wait()


def test_a_python_writer_read_by_shmringsrc(ring_dir, tmp_path):
    w = shmring.Writer("py", 64, 48, "BGRx", 30, slots=64, dir=ring_dir)
    size = w.frame_size
    out = tmp_path / "frames.raw"
    launch = gst_launch(
        ring_dir,
        f"shmringsrc ring=py mode=sequential num-buffers=20 ! filesink location={out}",
    )
    n = 0
    while launch.poll() is None and n < 2000:
        n += 1
        w.write(pattern(n, size))
        time.sleep(0.01)
    assert launch.wait(10) == 0, launch.stderr.read()
    data = np.fromfile(out, dtype=np.uint8)
    assert data.size == 20 * size, "no caps typed: shmringsrc took them from the ring"
    chunks = data.reshape(20, size)
    seqs = [seq_of(c) for c in chunks]
    for c, s in zip(chunks, seqs):
        check(c, s)
    assert seqs == list(range(seqs[0], seqs[0] + 20)), "in order, none lost"


@pytest.mark.parametrize("pool_slots", [2, 0])
def test_frames_filled_in_place(ring_dir, pool_slots):
    w = shmring.Writer("inplace", W, H, "GRAY8", 30, dir=ring_dir, pool_slots=pool_slots)
    r = shmring.Reader("inplace", dir=ring_dir)
    with w.frame() as f:
        kept = f.array
        assert kept.shape == (H, W)
        kept[...] = pattern(1, w.frame_size).reshape(H, W)
    assert f.handle.endswith(":1")
    check(r.latest(timeout=1).array, 1)
    # A view kept past the commit is read-only: the committed frame cannot change.
    with pytest.raises(ValueError, match="read-only"):
        kept[0, 0] = 1
    check(kept, 1)
    for n in range(2, 30):  # laps of the ring, and more frames than pool slots
        with w.frame() as f:
            f.array[...] = pattern(n, w.frame_size).reshape(H, W)
    check(kept, 1)
    latest = r.latest(timeout=1)
    assert latest.seq == 29
    check(latest.array, 29)
    with pytest.raises(ZeroDivisionError):
        with w.frame() as f:
            f.array[...] = 7
            1 / 0
    assert r.latest(timeout=0.1) is None, "a frame whose block raised is not committed"


@pytest.mark.parametrize(
    "fmt,shape",
    [
        ("GRAY8", (48, 64)),
        ("BGRx", (48, 64, 4)),
        ("RGB", (48, 64, 3)),
        ("I420", (72, 64)),
        ("NV12", (72, 64)),
        ("GRAY16_LE", (64 * 48 * 2,)),
    ],
)
def test_arrays_are_shaped_by_format(ring_dir, fmt, shape):
    w = shmring.Writer("shape", 64, 48, fmt, 30, dir=ring_dir)
    r = shmring.Reader("shape", dir=ring_dir)
    w.write(pattern(1, w.frame_size))
    with r.latest(timeout=1) as frame:
        assert frame.array.shape == shape
        assert not frame.array.flags.writeable
        assert frame.copy().flags.writeable
        check(frame.tobytes(), 1)


def test_the_examples_write_and_read_a_ring(ring_dir):
    examples = REPO / "examples" / "python"
    env = {**os.environ, "SHMRING_DIR": ring_dir}
    writer = subprocess.Popen(
        [sys.executable, str(examples / "write_frames.py"), "ex", "90"],
        env=env,
        cwd=ring_dir,
    )
    deadline = time.monotonic() + 20
    while not os.path.exists(f"{ring_dir}/ex.ring"):
        assert time.monotonic() < deadline, "write_frames.py made no ring"
        time.sleep(0.05)
    out = subprocess.run(
        [sys.executable, str(examples / "latest_frames.py"), "ex", "5"],
        env=env,
        cwd=ring_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "640x480 BGRx" in out.stdout, out.stdout
    assert out.stdout.count("frame ") == 5, out.stdout
    assert writer.wait(30) == 0


def test_frames_are_found_by_capture_time(ring_dir):
    w = shmring.Writer("at", 64, 48, "GRAY8", 30, slots=4, dir=ring_dir)
    r = shmring.Reader("at", dir=ring_dir)
    t0 = 1_700_000_000_000_000_000
    for n in range(1, 7):  # 3..6 held by four slots
        w.write(pattern(n, w.frame_size), captured_at=t0 + n * 100_000_000)
    ms = lambda m: t0 + m * 1_000_000  # noqa: E731
    assert r.at(ms(420)).seq == 4
    assert r.at(ms(460), "at-or-before").seq == 4
    f = r.at(ms(420), "at-or-after")
    assert (f.seq, f.captured_at) == (5, ms(500))
    check(f.array, 5)
    with pytest.raises(shmring.HandleGone):
        r.at(ms(150), "at-or-before")
    with pytest.raises(shmring.NotYetWritten):
        r.at(ms(900), "at-or-after")
    with pytest.raises(ValueError, match="rule"):
        r.at(ms(500), "sideways")
