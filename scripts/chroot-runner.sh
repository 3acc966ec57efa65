#!/usr/bin/env bash
# cargo's runner for a test binary of another platform: runs it inside a chroot of
# scripts/chroot.sh in which the checkout is mounted at the same path, from the same
# directory, with a plain environment plus the variables the tests read. An aarch64
# binary runs there under qemu-user-static (binfmt_misc), and so does everything it
# starts: gst-launch-1.0, the plugin, Python.
# Usage (scripts/test-platforms.sh):
#   CARGO_TARGET_<TRIPLE>_RUNNER="scripts/chroot-runner.sh ROOT" cargo test --target <triple>
set -euo pipefail
root=$1
shift
pass=()
for v in G_DEBUG RUST_BACKTRACE RUST_TEST_THREADS SHMRING_EMULATED; do
  [ -n "${!v:-}" ] && pass+=("$v=${!v}")
done
# The platform runs' lock (fd 9, scripts/chroot.sh) stays out of the tests: a process a
# killed test leaves behind must not hold it.
exec 9>&-
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  LANG=C.UTF-8 "${pass[@]}" chroot "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$PWD" "$@"
