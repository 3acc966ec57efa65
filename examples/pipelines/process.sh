#!/usr/bin/env bash
# One processing stage: reads ring camN, transforms it, writes ring procN.
#   1: scale to 320x180      2: colour (greyscale, more contrast)      3: edge detection
# Usage: process.sh N
set -euo pipefail
n=$1
case "$n" in
  1) transform="videoconvert ! videoscale ! video/x-raw,width=320,height=180" ;;
  2) transform="videoconvert ! videobalance saturation=0 contrast=1.3 ! videoconvert" ;;
  3) transform="videoconvert ! edgetv ! videoconvert" ;;
  *) echo "process.sh: stage 1, 2 or 3" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086 # the transform is a pipeline fragment
exec gst-launch-1.0 -e shmringsrc ring="cam$n" ! $transform ! shmringsink ring="proc$n"
