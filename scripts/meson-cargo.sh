#!/usr/bin/env bash
# meson's build step: builds one package of the workspace with cargo and copies the
# library it makes to meson's outputs. For a cross build (scripts/package.sh --arch),
# CARGO_BUILD_TARGET in the environment names the Rust target, and cargo leaves its
# files under target/<triple>/.
# Usage: meson-cargo.sh SOURCE_ROOT CARGO_TARGET_DIR (debug|release) PACKAGE FILE OUTPUT...
set -euo pipefail
src=$1 target=$2 profile=$3 package=$4 file=$5
shift 5
flags=(--locked --manifest-path "$src/Cargo.toml" -p "$package")
[ "$profile" = release ] && flags+=(--release)
CARGO_TARGET_DIR=$target cargo build "${flags[@]}"
built=$target/$profile
[ -n "${CARGO_BUILD_TARGET:-}" ] && built=$target/$CARGO_BUILD_TARGET/$profile
for out in "$@"; do
  cp "$built/$file" "$out"
done
