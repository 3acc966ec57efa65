"""The Writer against careless and hostile callers: views kept past a commit, arrays in
any memory order, a closed writer, and arguments out of range. Each mistake is a Python
exception (never a panic, never a crash) or harmless, and a committed frame never
changes."""

import gc
import math
import os

import numpy as np
import pytest

import shmring
from conftest import check, pattern

W, H = 64, 48  # GRAY8 frames of 3072 bytes

try:
    from pyo3_runtime import PanicException
except ImportError:  # pragma: no cover - the runtime module appears with the first panic
    PanicException = None


def ring_mapped(ring_dir):
    """Whether this process maps any file of `ring_dir` (the ring, deleted or not)."""
    with open("/proc/self/maps") as maps:
        return any(ring_dir in line for line in maps)


DERIVED = {
    "a[:]": lambda a: a[:],
    "a.reshape(-1)": lambda a: a.reshape(-1),
    "a.T": lambda a: a.T,
    "memoryview(a)": lambda a: memoryview(a),
    "np.asarray(memoryview(a))": lambda a: np.asarray(memoryview(a)),
}


def scribble(view):
    """Writes 9 through a view of any kind, at its first byte and everywhere."""
    if isinstance(view, memoryview):
        view = np.asarray(view)  # a writable numpy array over the memoryview's buffer
    view[...] = 9


@pytest.mark.parametrize("derive", DERIVED, ids=list(DERIVED))
@pytest.mark.parametrize("keep_array", [True, False], ids=["array-kept", "array-deleted"])
def test_a_view_kept_past_the_commit_cannot_change_the_frame(ring_dir, derive, keep_array):
    w = shmring.Writer("views", W, H, "GRAY8", 30, dir=ring_dir)
    r = shmring.Reader("views", dir=ring_dir)
    f = w.frame()
    a = f.array
    view = DERIVED[derive](a)
    a[...] = pattern(1, w.frame_size).reshape(H, W)
    if not keep_array:
        del a
    handle = f.commit()
    with r.latest(timeout=1) as leased:  # a reader leasing the committed frame
        check(leased.array, 1)
        try:
            scribble(view)  # harmless, or refused: either way the frame stays
        except (ValueError, TypeError):
            pass
        check(leased.array, 1)
    check(r.get(handle).array, 1)
    check(f.array, 1)  # the frame's own arrays show what was committed
    assert not f.array.flags.writeable
    if keep_array:
        with pytest.raises(ValueError, match="read-only"):
            a[0, 0] = 9  # the frame's own array is read-only after the commit
    # More frames, and laps of the ring, with the view still alive.
    for n in range(2, 20):
        with w.frame() as g:
            g.array[...] = pattern(n, w.frame_size).reshape(H, W)
    scribble(view)
    latest = r.latest(timeout=1)
    assert latest.seq == 19
    check(latest.array, 19)


def test_a_view_made_in_a_with_block_cannot_change_the_frame(ring_dir):
    w = shmring.Writer("with", W, H, "GRAY8", 30, dir=ring_dir)
    r = shmring.Reader("with", dir=ring_dir)
    with w.frame() as f:
        px = f.array  # bound past the end of the block
        flat = px.reshape(-1)
        flat[:] = pattern(1, w.frame_size)
    flat[:] = 9
    check(r.latest(timeout=1).array, 1)
    check(f.array, 1)


def test_a_frame_whose_views_are_gone_is_committed_in_place(ring_dir):
    w = shmring.Writer("inplace2", W, H, "GRAY8", 30, dir=ring_dir)
    r = shmring.Reader("inplace2", dir=ring_dir)
    with w.frame() as f:
        assert f.zero_copy, "a slot of the ring was lent"
        f.array[...] = pattern(1, w.frame_size).reshape(H, W)
    assert f.zero_copy, "nothing kept a view: committed without a copy"
    check(r.latest(timeout=1).array, 1)
    with w.frame() as f:
        px = f.array
        px[...] = pattern(2, w.frame_size).reshape(H, W)
        del px  # let go before the end of the block
    assert f.zero_copy
    with w.frame() as f:
        px = f.array
        px[...] = pattern(3, w.frame_size).reshape(H, W)
    assert not f.zero_copy, "px was still alive: the frame was copied in"
    check(r.latest(timeout=1).array, 3)


