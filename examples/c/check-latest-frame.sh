#!/usr/bin/env bash
# Runs latest-frame (the C application) against a writer in another process: a
# gst-launch-1.0 pipeline that writes a live test pattern into a ring. Passes when the
# application got 30 frames in order, each with its capture time.
# Usage: check-latest-frame.sh PATH/TO/latest-frame   (GST_PLUGIN_PATH set)
set -euo pipefail
app=$1
export SHMRING_DIR
SHMRING_DIR=$(mktemp -d)
gst-launch-1.0 -q videotestsrc is-live=true \
  ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
  ! shmringsink ring=c-app &
writer=$!
trap 'kill $writer 2>/dev/null || true; wait $writer 2>/dev/null || true; rm -rf "$SHMRING_DIR"' EXIT
out=$("$app" c-app 30)
echo "$out" | tail -3
frames=$(echo "$out" | grep -c "^frame .*: 115200 bytes, captured .* ms ago$")
if [ "$frames" -ne 30 ]; then
  echo "check-latest-frame: expected 30 frames of 115200 bytes, got $frames" >&2
  exit 1
fi
