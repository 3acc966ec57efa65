#!/usr/bin/env python3
"""Writes a moving gradient into a ring from numpy, at 30 frames a second, filled in
place in the ring's own slots; `shmringsrc ring=NAME` reads it with no caps typed:

    python3 examples/python/write_frames.py synth 300 &
    gst-launch-1.0 shmringsrc ring=synth ! videoconvert ! autovideosink
"""

import sys
import time

import numpy as np

import shmring


def main() -> int:
    ring = sys.argv[1] if len(sys.argv) > 1 else "synth"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    width, height = 640, 480
    x = np.arange(width, dtype=np.uint16)
    with shmring.Writer(ring, width, height, "BGRx", 30) as writer:
        start = time.monotonic()
        for n in range(count):
            with writer.frame() as f:  # a slot of the ring, committed at the end
                px = f.array  # (height, width, 4)
                px[:, :, 0] = ((x + 4 * n) % 256).astype(np.uint8)  # blue moves
                px[:, :, 1] = (np.arange(height) % 256).astype(np.uint8)[:, None]
                px[:, :, 2] = 128
                del px  # no view left at the commit: committed in place, no copy
            time.sleep(max(0.0, start + (n + 1) / 30 - time.monotonic()))
        writer.eos()
    return 0


if __name__ == "__main__":
    sys.exit(main())
