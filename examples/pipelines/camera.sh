#!/usr/bin/env bash
# One camera producer: the camera's own H.264 (or H.265, in the same ring name: its
# caps say which), parsed once, into the encoded ring camN-h264 (30 s of look-back at CAM_BITRATE, default 4 Mbit/s: for
# record-on-event.sh and shmring serve, no re-encoding), and decoded once into the
# ring camN (for the processing stages).
# Usage: camera.sh N RTSP_URL
set -euo pipefail
n=$1 url=$2
exec gst-launch-1.0 -e rtspsrc location="$url" ! parsebin ! tee name=t \
  t. ! queue ! shmringsink ring="cam$n-h264" bitrate="${CAM_BITRATE:-4000000}" \
  t. ! queue ! decodebin ! shmringsink ring="cam$n"
