#!/usr/bin/env bash
# The ring crate's whole suite built for aarch64 and run under Debian's qemu-user, which
# has no futex_waitv: the non-x86 code and the fallback wake-up path, for real. Child
# processes are started through the same runner ($SHMRING_TEST_RUNNER). Then the plugin
# and the CLI are type-checked for aarch64 against GStreamer's headers.
# Needs scripts/setup.sh first (it installs qemu-user and the cross toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."

runner="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$runner"
export SHMRING_TEST_RUNNER="$runner"

echo "== aarch64 under qemu-user: the ring crate's tests"
cargo test -p shmring-common --target aarch64-unknown-linux-gnu --locked

# Debian 12's arm64 GStreamer development packages cannot be installed beside the
# amd64 ones (multiarch removes libgstreamer-plugins-base1.0-dev:amd64), so the
# elements are type-checked against the host's headers: GStreamer's C API is the same
# on both, and everything CPU-specific in shmring lives in the ring crate tested above.
echo "== aarch64: the plugin, the CLI and the benchmark type-check (cargo check)"
PKG_CONFIG_ALLOW_CROSS=1 cargo check --workspace --all-targets --target aarch64-unknown-linux-gnu --locked
