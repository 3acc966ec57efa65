#!/usr/bin/env bash
# meson's build step: builds the plugin with cargo and copies it to meson's output.
# Usage: meson-cargo.sh SOURCE_ROOT CARGO_TARGET_DIR (debug|release) OUTPUT
set -euo pipefail
src=$1 target=$2 profile=$3 out=$4
flags=(--locked --manifest-path "$src/Cargo.toml" -p gst-plugin-shmring)
[ "$profile" = release ] && flags+=(--release)
CARGO_TARGET_DIR=$target cargo build "${flags[@]}"
cp "$target/$profile/libgstshmring.so" "$out"
