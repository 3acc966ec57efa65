#!/usr/bin/env bash
# A recorder started by an event: writes the SECONDS of video before it was started,
# and what follows, to an MP4 file, from a ring that keeps that much history
# (shmringsink history=..., or slots=...). Stop it with Ctrl-C (the file is finished
# cleanly: -e).
# Usage: record-on-event.sh RING SECONDS OUT.mp4
#   gst-launch-1.0 videotestsrc is-live=true ! shmringsink ring=cam1 history=10000000000 &
#   examples/pipelines/record-on-event.sh cam1 5 event.mp4
set -euo pipefail
ring=$1 seconds=$2 out=$3
start=$((seconds * 1000000000))
exec gst-launch-1.0 -e shmringsrc ring="$ring" mode=sequential start="$start" \
  ! videoconvert ! x264enc tune=zerolatency speed-preset=veryfast ! h264parse \
  ! mp4mux ! filesink location="$out"
