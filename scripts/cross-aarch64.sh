#!/usr/bin/env bash
# Builds for aarch64 on this machine against a Debian arm64 root (a chroot of
# scripts/chroot.sh with GStreamer's development packages in it) as the sysroot: its
# headers and .pc files through pkg-config, its libraries at link time. The C side is
# Debian's cross compiler (gcc-aarch64-linux-gnu) with its own libc of the same
# release, so nothing is built under emulation.
#
# Sourced by scripts/test-platforms.sh and scripts/package.sh:
#   cross_aarch64_env SYSROOT   exports cargo's and pkg-config's settings for
#                               --target aarch64-unknown-linux-gnu
#   cross_aarch64_meson SYSROOT FILE
#                               writes a meson cross file for the same build

CROSS_TRIPLE=aarch64-unknown-linux-gnu
CROSS_MULTIARCH=aarch64-linux-gnu

cross_aarch64_env() {
  local sysroot=$1
  local libs=$sysroot/usr/lib/$CROSS_MULTIARCH
  [ -f "$libs/pkgconfig/gstreamer-1.0.pc" ] || {
    echo "cross: $sysroot has no arm64 GStreamer development files" >&2
    return 1
  }
  # Flags of the host's own would replace these per-target ones.
  unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$CROSS_MULTIARCH-gcc
  # --sysroot: the root's libc.so is a linker script naming absolute paths, which are
  # the root's own. The root's libraries need their own dependencies at link time
  # (GLib's, ORC's): rpath-link finds them there without putting a path into what is
  # built.
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=--sysroot=$sysroot -C link-arg=-Wl,-rpath-link,$libs -C link-arg=-Wl,-rpath-link,$sysroot/lib/$CROSS_MULTIARCH"
  export PKG_CONFIG_ALLOW_CROSS=1
  export PKG_CONFIG_SYSROOT_DIR=$sysroot
  export PKG_CONFIG_LIBDIR=$libs/pkgconfig:$sysroot/usr/share/pkgconfig
  export CC_aarch64_unknown_linux_gnu=$CROSS_MULTIARCH-gcc
}

cross_aarch64_meson() {
  local sysroot=$1 file=$2
  local libs=$sysroot/usr/lib/$CROSS_MULTIARCH
  cat >"$file" <<CROSS
[binaries]
c = '$CROSS_MULTIARCH-gcc'
strip = '$CROSS_MULTIARCH-strip'
pkgconfig = 'pkg-config'

[properties]
sys_root = '$sysroot'
pkg_config_libdir = ['$libs/pkgconfig', '$sysroot/usr/share/pkgconfig']

[built-in options]
c_args = ['--sysroot=$sysroot']
c_link_args = ['--sysroot=$sysroot', '-Wl,-rpath-link,$libs', '-Wl,-rpath-link,$sysroot/lib/$CROSS_MULTIARCH']

[host_machine]
system = 'linux'
cpu_family = 'aarch64'
cpu = 'aarch64'
endian = 'little'
CROSS
}
