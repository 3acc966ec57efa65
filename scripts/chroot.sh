#!/usr/bin/env bash
# Clean Debian chroots for the package and platform tests, made with debootstrap from
# the distribution's packages and cached under /var/cache/shmring (outside the
# checkout): a cached base is never changed, each run gets a fresh copy of it.
#
# Sourced by scripts/test-packages.sh:
#   chroot_base SUITE ARCH       makes (once) the cached base; prints its path
#   chroot_fresh SUITE ARCH DIR  copies the base to DIR and mounts /proc, /dev, /dev/shm
#                                and an apt archive cache in it; chroot_cleanup undoes
#                                every mount it made, at exit
#   in_chroot DIR CMD...         runs CMD in DIR as root, with a plain environment
# Needs root (debootstrap, mount, chroot).

CHROOT_CACHE=${SHMRING_CHROOT_CACHE:-/var/cache/shmring}
CHROOT_MIRROR=${SHMRING_DEBIAN_MIRROR:-http://deb.debian.org/debian}
_chroot_mounts=()

chroot_base() {
  local suite=$1 arch=$2
  local base=$CHROOT_CACHE/base-$suite-$arch
  if [ ! -f "$base/.complete" ]; then
    echo "chroot: debootstrap $suite $arch into $base (once; cached)" >&2
    rm -rf "$base" "$base.partial"
    mkdir -p "$CHROOT_CACHE"
    debootstrap --variant=minbase --arch="$arch" "$suite" "$base.partial" "$CHROOT_MIRROR" >&2
    # Recommended packages are for people; the tests install what they use by name.
    echo 'APT::Install-Recommends "false";' >"$base.partial/etc/apt/apt.conf.d/90shmring"
    mv "$base.partial" "$base"
    touch "$base/.complete"
  fi
  echo "$base"
}

chroot_fresh() {
  local suite=$1 arch=$2 dir=$3
  local base
  base=$(chroot_base "$suite" "$arch")
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  cp -a "$base" "$dir"
  local archives=$CHROOT_CACHE/apt-$suite-$arch
  mkdir -p "$archives/partial"
  trap chroot_cleanup EXIT
  _chroot_mount -t proc proc "$dir/proc"
  _chroot_mount --bind /dev "$dir/dev"
  # Private: what is mounted under it next never shows in the host's /dev (where the
  # host's mounts propagate, as under systemd).
  mount --make-private "$dir/dev"
  # Rings live in /dev/shm: a tmpfs of the chroot's own, not the host's.
  _chroot_mount -t tmpfs -o mode=1777 tmpfs "$dir/dev/shm"
  _chroot_mount --bind "$archives" "$dir/var/cache/apt/archives"
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  # The machine's own certificate authorities (a proxy's, say) are the chroot's too:
  # ca-certificates takes them in when it is installed there.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$dir/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
  fi
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
}

in_chroot() {
  local dir=$1
  shift
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$dir" "$@"
}