def test_views_kept_alive_hold_their_slot_not_the_pool(ring_dir):
    # More frames with views kept than pool slots: the later ones are buffers of their
    # own, every frame still arrives intact, and the slots come back once let go.
    w = shmring.Writer("pool", W, H, "GRAY8", 30, dir=ring_dir, pool_slots=2)
    r = shmring.Reader("pool", dir=ring_dir)
    kept = []
    for n in range(1, 6):
        with w.frame() as f:
            a = f.array
            a[...] = pattern(n, w.frame_size).reshape(H, W)
            kept.append(a[:])
        check(r.latest(timeout=1).array, n)
    for v in kept:
        v[...] = 9
    del kept, a, f
    gc.collect()
    with w.frame() as f:
        assert f.zero_copy, "the lent slots came back"
        f.array[...] = pattern(6, w.frame_size).reshape(H, W)
    check(r.latest(timeout=1).array, 6)


def test_a_committed_or_dropped_frame_refuses_another_commit(ring_dir):
    w = shmring.Writer("twice", W, H, "GRAY8", 30, dir=ring_dir)
    f = w.frame()
    f.commit()
    with pytest.raises(shmring.ShmringError, match="committed already"):
        f.commit()
    with pytest.raises(ZeroDivisionError):
        with w.frame() as g:
            kept = g.array
            1 / 0
    with pytest.raises(shmring.ShmringError, match="dropped"):
        g.commit()
    with pytest.raises(shmring.ShmringError, match="dropped"):
        g.array
    with pytest.raises(ValueError, match="read-only"):
        kept[0, 0] = 1


# Arrays in any memory order.


def image(shape):
    return (np.arange(math.prod(shape), dtype=np.uint64) * 7 % 251).astype(np.uint8).reshape(shape)


@pytest.mark.parametrize(
    "fmt,shape,make",
    [
        ("GRAY8", (H, W), np.asfortranarray),
        ("GRAY8", (H, W), lambda a: np.ascontiguousarray(a.T).T),  # a transposed view
        ("GRAY8", (H, W), lambda a: np.repeat(a, 2, axis=1)[:, ::2]),  # strided columns
        ("GRAY8", (H, W), lambda a: a[::-1].copy()[::-1]),  # negative strides
        ("BGRx", (H, W, 4), np.asfortranarray),
        ("GRAY8", (H * W,), lambda a: np.repeat(a, 3)[::3]),  # 1-D with a step
    ],
    ids=["fortran", "transposed", "strided", "negative-strides", "fortran-3d", "1d-step"],
)
def test_an_array_in_any_memory_order_is_written_in_its_logical_order(ring_dir, fmt, shape, make):
    w = shmring.Writer("order", W, H, fmt, 30, dir=ring_dir)
    r = shmring.Reader("order", dir=ring_dir)
    want = image(shape)
    given = make(want.copy())
    assert np.array_equal(given, want)
    w.write(given)
    got = r.latest(timeout=1).tobytes()
    assert got == want.tobytes(), "the frame is the array's bytes in C order"


