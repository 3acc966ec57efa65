#!/usr/bin/env bash
# Builds shmring's Debian packages and its Python wheel into dist/:
#   gstreamer1.0-shmring  the plugin, in GStreamer's plugin directory
#   shmring-tools         the shmring command, its man page, and the systemd units of
#                         examples/systemd (installed disabled)
#   libshmring0           libshmring.so.0, the C library
#   libshmring-dev        shmring.h, shmring.pc and the libshmring.so link
#   shmring-*.whl         the Python package (maturin; manylinux where it qualifies)
# Files come from `meson install` of a release build (prefix /usr), dependencies from
# dpkg-shlibdeps, and lintian must find nothing (packaging/*.lintian-overrides say why
# for what it would).
# Usage: package.sh                    for this machine's architecture (amd64), into dist/
#        package.sh --arch arm64 --sysroot ROOT [--out DIR]
#                                      cross-built on this machine against ROOT, a
#                                      Debian 12 arm64 root with GStreamer's development
#                                      packages and dpkg-dev (scripts/test-platforms.sh
#                                      makes one); dependencies are worked out inside
#                                      ROOT, under qemu-user-static
# Tested by scripts/test-packages.sh in a clean Debian 12 chroot of the same
# architecture (arm64: emulated, from scripts/test-platforms.sh).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
repo=$PWD
umask 022

host_arch=$(dpkg --print-architecture)
arch=$host_arch sysroot="" out=dist
while [ "$#" -gt 0 ]; do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --sysroot) sysroot=$(realpath "$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
cross=""
if [ "$arch" != "$host_arch" ]; then
  [ "$arch" = arm64 ] || { echo "package.sh: packages are built for $host_arch and arm64, not $arch" >&2; exit 1; }
  [ -n "$sysroot" ] || { echo "package.sh: --arch $arch needs --sysroot" >&2; exit 1; }
  cross=1
  source scripts/chroot.sh
  source scripts/cross-aarch64.sh
  cross_aarch64_env "$sysroot"
  export CARGO_BUILD_TARGET=$CROSS_TRIPLE
  # dpkg-shlibdeps runs inside the sysroot, whose programs are arm64.
  binfmt_aarch64
fi
multiarch=$(dpkg-architecture -a"$arch" -qDEB_HOST_MULTIARCH 2>/dev/null)
strip=strip
[ -n "$cross" ] && strip=$multiarch-strip
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
debversion=$(dpkg-parsechangelog -l packaging/changelog -S Version)
case $debversion in
  "$version"-*) ;;
  *) echo "package.sh: packaging/changelog is at $debversion, Cargo.toml at $version" >&2; exit 1 ;;
esac
maintainer="shmring <shmring@users.noreply.github.com>"
homepage=$(sed -n 's/^repository = "\(.*\)"/\1/p' Cargo.toml | head -1)
deb=target/deb/$arch

