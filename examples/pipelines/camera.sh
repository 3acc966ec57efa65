#!/usr/bin/env bash
# One camera producer: decodes an RTSP camera once into the ring camN.
# Usage: camera.sh N RTSP_URL
set -euo pipefail
n=$1 url=$2
exec gst-launch-1.0 -e rtspsrc location="$url" ! decodebin ! shmringsink ring="cam$n"
