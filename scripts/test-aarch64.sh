#!/usr/bin/env bash
# The ring crate's whole suite built for aarch64 and run under Debian's qemu-user, which
# has no futex_waitv: the non-x86 code and the fallback wake-up path, for real. Child
# processes are started through the same runner ($SHMRING_TEST_RUNNER). Then every
# target is type-checked for aarch64 against GStreamer's headers.
# Needs scripts/setup.sh first (it installs qemu-user and the cross toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."

runner="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$runner"
export SHMRING_TEST_RUNNER="$runner"

echo "== aarch64 under qemu-user: the ring crate's tests"
cargo test -p shmring-common --target aarch64-unknown-linux-gnu --locked

# Every target type-checks for aarch64 here, against the host's GStreamer headers; the
# elements themselves are built and run for aarch64 against Debian's arm64 GStreamer
# in a chroot under qemu-user-static by scripts/test-platforms.sh.
echo "== aarch64: the plugin, the CLI and the benchmark type-check (cargo check)"
PKG_CONFIG_ALLOW_CROSS=1 cargo check --workspace --all-targets --target aarch64-unknown-linux-gnu --locked
