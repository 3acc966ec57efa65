#!/usr/bin/env python3
"""Reads the latest frames of a ring, as an analytics process would: with OpenCV, each
frame is converted to BGR (and its mean colour printed); without OpenCV, numpy alone
prints each frame's mean.

    python3 examples/python/latest_frames.py cam1 [frames]

A slow loop skips to the newest frame: nothing queues up, and nobody else waits.
"""

import sys
import time

import shmring

try:
    import cv2
except ImportError:
    cv2 = None

TO_BGR = {
    "I420": "COLOR_YUV2BGR_I420",
    "YV12": "COLOR_YUV2BGR_YV12",
    "NV12": "COLOR_YUV2BGR_NV12",
    "NV21": "COLOR_YUV2BGR_NV21",
    "BGRx": "COLOR_BGRA2BGR",
    "BGRA": "COLOR_BGRA2BGR",
    "RGBx": "COLOR_RGBA2BGR",
    "RGBA": "COLOR_RGBA2BGR",
    "RGB": "COLOR_RGB2BGR",
    "GRAY8": "COLOR_GRAY2BGR",
}


def main() -> int:
    ring = sys.argv[1] if len(sys.argv) > 1 else "cam1"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    reader = shmring.Reader(ring)
    print(f"{ring}: {reader.info['width']}x{reader.info['height']} {reader.info['format']}")
    for n, frame in enumerate(reader.frames("latest")):
        with frame:  # the slot is leased, and so never torn, inside this block
            age_ms = (time.time_ns() - frame.captured_at) / 1e6
            if cv2 is not None and frame.format in TO_BGR:
                bgr = cv2.cvtColor(frame.array, getattr(cv2, TO_BGR[frame.format]))
                what = f"mean BGR {bgr.reshape(-1, 3).mean(axis=0).round(1)}"
            else:
                what = f"mean {frame.array.mean():.1f}"
            print(f"frame {frame.seq}: {age_ms:.1f} ms old, skipped {frame.missed}, {what}")
        if n + 1 >= count:
            return 0
    print("the writer ended its stream")
    return 0


if __name__ == "__main__":
    sys.exit(main())
