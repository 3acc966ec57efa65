#!/usr/bin/env bash
# The elements where users run them, beyond this machine's Debian 12 amd64 with
# GStreamer 1.22, each in a chroot made by debootstrap from the distribution's own
# packages (scripts/chroot.sh caches the bases under /var/cache/shmring):
#
# 1. Debian 13, amd64, GStreamer 1.26: the workspace built there against its GStreamer
#    (the crates' features stay at 1.22), then the elements' gst-check tests, the
#    cross-process tests, the three-camera graph end to end, and the Python package
#    (pip install ./python, pytest).
# 2. Debian 12, arm64, under qemu-user-static registered with binfmt_misc: the plugin,
#    its tests and the Python wheel cross-built here for aarch64 against the chroot's
#    arm64 GStreamer, then run in the chroot, emulated: the elements' gst-check tests
#    and the cross-process tests (every byte checked across processes), pytest, and
#    gst-inspect-1.0 loading the plugin. The arm64 packages of scripts/package.sh are
#    built from the same cross build and installed and used in a clean arm64 chroot
#    (scripts/test-packages.sh --arch arm64).
#
# A failure names its platform. Timing tolerances are widened under emulation
# (SHMRING_EMULATED; docs/testing.md says which tests and why), never skipped.
# Usage: test-platforms.sh [trixie|arm64]...   (default: both). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
source scripts/chroot.sh
source scripts/cross-aarch64.sh

platform=""
# Called by scripts/chroot.sh's exit handler, after its cleanup.
chroot_exit_hook() {
  if [ "$1" -ne 0 ] && [ -n "$platform" ]; then
    echo "test-platforms: FAILED on $platform (exit $1)" >&2
  fi
}
[ -x target/pyenv/bin/maturin ] || { echo "test-platforms: run scripts/setup.sh first" >&2; exit 1; }
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
# The host's own flags would replace the cross build's per-target ones.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS

# What the elements' tests use, on any platform: GStreamer's tools and the plugin sets
# of the tests' pipelines (x264enc, avdec_h264, checksumsink, matroskamux), a real video
# sink under Xvfb, and Python.
runtime=(
  ca-certificates gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  python3-venv python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 procps
  xvfb xauth gstreamer1.0-x
)
# The tests of the elements: their gst-check suites and the cross-process tests.
element_tests=(
  -p gst-plugin-shmringsink -p gst-plugin-shmringsrc -p gst-plugin-shmring
  --lib --test elements --test element_lifecycle --test element_timing
  --test element_zero_copy --test formats --test hostile_rings --test cross_process
  --test encoded --test element_units
)

# pytest against the plugin in BUILD, with the package installed in a fresh venv of
# the chroot's Python; `install` is what pip installs (the source tree or a wheel);
# then variables for the tests' environment (VAR=value).
pytest_in() {
  local root=$1 build=$2 install=$3
  shift 3
  in_chroot "$root" env "$@" CARGO_TARGET_DIR="$repo/target/platform-python" \
    RUSTUP_HOME="$rustup_home" CARGO_HOME="$cargo_home" \
    SHMRING_BUILD_DIR="$build" G_DEBUG=fatal_warnings bash -euo pipefail -c "
    export PATH=$cargo_home/bin:\$PATH
    rm -rf /tmp/venv && python3 -m venv /tmp/venv
    /tmp/venv/bin/pip install -q --disable-pip-version-check $install 'numpy>=1.21' 'pytest>=7'
    cd '$repo/python' && /tmp/venv/bin/pytest -q -p no:cacheprovider tests
  "
}

