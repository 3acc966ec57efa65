#!/usr/bin/env bash
# Sets everything up on Debian 12, builds the plugin and runs the three-camera demo on
# the embedded test RTSP server for SECONDS (default 30; 0 runs until Ctrl-C), printing
# each stream's frame rate, drops and latency every second and leaving out/mosaic.png.
# Usage: scripts/demo.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked
export GST_PLUGIN_PATH=${CARGO_TARGET_DIR:-$PWD/target}/release
export PATH=$GST_PLUGIN_PATH:$PATH # shmring, built beside the plugin
exec examples/pipelines/three-cameras.sh "${1:-30}"