def test_write_takes_only_uint8_arrays_of_a_frame(ring_dir):
    w = shmring.Writer("types", W, H, "GRAY8", 30, dir=ring_dir)
    size = w.frame_size
    with pytest.raises(TypeError, match="uint16"):
        w.write(np.zeros(size // 2, dtype=np.uint16))
    with pytest.raises(TypeError, match="float64"):
        w.write(np.zeros((H, W)))
    with pytest.raises(TypeError, match="bytes"):
        w.write(bytes(size))
    with pytest.raises(TypeError, match="list"):
        w.write([0] * size)
    with pytest.raises(TypeError):
        w.write(None)
    with pytest.raises(ValueError, match="bytes"):
        w.write(np.zeros(size + 1, dtype=np.uint8))
    with pytest.raises(ValueError, match="bytes"):
        w.write(np.zeros((), dtype=np.uint8))
    with pytest.raises(ValueError, match="bytes"):
        w.write(np.zeros((0, W), dtype=np.uint8))
    # Read-only arrays are fine, and so are views of a reader's frames.
    a = pattern(1, size)
    a.setflags(write=False)
    w.write(a)


# A closed writer.


def test_close_unmaps_the_ring_at_once(ring_dir):
    w = shmring.Writer("closing", W, H, "GRAY8", 30, dir=ring_dir)
    path = os.path.join(ring_dir, "closing.ring")
    with w.frame() as committed:  # still bound after the block, as names are
        committed.array[...] = 1
    open_frame = w.frame()
    assert os.path.exists(path) and ring_mapped(ring_dir)
    w.close()
    assert w.closed
    assert not os.path.exists(path)
    assert not ring_mapped(ring_dir), "close() unmaps the ring, frames or not"
    with pytest.raises(shmring.ShmringError, match="closed"):
        open_frame.commit()
    with pytest.raises(shmring.ShmringError, match="closed"):
        open_frame.array
    with pytest.raises(shmring.ShmringError, match="closed"):
        committed.array
    assert committed.handle.endswith(":1")


def test_every_method_of_a_closed_writer_raises(ring_dir):
    w = shmring.Writer("closed", W, H, "GRAY8", 30, dir=ring_dir)
    w.close()
    with pytest.raises(shmring.ShmringError, match="closed"):
        w.write(pattern(1, w.frame_size))
    with pytest.raises(shmring.ShmringError, match="closed"):
        w.frame()
    with pytest.raises(shmring.ShmringError, match="closed"):
        w.eos()
    with pytest.raises(shmring.ShmringError, match="closed"):
        with w:
            pass
    w.close()  # again: nothing to do
    assert "closed" in repr(w)
    assert w.frame_size == W * H
    # The name is free again.
    shmring.Writer("closed", W, H, "GRAY8", 30, dir=ring_dir).write(pattern(1, W * H))


def test_a_view_alive_at_close_keeps_its_slot_mapped_and_only_that(ring_dir):
    w = shmring.Writer("alive", W, H, "GRAY8", 30, dir=ring_dir)
    f = w.frame()
    a = f.array
    v = a.reshape(-1)
    a[...] = 3
    w.close()
    assert ring_mapped(ring_dir), "a view is alive: its slot stays mapped"
    v[:] = 5  # valid memory, of a ring no reader sees any more
    assert int(a.sum()) == 5 * W * H
    with pytest.raises(shmring.ShmringError, match="closed"):
        f.commit()
    del a
    assert ring_mapped(ring_dir)
    del v
    gc.collect()
    assert not ring_mapped(ring_dir), "the last view gone, the ring is unmapped"
    with pytest.raises(shmring.ShmringError, match="closed"):
        f.array


def test_a_writer_used_as_a_context_manager_closes(ring_dir):
    with shmring.Writer("ctx", W, H, "GRAY8", 30, dir=ring_dir) as w:
        with w.frame() as f:
            f.array[...] = 1
    assert w.closed and not ring_mapped(ring_dir)
    with pytest.raises(shmring.ShmringError, match="closed"):
        w.write(pattern(1, w.frame_size))


# Arguments out of range: each a Python exception, never a panic.


def not_a_panic(excinfo):
    if PanicException is not None:
        assert not isinstance(excinfo.value, PanicException), excinfo.value


def case_id(case):
    return ",".join(f"{k}={v!r}" for k, v in case.items()) if isinstance(case, dict) else ""


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"width": 0}, ValueError),
        ({"height": 0}, ValueError),
        ({"width": -1}, ValueError),
        ({"height": -64}, ValueError),
        ({"width": 16385}, ValueError),
        ({"width": 2**40}, ValueError),
        ({"width": 2**64}, (ValueError, OverflowError)),
        ({"width": 64.5}, TypeError),
        ({"width": "64"}, TypeError),
        ({"fps": 0}, ValueError),
        ({"fps": -30}, ValueError),
        ({"fps": float("nan")}, ValueError),
        ({"fps": float("inf")}, ValueError),
        ({"fps": 1e9}, ValueError),
        ({"fps": 1e-9}, ValueError),
        ({"fps": "30"}, TypeError),
        ({"format": ""}, ValueError),
        ({"format": "NOPE"}, ValueError),
        ({"format": None}, TypeError),
        ({"slots": -1}, ValueError),
        ({"slots": 1}, ValueError),
        ({"slots": 1025}, ValueError),
        ({"slots": 2**32 + 4}, ValueError),
        ({"lease_slots": -1}, ValueError),
        ({"lease_slots": 2**32}, ValueError),
        ({"pool_slots": -1}, ValueError),
        ({"lease_slots": 60, "pool_slots": 10}, ValueError),
        ({"ring": ""}, shmring.BadName),
        ({"ring": "../x"}, shmring.BadName),
        ({"ring": "a\0b"}, (shmring.BadName, ValueError)),
    ],
    ids=case_id,
)
def test_writer_arguments_out_of_range_raise(ring_dir, kwargs, error):
    args = {"ring": "args", "width": W, "height": H, "format": "GRAY8", "fps": 30, "dir": ring_dir}
    args.update(kwargs)
    with pytest.raises(error) as excinfo:
        shmring.Writer(**args)
    not_a_panic(excinfo)


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"pts": -1}, ValueError),
        ({"pts": 2**64 - 1}, ValueError),  # the ring's "no pts"
        ({"pts": 2**63}, ValueError),
        ({"captured_at": 2**64 - 1}, ValueError),  # shmringsrc would drop the frame
        ({"captured_at": -1}, ValueError),
        ({"captured_at": 2**200}, (ValueError, OverflowError)),
        ({"pts": 1.5}, TypeError),
        ({"pts": "1"}, TypeError),
        ({"pts": np.uint64(2**64 - 1)}, ValueError),
        ({"captured_at": np.int64(-1)}, ValueError),
        ({"pts": np.float64(1.0)}, TypeError),
    ],
    ids=case_id,
)
def test_times_out_of_range_raise(ring_dir, kwargs, error):
    w = shmring.Writer("times", W, H, "GRAY8", 30, dir=ring_dir)
    with pytest.raises(error) as excinfo:
        w.write(pattern(1, w.frame_size), **kwargs)
    not_a_panic(excinfo)
    with pytest.raises(error) as excinfo:
        w.frame(**kwargs)
    not_a_panic(excinfo)


def test_times_at_the_edges_are_kept(ring_dir):
    w = shmring.Writer("edges", W, H, "GRAY8", 30, dir=ring_dir)
    r = shmring.Reader("edges", dir=ring_dir)
    top = 2**63 - 1
    w.write(pattern(1, w.frame_size), pts=0, captured_at=top)
    f = r.latest(timeout=1)
    assert (f.pts, f.captured_at) == (0, top)
    with w.frame(pts=top, captured_at=0) as g:
        g.array[...] = pattern(2, w.frame_size).reshape(H, W)
    f = r.latest(timeout=1)
    assert (f.pts, f.captured_at) == (top, 0)
    w.write(pattern(3, w.frame_size), pts=np.uint64(5), captured_at=np.int64(6))
    f = r.latest(timeout=1)
    assert (f.pts, f.captured_at) == (5, 6)