echo "== release build, installed into a staging root"
build=target/meson-release-$arch
root=$repo/$deb/root
rm -rf "$build" "$deb"
rm -f "$out"/*.deb "$out"/*.whl
setup=(--buildtype=release --prefix=/usr --libdir="lib/$multiarch" -Dcargo_target_dir="$repo/target")
if [ -n "$cross" ]; then
  mkdir -p "$deb"
  cross_aarch64_meson "$sysroot" "$deb/cross.ini"
  setup+=(--cross-file "$deb/cross.ini")
fi
meson setup "${setup[@]}" "$build" >/dev/null
meson compile -C "$build" >/dev/null
meson install -C "$build" --destdir "$root" --quiet
plugindir=usr/lib/$multiarch/gstreamer-1.0
libdir=usr/lib/$multiarch
test -f "$root/$plugindir/libgstshmring.so" || { echo "package.sh: no plugin in $plugindir" >&2; exit 1; }

# Moves `path` (relative to the staging root) into package `pkg`.
take() {
  local pkg=$1 path=$2
  mkdir -p "$deb/$pkg/$(dirname "$path")"
  mv "$root/$path" "$deb/$pkg/$path"
}

for pkg in gstreamer1.0-shmring shmring-tools libshmring0 libshmring-dev; do
  mkdir -p "$deb/$pkg/DEBIAN" "$deb/$pkg/usr/share/doc/$pkg"
  cp packaging/copyright "$deb/$pkg/usr/share/doc/$pkg/copyright"
  gzip -9n <packaging/changelog >"$deb/$pkg/usr/share/doc/$pkg/changelog.Debian.gz"
  if [ -f "packaging/$pkg.lintian-overrides" ]; then
    mkdir -p "$deb/$pkg/usr/share/lintian/overrides"
    cp "packaging/$pkg.lintian-overrides" "$deb/$pkg/usr/share/lintian/overrides/$pkg"
  fi
done

take gstreamer1.0-shmring "$plugindir/libgstshmring.so"
take shmring-tools usr/bin/shmring
take libshmring0 "$libdir/libshmring.so.$version"
take libshmring0 "$libdir/libshmring.so.0"
take libshmring-dev "$libdir/libshmring.so"
take libshmring-dev "$libdir/pkgconfig/shmring.pc"
take libshmring-dev usr/include/shmring.h
left=$(cd "$root" && find . -type f -o -type l)
if [ -n "$left" ]; then
  echo "package.sh: installed but in no package:" >&2
  echo "$left" >&2
  exit 1
fi

# Debian's policy: shared objects and programs stripped (the build keeps no debug
# info in release anyway; symbols tables go too).
"$strip" --strip-unneeded --remove-section=.comment --remove-section=.note \
  "$deb/gstreamer1.0-shmring/$plugindir/libgstshmring.so" \
  "$deb/libshmring0/$libdir/libshmring.so.$version"
"$strip" --remove-section=.comment --remove-section=.note $deb/shmring-tools/usr/bin/shmring
chmod 0644 "$deb/gstreamer1.0-shmring/$plugindir/libgstshmring.so" \
  "$deb/libshmring0/$libdir/libshmring.so.$version"

echo "== shmring-tools: man page, systemd units (disabled), the shmring user"
tools=$deb/shmring-tools
mkdir -p "$tools/usr/share/man/man1" "$tools/lib/systemd/system" "$tools/usr/lib/sysusers.d"
man_of=$tools/usr/bin/shmring
if [ -n "$cross" ]; then
  # help2man runs the command for its --help: an arm64 one, under qemu-user.
  mkdir -p "$deb/qemu"
  printf '#!/bin/sh\nexec qemu-aarch64 -L %s %s "$@"\n' "$sysroot" "$repo/$tools/usr/bin/shmring" >"$deb/qemu/shmring"
  chmod +x "$deb/qemu/shmring"
  man_of=$deb/qemu/shmring
fi
help2man --no-info --version-string="$version" \
  --name="list, inspect, watch, grab, serve and clean up shmring rings" \
  "$man_of" | gzip -9n >"$tools/usr/share/man/man1/shmring.1.gz"
for unit in examples/systemd/*.service; do
  # The examples are for a source install (/usr/local, GST_PLUGIN_PATH); the package
  # puts the command and the plugin where the system looks.
  sed -e 's|/usr/local/bin/shmring|/usr/bin/shmring|' -e '/^Environment=GST_PLUGIN_PATH=/d' \
    "$unit" >"$tools/lib/systemd/system/$(basename "$unit")"
done
cp packaging/shmring.sysusers "$tools/usr/lib/sysusers.d/shmring.conf"
install -m 0755 packaging/shmring-tools.postinst "$tools/DEBIAN/postinst"
if grep -rq /usr/local "$tools/lib/systemd/system"; then
  echo "package.sh: a unit still names /usr/local" >&2
  exit 1
fi

echo "== libshmring0: shlibs and the ldconfig trigger"
echo "libshmring 0 libshmring0 (>= $version)" >$deb/libshmring0/DEBIAN/shlibs
cp packaging/libshmring0.triggers $deb/libshmring0/DEBIAN/triggers

# dpkg-shlibdeps: the packages that provide the libraries a file links, at the
# versions it needs. It reads debian/control, so it runs in a directory that has one.
# A cross build's files are looked at inside the sysroot, where dpkg knows arm64's
# libraries and their packages.
shlibdeps() {
  local work=$repo/$deb/shlibdeps at="" files=() f
  if [ -n "$cross" ]; then
    work=$sysroot/tmp/shlibdeps
    at=$sysroot
  fi
  rm -rf "$work"
  mkdir -p "$work/debian"
  printf 'Source: shmring\n\nPackage: shmring\nArchitecture: any\n' >"$work/debian/control"
  for f in "$@"; do
    cp "$f" "$work/"
    files+=("-e${work#"$at"}/$(basename "$f")")
  done
  if [ -n "$cross" ]; then
    chroot "$sysroot" sh -c 'cd /tmp/shlibdeps && dpkg-shlibdeps -O "$@" 2>/dev/null' sh "${files[@]}"
  else
    (cd "$work" && dpkg-shlibdeps -O "${files[@]}" 2>/dev/null)
  fi | sed -n 's/^shlibs:Depends=//p'
}

# Writes DEBIAN/control (and md5sums) of package `pkg` and builds it into $out.
build_deb() {
  local pkg=$1 section=$2 depends=$3 description=$4 extra=${5:-}
  local dir=$deb/$pkg
  local size
  size=$(du -sk --exclude=DEBIAN "$dir" | cut -f1)
  {
    echo "Package: $pkg"
    echo "Source: shmring"
    echo "Version: $debversion"
    echo "Architecture: $arch"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $size"
    [ -n "$depends" ] && echo "Depends: $depends"
    [ -n "$extra" ] && echo "$extra"
    echo "Section: $section"
    echo "Priority: optional"
    echo "Homepage: $homepage"
    echo "Description: $description"
  } >"$dir/DEBIAN/control"
  (cd "$dir" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$dir/DEBIAN/md5sums"
  find "$dir" -type d -exec chmod 0755 {} +
  mkdir -p "$out"
  dpkg-deb --root-owner-group -Zxz --build "$dir" "$out/${pkg}_${debversion}_${arch}.deb" >/dev/null
}

# Each package's libraries, worked out first: an empty answer is a failure (the
# files link libc at least), not a package without dependencies.
depends() {
  local d
  d=$(shlibdeps "$@")
  [ -n "$d" ] || { echo "package.sh: dpkg-shlibdeps found no dependencies of $*" >&2; return 1; }
  echo "$d"
}
plugin_deps=$(depends "$deb/gstreamer1.0-shmring/$plugindir/libgstshmring.so")
tools_deps=$(depends "$tools/usr/bin/shmring")
lib_deps=$(depends "$deb/libshmring0/$libdir/libshmring.so.$version")

echo "== the packages"
build_deb gstreamer1.0-shmring video \
  "$plugin_deps" \
  "GStreamer elements that share decoded video between processes
 shmringsink writes raw video into a ring of slots in a shared-memory file,
 each guarded by a seqlock and stamped with its pts and capture time; the
 writer never waits for a reader. shmringsrc reads that ring from any other
 process: the latest frame (a slow reader skips frames and slows no one),
 every frame in order, or the frame an application names by handle, in place
 without a copy where it can.
 .
 This package carries the plugin; gst-inspect-1.0 shmring lists its elements." \
  "Multi-Arch: same
Recommends: gstreamer1.0-plugins-base
Suggests: shmring-tools"
build_deb shmring-tools video \
  "$tools_deps, gstreamer1.0-shmring (= $debversion)" \
  "command and systemd units for shmring rings
 shmring lists, inspects, watches and grabs frames from the shared-memory video
 rings of gstreamer1.0-shmring, removes rings of writers that died, serves rings
 over RTSP (shmring serve) and exports Prometheus metrics (shmring metrics).
 .
 The systemd units (a camera, a processing stage, serve, metrics) are installed
 disabled; they run as the system user shmring." \
  "Recommends: gstreamer1.0-tools, gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-ugly"
build_deb libshmring0 libs \
  "$lib_deps" \
  "read and write shmring video rings from C (library)
 libshmring reads the shared-memory video rings that GStreamer's shmringsink
 writes (in place, never torn, following a restarted writer), fetches frames by
 handle or capture time, and writes rings that shmringsrc reads, without
 GStreamer.
 .
 This package carries the shared library." \
  "Multi-Arch: same"
build_deb libshmring-dev libdevel "libshmring0 (= $debversion)" \
  "read and write shmring video rings from C (development files)
 libshmring reads the shared-memory video rings that GStreamer's shmringsink
 writes (in place, never torn, following a restarted writer), fetches frames by
 handle or capture time, and writes rings that shmringsrc reads, without
 GStreamer.
 .
 This package carries the header shmring.h and shmring.pc for pkg-config." \
  "Multi-Arch: same"

echo "== lintian"
lintian --fail-on error,warning --tag-display-limit 0 "$out"/*.deb

echo "== the Python wheel"
# manylinux2014 when the wheel qualifies (maturin checks the glibc symbols it uses),
# else the newest manylinux tag it meets, else a plain linux wheel for this machine.
wheel=(env CARGO_TARGET_DIR="$repo/target/python" target/pyenv/bin/maturin build --quiet --release --locked -m python/Cargo.toml)
[ -n "$cross" ] && wheel+=(--target "$CROSS_TRIPLE")
for tag in manylinux2014 manylinux_2_28 manylinux_2_34 linux; do
  if "${wheel[@]}" --compatibility "$tag" --out "$out" 2>$deb/maturin.log; then
    break
  fi
  [ "$tag" = linux ] && { cat $deb/maturin.log >&2; exit 1; }
done

ls -l "$out"
