#!/usr/bin/env bash
# Makes capi/include/shmring.h from capi/src with cbindgen (Debian's `cbindgen`).
# With --check, fails when the committed header is not what capi/src makes: the
# header is committed so that a C user needs no Rust tool to read it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=capi/include/shmring.h
fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
# cbindgen warns about every private item it skips; only its errors matter here.
cbindgen --quiet --config capi/cbindgen.toml --crate shmring-capi --output "$fresh" capi
if [ "${1:-}" = --check ]; then
  if ! diff -u "$out" "$fresh"; then
    echo "capi-header: $out is not what capi/src makes: run scripts/capi-header.sh" >&2
    exit 1
  fi
else
  cp "$fresh" "$out"
fi
