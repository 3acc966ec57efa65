"""Shared helpers: a private ring directory per test, frame patterns that identify
their frame, and the repository's GStreamer plugin and `shmring` command."""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
# As shmring_common::testing::slowdown(): how many times longer than natively a test
# gives work whose speed it depends on (6 under emulation, scripts/test-platforms.sh);
# what a test checks never changes.
SLOWDOWN = 6 if os.environ.get("SHMRING_EMULATED") else 1
BUILD = pathlib.Path(os.environ.get("SHMRING_BUILD_DIR", REPO / "target" / "debug"))


@pytest.fixture
def ring_dir():
    """A ring directory of this test's own (0700, in /dev/shm), removed afterwards."""
    path = tempfile.mkdtemp(prefix="shmring-pytest-", dir="/dev/shm")
    os.chmod(path, 0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pattern(seq: int, size: int) -> np.ndarray:
    """Frame `seq`'s bytes: its sequence in the first 8, then bytes that depend on both
    the sequence and their position, so a mix of two frames never passes `check`."""
    i = np.arange(size, dtype=np.uint64)
    out = ((i * np.uint64(2654435761) + np.uint64(seq) * np.uint64(40503)) >> np.uint64(7)).astype(np.uint8)
    out[:8] = np.frombuffer(np.uint64(seq).tobytes(), dtype=np.uint8)
    return out


def flat(data) -> np.ndarray:
    if isinstance(data, (bytes, bytearray)):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data).reshape(-1)


def seq_of(data) -> int:
    return int(np.frombuffer(flat(data)[:8].tobytes(), dtype=np.uint64)[0])


def check(data, seq: int) -> None:
    flat_data = flat(data)
    flat_data = flat_data
    expected = pattern(seq, flat_data.size)
    bad = np.flatnonzero(flat_data != expected)
    assert bad.size == 0, f"frame {seq}: byte {bad[0]} differs ({bad.size} bytes)"


def gst_env(ring_dir: str) -> dict:
    env = dict(os.environ)
    env["GST_PLUGIN_PATH"] = str(BUILD)
    env["SHMRING_DIR"] = ring_dir
    return env


def gst_launch(ring_dir: str, pipeline: str, **kw) -> subprocess.Popen:
    if not (BUILD / "libgstshmring.so").exists():
        pytest.fail(f"no libgstshmring.so in {BUILD}: run `cargo build` first")
    return subprocess.Popen(
        ["gst-launch-1.0", "-q", *pipeline.split()],
        env=gst_env(ring_dir),
        stderr=subprocess.PIPE,
        **kw,
    )


def python_child(code: str, **kw) -> subprocess.Popen:
    """This interpreter running `code`, with the repository's tests importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pathlib.Path(__file__).parent) + os.pathsep + env.get("PYTHONPATH", "")
    # Not from python/, where the package's sources would shadow the installed package.
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=pathlib.Path(__file__).parent, **kw)
