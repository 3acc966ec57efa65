#!/usr/bin/env bash
# Installs everything shmring needs to build, test and run its demo on Debian 12:
# GStreamer 1.22 from the distribution (development files, tools, the plugin sets the
# demo and the benchmarks use), the RTSP server library, PyGObject and meson; and for
# the aarch64 tests, qemu-user, the aarch64 cross linker and rustup's aarch64 std; and
# for the Python package, a virtual environment (target/pyenv) of Debian's python3, which
# keeps its PyGObject, with maturin, numpy and pytest from PyPI; cbindgen for libshmring's
# header; and for the Debian packages, debootstrap, lintian, help2man and dpkg-dev; and
# for the platform chroots (scripts/test-platforms.sh), qemu-user-static.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  pkg-config build-essential meson ninja-build
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-rtsp libgstrtspserver-1.0-dev gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-x gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 python3-gi
  qemu-user qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  xvfb xauth python3-venv
  cbindgen
  debootstrap debian-archive-keyring lintian help2man dpkg-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Node.js and npm for the node/ package: the machine's own (Node 20) when it has one,
# else Debian's (Node 18, which the package supports too).
if ! command -v npm >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends nodejs npm
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not on PATH; install the Rust toolchain (rustup) first" >&2
  exit 1
fi

if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi

if [ ! -x target/pyenv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages target/pyenv
fi
# Two environments, one per numpy line users have: numpy 1.x (Debian 12's own 1.24
# when python3-numpy is installed) and numpy 2.x from PyPI. The package's tests run in
# both, because numpy's scalars behave differently between them.
target/pyenv/bin/pip install -q --disable-pip-version-check "maturin>=1.7,<2" "numpy>=1.21,<2" "pytest>=7"
if [ ! -x target/pyenv-numpy2/bin/python ]; then
  /usr/bin/python3 -m venv target/pyenv-numpy2 # no system packages: it must not see Debian's numpy
fi
target/pyenv-numpy2/bin/pip install -q --disable-pip-version-check "numpy>=2" "pytest>=7"
