#!/usr/bin/env bash
# A recorder started by an event: writes the SECONDS of video before it was started,
# and what follows, to an MP4 file, from a ring that keeps that much history. Stop it
# with Ctrl-C (the file is finished cleanly: -e).
#
# A ring of the camera's own H.264 (shmringsink on encoded caps, history= at bitrate=)
# is recorded as it is: no decoder, no encoder, starting on the keyframe at or before
# the moment asked for. Minutes of look-back then take megabytes.
# A ring of decoded frames (shmringsink history=... or slots=...) is the fallback: its
# frames are encoded here.
# Usage: record-on-event.sh RING SECONDS OUT.mp4
#   gst-launch-1.0 rtspsrc location=rtsp://cam1/ ! rtph264depay ! h264parse \
#     ! shmringsink ring=cam1-h264 history=60000000000 bitrate=4000000 &
#   examples/pipelines/record-on-event.sh cam1-h264 30 event.mp4
set -euo pipefail
ring=$1 seconds=$2 out=$3
start=$((seconds * 1000000000))
if command -v shmring > /dev/null; then
  caps=$(shmring stat "$ring" 2>/dev/null | sed -n 's/^caps  *//p' || true)
else
  echo "record-on-event: shmring is not on PATH: $ring is taken for a ring of decoded frames" >&2
  caps=
fi
case $caps in
  video/x-h264*) encode=(h264parse) ;;
  video/x-h265*) encode=(h265parse) ;;
  *) encode=(videoconvert ! x264enc tune=zerolatency speed-preset=veryfast ! h264parse) ;;
esac
exec gst-launch-1.0 -e shmringsrc ring="$ring" mode=sequential start="$start" \
  ! "${encode[@]}" ! mp4mux ! filesink location="$out"
