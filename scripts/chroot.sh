#!/usr/bin/env bash
# Clean Debian chroots for the package and platform tests, made with debootstrap from
# the distribution's packages and cached under /var/cache/shmring (outside the
# checkout): a cached base is never changed, each run gets a fresh copy of it.
#
# Sourced by scripts/test-packages.sh:
#   chroot_base SUITE ARCH       makes (once) the cached base; prints its path
#   chroot_fresh SUITE ARCH DIR [PACKAGE...]
#                                copies the base (with PACKAGEs installed: a cached
#                                copy of the base where apt-get installed them, made
#                                once per list) to DIR and mounts /proc, /dev, /dev/shm
#                                and an apt archive cache in it; chroot_cleanup undoes
#                                every mount it made, at exit
#   chroot_bind DIR PATH         mounts the host's PATH at the same path inside DIR
#   in_chroot DIR CMD...         runs CMD in DIR as root, with a plain environment
#   binfmt_aarch64               makes aarch64 programs run here, under qemu-user-static
#                                registered with binfmt_misc; chroot_cleanup undoes what
#                                it did, and only that
# Needs root (debootstrap, mount, chroot).

CHROOT_CACHE=${SHMRING_CHROOT_CACHE:-/var/cache/shmring}
CHROOT_MIRROR=${SHMRING_DEBIAN_MIRROR:-http://deb.debian.org/debian}
_chroot_mounts=()
_binfmt_registered=""
_binfmt_mounted=""

chroot_base() {
  local suite=$1 arch=$2
  local base=$CHROOT_CACHE/base-$suite-$arch
  if [ ! -f "$base/.complete" ]; then
    echo "chroot: debootstrap $suite $arch into $base (once; cached)" >&2
    # A foreign architecture's second stage runs its programs under qemu-user-static.
    [ "$arch" = "$(dpkg --print-architecture)" ] || binfmt_"$(_chroot_qemu_arch "$arch")"
    _chroot_remove "$base"
    _chroot_remove "$base.partial"
    mkdir -p "$CHROOT_CACHE"
    debootstrap --variant=minbase --arch="$arch" "$suite" "$base.partial" "$CHROOT_MIRROR" >&2
    # Recommended packages are for people; the tests install what they use by name.
    echo 'APT::Install-Recommends "false";' >"$base.partial/etc/apt/apt.conf.d/90shmring"
    mv "$base.partial" "$base"
    touch "$base/.complete"
  fi
  echo "$base"
}

# The base with `packages` installed from the distribution, cached as the base is (a
# list of packages, sorted, names its copy); prints its path.
chroot_prepared() {
  local suite=$1 arch=$2
  shift 2
  local hash
  hash=$(printf '%s\n' "$@" | sort -u | sha256sum | cut -c1-12)
  local prepared=$CHROOT_CACHE/prepared-$suite-$arch-$hash
  if [ ! -f "$prepared/.complete" ]; then
    echo "chroot: $suite $arch with $* into $prepared (once; cached)" >&2
    (
      chroot_fresh "$suite" "$arch" "$prepared.partial"
      in_chroot "$prepared.partial" apt-get update -q >/dev/null
      in_chroot "$prepared.partial" apt-get install -y -q "$@" >/dev/null
      chroot_cleanup
    ) >&2
    _chroot_remove "$prepared"
    mv "$prepared.partial" "$prepared"
    touch "$prepared/.complete"
  fi
  echo "$prepared"
}

chroot_fresh() {
  local suite=$1 arch=$2 dir=$3
  shift 3
  local base
  if [ "$#" -gt 0 ]; then
    base=$(chroot_prepared "$suite" "$arch" "$@")
  else
    base=$(chroot_base "$suite" "$arch")
  fi
  _chroot_remove "$dir"
  mkdir -p "$(dirname "$dir")"
  cp -a "$base" "$dir"
  local archives=$CHROOT_CACHE/apt-$suite-$arch
  mkdir -p "$archives/partial"
  trap chroot_cleanup EXIT
  [ "$arch" = "$(dpkg --print-architecture)" ] || binfmt_"$(_chroot_qemu_arch "$arch")"
  _chroot_mount -t proc proc "$dir/proc"
  _chroot_mount --bind /dev "$dir/dev"
  # Private: what is mounted under it next never shows in the host's /dev (where the
  # host's mounts propagate, as under systemd).
  mount --make-private "$dir/dev"
  # Rings live in /dev/shm: a tmpfs of the chroot's own, not the host's.
  _chroot_mount -t tmpfs -o mode=1777 tmpfs "$dir/dev/shm"
  _chroot_mount --bind "$archives" "$dir/var/cache/apt/archives"
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  # A throwaway root needs no fsync after every file dpkg unpacks: under qemu-user
  # those syncs made installing GStreamer take many minutes.
  echo force-unsafe-io >"$dir/etc/dpkg/dpkg.cfg.d/90shmring-unsafe-io"
  # The machine's own certificate authorities (a proxy's, say) are the chroot's too:
  # ca-certificates takes them in when it is installed there.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$dir/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
  fi
}

# Removes a chroot left by an earlier run. A run that was killed (SIGKILL, a lost
# machine) leaves its mounts: the host's /dev and the checkout are bind-mounted there,
# so they are unmounted first, deepest first, and rm never leaves the chroot's own file
# system.
_chroot_remove() {
  local dir=$1 m
  [ -e "$dir" ] || return 0
  for m in $(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m"
  done
  rm -rf --one-file-system "$dir"
}

chroot_bind() {
  local dir=$1 path=$2
  mkdir -p "$dir$path"
  _chroot_mount --bind "$path" "$dir$path"
}

_chroot_mount() {
  local target=${*: -1}
  mount "$@"
  _chroot_mounts=("$target" "${_chroot_mounts[@]}")
}

chroot_cleanup() {
  local m
  for m in "${_chroot_mounts[@]}"; do
    umount -l "$m" 2>/dev/null || true
  done
  _chroot_mounts=()
  local fs=/proc/sys/fs/binfmt_misc
  if [ -n "$_binfmt_registered" ]; then
    echo -1 >"$fs/$_binfmt_registered" 2>/dev/null || true
    _binfmt_registered=""
  fi
  if [ -n "$_binfmt_mounted" ]; then
    umount "$fs" 2>/dev/null || true
    _binfmt_mounted=""
  fi
}

_chroot_qemu_arch() {
  case $1 in
    arm64) echo aarch64 ;;
    *) echo "chroot: no qemu-user-static setup for $1" >&2; return 1 ;;
  esac
}

# qemu-user-static's interpreter for aarch64, registered with the fix-binary flag (F):
# the kernel opens it once, so it runs programs inside a chroot that does not have it.
# A registration already there (systemd-binfmt's, binfmt-support's) is used as it is,
# if it has that flag; one without it would fail inside the chroot, so it is refused
# with a message rather than replaced.
binfmt_aarch64() {
  local fs=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$conf" ] || { echo "chroot: $conf is missing: install qemu-user-static" >&2; return 1; }
  trap chroot_cleanup EXIT
  if ! mountpoint -q "$fs"; then
    mount -t binfmt_misc binfmt_misc "$fs"
    _binfmt_mounted=1
  fi
  if [ -e "$fs/qemu-aarch64" ]; then
    if ! grep -q '^flags:.*F' "$fs/qemu-aarch64"; then
      echo "chroot: $fs/qemu-aarch64 is registered without the F flag; aarch64 chroots need it" >&2
      return 1
    fi
  else
    cat "$conf" >"$fs/register"
    _binfmt_registered=qemu-aarch64
  fi
}

in_chroot() {
  local dir=$1
  shift
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$dir" "$@"
}
