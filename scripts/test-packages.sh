#!/usr/bin/env bash
# Installs dist/'s packages (scripts/package.sh) in a clean Debian 12 chroot, as an
# operator would, and uses them there (arm64's under qemu-user-static):
# - `apt-get install ./dist/*.deb` brings GStreamer in by the packages' dependencies;
# - gst-inspect-1.0 finds shmringsink without GST_PLUGIN_PATH, `shmring ls` runs, and
#   the systemd units are installed and disabled;
# - a C program built with `pkg-config --cflags --libs shmring` (examples/c's reader)
#   reads a ring written by shmringsink, and one written by the C writer, every byte
#   checked;
# - the wheel installs with pip in a virtual environment and reads a ring too.
# The chroot's base is cached (scripts/chroot.sh); each run starts from a fresh copy.
# Usage: test-packages.sh [--arch arm64 --dist DIR]   (default: this machine's, dist/)
# Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
source scripts/chroot.sh

arch=$(dpkg --print-architecture) dist=dist
while [ "$#" -gt 0 ]; do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --dist) dist=$2; shift 2 ;;
    *) echo "test-packages: unknown argument $1" >&2; exit 2 ;;
  esac
done
ls "$dist"/*_"$arch".deb "$dist"/*.whl >/dev/null || {
  echo "test-packages: no $arch packages in $dist: run scripts/package.sh" >&2
  exit 1
}
root=/var/tmp/shmring-test-packages-$arch
chroot_fresh bookworm "$arch" "$root"
echo "== Debian 12 $arch chroot: apt-get install ./dist/*.deb"
mkdir -p "$root/opt/shmring/dist"
cp "$dist"/*_"$arch".deb "$dist"/*.whl "$root/opt/shmring/dist/"
cp -r examples "$root/opt/shmring/"
in_chroot "$root" apt-get update -q >/dev/null
in_chroot "$root" sh -c 'cd /opt/shmring && apt-get install -y -q ./dist/*.deb' >/dev/null
echo "== what a user of the packages runs"
# The tools a user adds to try it: gst-launch-1.0, a C compiler and pkg-config, Python.
in_chroot "$root" apt-get install -y -q gstreamer1.0-tools gstreamer1.0-plugins-base \
  gcc libc6-dev pkg-config python3-venv >/dev/null
in_chroot "$root" bash -euo pipefail -c '
  cd /opt/shmring
  export SHMRING_DIR=/dev/shm/rings
  echo "-- GStreamer $(gst-inspect-1.0 --version | sed -n "s/^GStreamer //p") finds the plugin without GST_PLUGIN_PATH"
  test -z "${GST_PLUGIN_PATH:-}"
  gst-inspect-1.0 shmringsink | grep shmringsink >/dev/null
  gst-inspect-1.0 shmring | grep shmringsrc >/dev/null
  echo "-- shmring ls, and its man page"
  shmring ls
  test -f /usr/share/man/man1/shmring.1.gz
  echo "-- the systemd units are installed, disabled, and name no /usr/local"
  for u in shmring-camera@ shmring-process@ shmring-serve shmring-metrics; do
    test -f /lib/systemd/system/$u.service
    test -z "$(find /etc/systemd -name "$u*" 2>/dev/null)"
  done
  ! grep -rq /usr/local /lib/systemd/system/shmring-*
  echo "-- a C program built with pkg-config reads rings"
  cc -Wall -Werror examples/c/ring-reader.c $(pkg-config --cflags --libs shmring) -o /tmp/ring-reader
  cc -Wall -Werror examples/c/ring-writer.c $(pkg-config --cflags --libs shmring) -o /tmp/ring-writer
  gst-launch-1.0 -q videotestsrc is-live=true num-buffers=300 \
    ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! shmringsink ring=cam1 &
  out=$(/tmp/ring-reader cam1 30)
  echo "$out" | tail -1
  test "$(echo "$out" | grep -c "^frame .*: 320x240 I420, 115200 bytes")" -eq 30
  wait
  /tmp/ring-writer c-ring 60 60 >/dev/null &
  /tmp/ring-reader c-ring --check | tail -2
  wait
  echo "-- the wheel installs with pip and reads a ring"
  python3 -m venv /tmp/venv
  /tmp/venv/bin/pip install -q --disable-pip-version-check dist/*.whl
  gst-launch-1.0 -q videotestsrc is-live=true num-buffers=150 \
    ! video/x-raw,format=BGRx,width=64,height=48,framerate=30/1 ! shmringsink ring=py &
  /tmp/venv/bin/python - <<PY
import time, shmring
for _ in range(100):
    try:
        r = shmring.Reader("py")
        break
    except shmring.ShmringError:
        time.sleep(0.1)
f = r.latest(timeout=5)
assert f is not None and f.array.shape == (48, 64, 4), f
print("python:", f.width, f.height, f.format, f.seq)
PY
  wait
'
echo "== packages: all checks passed in a clean Debian 12 $arch chroot"
