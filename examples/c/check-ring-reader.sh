#!/usr/bin/env bash
# Runs ring-reader (libshmring's C reader) against writers in other processes:
# 1. ring-writer (libshmring's C writer): every frame from the first one the reader
#    sees to the last read in order, byte for byte, none missed;
# 2. a gst-launch-1.0 pipeline with shmringsink: 30 frames of its geometry.
# Usage: check-ring-reader.sh PATH/TO/ring-writer PATH/TO/ring-reader  (GST_PLUGIN_PATH set)
set -euo pipefail
writer_app=$1 reader_app=$2
export SHMRING_DIR
SHMRING_DIR=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$SHMRING_DIR"' EXIT

"$writer_app" c-ring 90 60 &
pids+=($!)
out=$("$reader_app" c-ring --check)
echo "$out" | tail -3
echo "$out" | grep -q "^[0-9]* frames read up to frame 90, 0 missed$" \
  || { echo "check-ring-reader: the C reader did not read the C writer's frames to the 90th" >&2; exit 1; }
echo "$out" | grep -q "^ring c-ring: 320x240 I420 at 60.00 fps" \
  || { echo "check-ring-reader: the ring's info is wrong" >&2; exit 1; }

gst-launch-1.0 -q videotestsrc is-live=true \
  ! video/x-raw,format=NV12,width=160,height=120,framerate=30/1 \
  ! shmringsink ring=gst-ring &
pids+=($!)
out=$("$reader_app" gst-ring 30)
echo "$out" | tail -2
frames=$(echo "$out" | grep -c "^frame .*: 160x120 NV12, 28800 bytes in place, captured .* ms ago$" || true)
if [ "$frames" -ne 30 ]; then
  echo "check-ring-reader: expected 30 frames of shmringsink's 160x120 NV12 read in place, got $frames" >&2
  exit 1
fi