trixie() {
  platform="Debian 13 amd64"
  local root=/var/tmp/shmring-platform-trixie
  echo "== $platform: a chroot with Debian 13's GStreamer"
  chroot_fresh trixie amd64 "$root" "${runtime[@]}" build-essential pkg-config \
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev \
    gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0
  chroot_bind "$root" "$repo"
  # The machine's Rust toolchain, used as it is: rustc and cargo run on Debian 13's
  # newer glibc.
  chroot_bind "$root" "$rustup_home"
  chroot_bind "$root" "$cargo_home"
  local version
  version=$(in_chroot "$root" gst-inspect-1.0 --version | sed -n 's/^GStreamer //p')
  platform="Debian 13 amd64, GStreamer $version"
  echo "== $platform: build the workspace, run the elements' tests and the graph"
  in_chroot "$root" env CARGO_TARGET_DIR="$repo/target/platform-trixie" G_DEBUG=fatal_warnings \
    RUSTUP_HOME="$rustup_home" CARGO_HOME="$cargo_home" \
    CARGO_TERM_COLOR=never bash -euo pipefail -c "
    export PATH=$cargo_home/bin:\$PATH
    cd '$repo'
    # --lib and --bins too: with --examples alone, cargo builds the plugin and the CLI
    # only as dependencies and never puts libgstshmring.so or shmring in debug/.
    cargo build --workspace --lib --bins --examples --locked
    cargo test --locked --no-fail-fast ${element_tests[*]} --test demo
  "
  echo "== $platform: the Python package (pip install ./python, pytest)"
  pytest_in "$root" "$repo/target/platform-trixie/debug" "'$repo/python'"
  echo "== $platform: all checks passed"
  chroot_cleanup
}

arm64() {
  platform="Debian 12 arm64 (qemu-user-static)"
  local root=/var/tmp/shmring-platform-arm64
  echo "== $platform: a chroot with Debian 12's arm64 GStreamer, the sysroot of the cross build"
  chroot_fresh bookworm arm64 "$root" "${runtime[@]}" libc6-dev dpkg-dev \
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  chroot_bind "$root" "$repo"
  version=$(in_chroot "$root" gst-inspect-1.0 --version | sed -n 's/^GStreamer //p')
  platform="Debian 12 arm64 (qemu-user-static), GStreamer $version"
  in_chroot "$root" uname -m

  echo "== $platform: cross-build the plugin and its tests for aarch64 here"
  (
    cross_aarch64_env "$root"
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$repo/scripts/chroot-runner.sh $root"
    export CARGO_TARGET_DIR=$repo/target/platform-arm64
    export G_DEBUG=fatal_warnings SHMRING_EMULATED=1 CARGO_TERM_COLOR=never
    cargo build --locked --target "$CROSS_TRIPLE" -p gst-plugin-shmring --lib --examples
    cargo build --locked --target "$CROSS_TRIPLE" -p shmring-cli # pytest runs `shmring`
    echo "== $platform: gst-inspect-1.0 loads the plugin"
    in_chroot "$root" env GST_PLUGIN_PATH="$CARGO_TARGET_DIR/$CROSS_TRIPLE/debug" \
      gst-inspect-1.0 shmring | grep -E '^ *shmring(sink|src):'
    echo "== $platform: the elements' gst-check tests and the cross-process tests, emulated"
    cargo test --locked --no-fail-fast --target "$CROSS_TRIPLE" "${element_tests[@]}"
  )

  echo "== $platform: the Python wheel, cross-built, with pytest"
  (
    cross_aarch64_env "$root"
    rm -rf target/platform-arm64-wheel
    CARGO_TARGET_DIR=$repo/target/platform-arm64-python target/pyenv/bin/maturin build \
      --quiet --locked -m python/Cargo.toml --target "$CROSS_TRIPLE" \
      --compatibility linux --out target/platform-arm64-wheel
  )
  local wheel
  wheel=$(ls "$repo"/target/platform-arm64-wheel/*.whl)
  pytest_in "$root" "$repo/target/platform-arm64/$CROSS_TRIPLE/debug" "$wheel" SHMRING_EMULATED=1
  chroot_cleanup

  echo "== $platform: the arm64 packages, built from the cross build, installed and used"
  bash scripts/package.sh --arch arm64 --sysroot "$root" --out dist/arm64
  bash scripts/test-packages.sh --arch arm64 --dist dist/arm64
  echo "== $platform: all checks passed"
}

[ "$#" -gt 0 ] || set -- trixie arm64
for p in "$@"; do
  case $p in
    trixie | arm64) "$p" ;;
    *) echo "test-platforms: unknown platform $p (trixie, arm64)" >&2; exit 2 ;;
  esac
done
