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
#   chroot_exit_hook RC          if the sourcing script defines it, called at exit after
#                                the cleanup (test-platforms.sh names the failed platform)
# One run at a time: sourcing takes a lock (/run/lock/shmring-chroot.lock), which the
# scripts it starts inherit, and waits while another run holds it; chroots and caches
# left by a killed run are taken down under it.
# Needs root (debootstrap, mount, chroot).

# A failure inside $(...) fails the caller's command too.
shopt -s inherit_errexit

CHROOT_CACHE=$(realpath -m "${SHMRING_CHROOT_CACHE:-/var/cache/shmring}")
CHROOT_MIRROR=${SHMRING_DEBIAN_MIRROR:-http://deb.debian.org/debian}
_chroot_mounts=()
_binfmt_registered=""
_binfmt_mounted=""

if [ "${SHMRING_CHROOT_LOCKED:-}" != 1 ]; then
  mkdir -p /run/lock
  exec 9>/run/lock/shmring-chroot.lock
  if ! flock -n 9; then
    echo "chroot: another run holds /run/lock/shmring-chroot.lock; waiting" >&2
    flock 9
  fi
  export SHMRING_CHROOT_LOCKED=1
fi
trap _chroot_exit EXIT

_chroot_exit() {
  local rc=$?
  chroot_cleanup
  if declare -F chroot_exit_hook >/dev/null; then
    chroot_exit_hook "$rc"
  fi
  exit "$rc"
}

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
    debootstrap --variant=minbase --arch="$arch" "$suite" "$base.partial" "$CHROOT_MIRROR" >&2 ||
      { echo "chroot: debootstrap $suite $arch failed" >&2; return 1; }
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
  hash=$(printf '%s\n' "$CHROOT_MIRROR" "$@" | LC_ALL=C sort -u | sha256sum | cut -c1-12)
  local prepared=$CHROOT_CACHE/prepared-$suite-$arch-$hash
  if [ ! -f "$prepared/.complete" ]; then
    echo "chroot: $suite $arch with $* into $prepared (once; cached)" >&2
    (
      chroot_fresh "$suite" "$arch" "$prepared.partial"
      in_chroot "$prepared.partial" apt-get update -q >/dev/null
      in_chroot "$prepared.partial" apt-get install -y -q "$@" >/dev/null
      # Every package there, or no cache.
      in_chroot "$prepared.partial" dpkg-query -W "$@" >/dev/null
      chroot_cleanup
    ) >&2 || { echo "chroot: installing into $prepared.partial failed" >&2; return 1; }
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
  trap _chroot_exit EXIT
  [ "$arch" = "$(dpkg --print-architecture)" ] || binfmt_"$(_chroot_qemu_arch "$arch")"
  _chroot_mount -t proc proc "$dir/proc"
  _chroot_mount --bind /dev "$dir/dev"
  # Private: what is mounted under it next never shows in the host's /dev (where the
  # host's mounts propagate, as under systemd).
  mount --make-private "$dir/dev"
  # Rings live in /dev/shm: a tmpfs of the chroot's own, not the host's.
  _chroot_mount -t tmpfs -o mode=1777 tmpfs "$dir/dev/shm"
  _chroot_mount --bind "$archives" "$dir/var/cache/apt/archives"
  cp --remove-destination /etc/resolv.conf "$dir/etc/resolv.conf"
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
  local dir m
  dir=$(realpath -m -- "$1")
  [ -e "$dir" ] || return 0
  for m in $(_chroot_mounts_under "$dir"); do
    umount -l "$m"
  done
  if [ -n "$(_chroot_mounts_under "$dir")" ]; then
    echo "chroot: $dir still has mounts; not removing it" >&2
    return 1
  fi
  rm -rf --one-file-system "$dir"
}

# Mount points at or under `dir`, deepest first.
_chroot_mounts_under() {
  awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | LC_ALL=C sort -r
}

chroot_bind() {
  local dir=$1 path=$2
  mkdir -p "$dir$path"
  _chroot_mount --bind "$path" "$dir$path"
}

_chroot_mount() {
  local target=${*: -1}
  mount "$@"
  _chroot_mounts=("$BASHPID:$target" "${_chroot_mounts[@]}")
}

# Each mount and registration is undone by the process that made it: a subshell
# ($(chroot_base ...), say) has copies of the lists and leaves its parent's alone.
chroot_cleanup() {
  local m left=()
  for m in "${_chroot_mounts[@]}"; do
    if [ "${m%%:*}" = "$BASHPID" ]; then
      umount -l "${m#*:}" 2>/dev/null || true
    else
      left+=("$m")
    fi
  done
  _chroot_mounts=("${left[@]}")
  local fs=/proc/sys/fs/binfmt_misc
  if [ -n "$_binfmt_registered" ] && [ "${_binfmt_registered%%:*}" = "$BASHPID" ]; then
    echo -1 >"$fs/${_binfmt_registered#*:}" 2>/dev/null || true
    _binfmt_registered=""
    unset SHMRING_BINFMT_OWNER
  fi
  if [ -n "$_binfmt_mounted" ] && [ "$_binfmt_mounted" = "$BASHPID" ]; then
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
# A registration of the system's (systemd-binfmt's, binfmt-support's) with that flag is
# used as it is. Else the interpreter is registered under a name of ours,
# shmring-aarch64, taken down at exit; one left by a killed run (the lock says no run is
# using it) is replaced.
binfmt_aarch64() {
  local fs=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$conf" ] || { echo "chroot: $conf is missing: install qemu-user-static" >&2; return 1; }
  trap _chroot_exit EXIT
  if ! mountpoint -q "$fs"; then
    mount -t binfmt_misc binfmt_misc "$fs"
    _binfmt_mounted=$BASHPID
  fi
  if [ -e "$fs/qemu-aarch64" ] && grep -q '^enabled' "$fs/qemu-aarch64" &&
    grep -q '^flags:.*F' "$fs/qemu-aarch64"; then
    return 0
  fi
  if [ -e "$fs/shmring-aarch64" ]; then
    # Ours, or this run's parent process's (it exports its pid): in use.
    if [ -n "$_binfmt_registered" ] ||
      { [ -n "${SHMRING_BINFMT_OWNER:-}" ] && kill -0 "$SHMRING_BINFMT_OWNER" 2>/dev/null; }; then
      return 0
    fi
    echo -1 >"$fs/shmring-aarch64" # a killed run's
  fi
  sed 's/^:qemu-aarch64:/:shmring-aarch64:/' "$conf" >"$fs/register"
  _binfmt_registered=$BASHPID:shmring-aarch64
  export SHMRING_BINFMT_OWNER=$BASHPID
}

in_chroot() {
  local dir=$1
  shift
  # Without the runs' lock (fd 9): a process left behind by a killed test must not
  # hold it, or the next run waits for ever.
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$dir" "$@" 9>&-
}
