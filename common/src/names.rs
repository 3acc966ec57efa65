//! The ring directory's names: its privacy, the name lock, swaps, removals, leftovers.
//!
//! The directory must be a private directory of ours (`ensure_private_dir`,
//! `check_private_dir`). A writer builds its ring under a temporary dot-name
//! (`create_temp`) and renames it into place, or swaps a replacement in
//! (`put_in_place_of`); `remove_if_dead` and `abandoned_temp_files` find what dead
//! writers left. The building itself is the writer's (writer.rs).
//!
//! The name lock: every change of a ring's name (create, take-over, replace, drop, gc)
//! is made under a short lock, so that looking at a name and acting on it are one step
//! for every process that changes names.
//!
//! Without it each of those checks a name, then acts on it, and another process could
//! put a ring under the name in between (the plain-rename fallback of `replace`, the
//! take-over of a dead writer's ring, which builds its ring for milliseconds between the
//! check and the rename, and the removal by drop and gc).
//!
//! The lock is an open-file-description write lock on `.shmring-names-<uid>.lock`, a
//! file of the user's own, mode 0600, in the ring directory. Not the directory itself:
//! anybody who can read a directory can `flock` it, group readers of a 0750 ring
//! directory and every user of `/dev/shm` among them, and they could then make every
//! change wait. The file is made once and left in place (removing a lock file races
//! with its next taker); a file of that name that is not ours, or not a regular file,
//! is never used.
//!
//! Rules, so that the lock can never block anyone for long:
//! - it is taken last: after the ring's own lock where one is held, never before, and
//!   nothing is waited for while it is held (ring locks are only ever tried);
//! - it is never held across building a ring, a copy or a wait: only around the check
//!   of a name and the rename or unlink that follows;
//! - waiting for it is bounded ([`MAX_WAIT`]): a holder that is stopped (SIGSTOP, a
//!   debugger) delays the others by that much, then they go ahead with their own checks,
//!   as they did before the lock existed. So does a process that cannot make or open the
//!   lock file. The take-over and `replace` stay correct without it where the kernel
//!   can swap two names (`renameat2(RENAME_EXCHANGE)`): they swap, then check.
//!
//! OFD locks belong to the open file description: two threads of one process exclude
//! each other as two processes do, and the lock goes when the last fd closes (a
//! SIGKILLed holder frees it).

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::layout::{MAGIC, SUPERBLOCK_SIZE};
use crate::location::RingLocation;
use crate::mapping::Mapping;
use crate::sys;

/// How long a change of a name waits for another to finish before going ahead.
pub const MAX_WAIT: Duration = Duration::from_millis(500);

/// Held while a name is looked at and changed; released when dropped.
#[must_use = "the lock is released when this is dropped"]
pub struct NameLock {
    /// The lock file, write-locked; closing it releases the lock.
    held: Option<File>,
}

impl NameLock {
    /// Takes the name lock of the ring directory `dir`, waiting at most [`MAX_WAIT`].
    /// When the wait runs out or the lock file cannot be used, the guard holds nothing
    /// and the change goes ahead on its own checks.
    pub fn take(dir: &Path) -> NameLock {
        Self::take_within(dir, MAX_WAIT)
    }

    pub(crate) fn take_within(dir: &Path, wait: Duration) -> NameLock {
        let Some(file) = lock_file(dir) else {
            return NameLock { held: None };
        };
        let deadline = Instant::now() + wait;
        loop {
            match sys::try_lock_byte(&file, 0) {
                Ok(true) => return NameLock { held: Some(file) },
                Ok(false) | Err(nix::errno::Errno::EINTR) if Instant::now() < deadline => {
                    // Held for microseconds by a running process: look again soon.
                    std::thread::sleep(Duration::from_micros(200));
                }
                _ => return NameLock { held: None },
            }
        }
    }

    /// Whether the lock is held (false: the wait ran out, or no lock file to lock).
    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }
}

/// The name of the lock file of user `uid`.
pub fn lock_file_name(uid: u32) -> String {
    format!(".shmring-names-{uid}.lock")
}

/// Opens (making it if need be) this user's lock file in `dir`: a regular file of ours,
/// or nothing.
fn lock_file(dir: &Path) -> Option<File> {
    let uid = nix::unistd::geteuid().as_raw();
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join(lock_file_name(uid)))
        .ok()?;
    let md = file.metadata().ok()?;
    (md.file_type().is_file() && md.uid() == uid).then_some(file)
}

/// Makes `dir` the ring directory if it is missing (0700, and the group's 0050 for rings
/// it may read), or gives an existing one the bits `perms` needs; either way checks that
/// it is private (`check_private_dir`).
pub(crate) fn ensure_private_dir(dir: &Path, perms: u32) -> Result<()> {
    let want = 0o700 | if perms & 0o040 != 0 { 0o050 } else { 0 };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(want)
                .recursive(false)
                .create(dir)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| Error::io(dir, "create ring directory", e))?;
            // The umask may have taken bits away.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(want))
                .map_err(|e| Error::io(dir, "chmod ring directory", e))?;
            check_private_dir(dir)
        }
        Err(e) => Err(Error::io(dir, "stat ring directory", e)),
        Ok(_) => {
            check_private_dir(dir)?;
            let mode = std::fs::symlink_metadata(dir)
                .map_err(|e| Error::io(dir, "stat", e))?
                .mode()
                & 0o777;
            if mode & want != want {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | want))
                    .map_err(|e| Error::io(dir, "chmod ring directory", e))?;
            }
            Ok(())
        }
    }
}

/// The ring directory must be a real directory of ours that nobody else can write to.
pub(crate) fn check_private_dir(dir: &Path) -> Result<()> {
    let md =
        std::fs::symlink_metadata(dir).map_err(|e| Error::io(dir, "stat ring directory", e))?;
    let insecure = |what: String| {
        Err(Error::Insecure {
            path: dir.to_owned(),
            what,
        })
    };
    if !md.file_type().is_dir() {
        return insecure(
            "the ring directory is not a directory (a symlink or a file is in its place)".into(),
        );
    }
    let me = nix::unistd::geteuid().as_raw();
    if md.uid() != me {
        return insecure(format!(
            "the ring directory belongs to uid {}, not to uid {me}",
            md.uid()
        ));
    }
    if md.mode() & 0o022 != 0 {
        return insecure(format!(
            "the ring directory has mode {:04o}: others can write to it",
            md.mode() & 0o7777
        ));
    }
    Ok(())
}

/// What kind of file `md` describes, in words for an error.
pub(crate) fn describe_type(md: &std::fs::Metadata) -> String {
    use std::os::unix::fs::FileTypeExt;
    let t = md.file_type();
    let what = if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "a regular file"
    };
    what.to_owned()
}

/// Opens the file under `path` read-write, as a writer or gc does before locking it: None
/// when there is none; an error when it is a link or not a regular file, or cannot be
/// opened (`Busy` with the pid of its live writer for a ring we may only read).
pub(crate) fn open_existing(path: &Path) -> Result<Option<File>> {
    let r = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    match r {
        Ok(f) => {
            let md = f.metadata().map_err(|e| Error::io(path, "stat", e))?;
            if !md.file_type().is_file() {
                return Err(Error::NotARingFile {
                    path: path.to_owned(),
                    found: describe_type(&md),
                });
            }
            Ok(Some(f))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(Error::NotARingFile {
            path: path.to_owned(),
            found: "a symbolic link".into(),
        }),
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Err(Error::NotARingFile {
            path: path.to_owned(),
            found: "a directory".into(),
        }),
        // Another user's ring, shared with our group read-only: say whose, if live.
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => Err(match live_writer_pid(path) {
            Some(pid) => Error::Busy {
                path: path.to_owned(),
                pid,
            },
            None => Error::io(path, "open", e),
        }),
        Err(e) => Err(Error::io(path, "open", e)),
    }
}

/// The pid of the live writer (the holder of the writer lock) of the ring at `path`,
/// looked at read-only, as any process with read access may: a ring of another user
/// shared with our group is found too. Some(0) when its pid cannot be read; None when
/// no writer holds it or it is no regular file.
fn live_writer_pid(path: &Path) -> Option<u32> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.file_type().is_file()))?;
    // A pid that is gone from here (another pid namespace, a forked child holding
    // the lock) is not named.
    (sys::is_write_locked(&file) == Ok(true))
        .then(|| pid_in(&file).filter(|&pid| !process_gone(pid)).unwrap_or(0))
}

/// The writer pid recorded in a ring file, if it is one.
pub(crate) fn pid_in(file: &File) -> Option<u32> {
    let len = sys::file_size(file).ok()?;
    if len < SUPERBLOCK_SIZE {
        return None;
    }
    let map = Mapping::read_only(file, Path::new("")).ok()?;
    let sb = map.superblock();
    // Relaxed: a one-off look at a ring that may be dead.
    (sb.magic.load(Ordering::Relaxed) == MAGIC).then(|| sb.writer_pid.load(Ordering::Relaxed))
}

/// Whether no process `pid` exists in our pid namespace (EPERM: alive, another user's).
pub(crate) fn process_gone(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return true;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH)
}

/// Whether `path` names `file` itself (not a link to it).
pub(crate) fn same_file(file: &File, path: &Path) -> bool {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return false;
    };
    matches!(sys::file_id(file.as_fd()), Ok((dev, ino)) if dev == md.dev() && ino == md.ino())
}

/// Creates the file of a new ring, with permissions `perms`, under a temporary dot-name in
/// the ring's directory (`.<name>.ring.<pid>.<n>.new`, as `abandoned_temp_files` knows
/// it), and returns it with that name, to be renamed into place once built.
pub(crate) fn create_temp(loc: &RingLocation, perms: u32) -> Result<(File, PathBuf)> {
    let dir = loc.dir();
    let tmp_name = |n: u32| {
        let name = loc
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("ring");
        dir.join(format!(".{name}.{}.{n}.new", std::process::id()))
    };
    let mut attempt = 0;
    loop {
        let tmp = tmp_name(attempt);
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(perms)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 64 => attempt += 1,
            Err(e) => return Err(Error::io(&tmp, "create", e)),
        }
    }
}

/// Puts the new ring file `new` (named `tmp`) under `path` in the place of `ours`, only
/// while `path` still names `ours`: if our ring was removed and another writer has made
/// a ring under the name since, that ring is never touched and the error says so; if
/// nothing is under the name any more, the new ring takes it. `tmp` is gone afterwards,
/// unless removing it could remove another writer's ring.
///
/// The name is checked first, then swapped atomically (`renameat2(RENAME_EXCHANGE)`),
/// and what came out is checked again: another ring put there within those microseconds
/// is swapped back. Where the kernel or the file system cannot exchange (Linux before
/// 3.15, a seccomp filter, a file system without it), the check is followed by a plain
/// `rename`. The caller holds the directory's name lock (`names`), which closes that
/// window for every process that changes names through this crate.
pub(crate) fn put_in_place_of(ours: &File, new: &File, tmp: &Path, path: &Path) -> Result<()> {
    let taken = || Error::Busy {
        path: path.to_owned(),
        pid: live_writer_pid(path).unwrap_or(0),
    };
    let io = |e: nix::Error| Error::io(path, "rename into place", e);
    // Only our new ring's name is ours to remove.
    let remove_tmp = || {
        if same_file(new, tmp) {
            let _ = std::fs::remove_file(tmp);
        }
    };
    let name_exists = std::fs::symlink_metadata(path).is_ok();
    if !name_exists {
        // Removed (by hand, or a cleanup): take the name, unless a ring appears there.
        let r = sys::rename_noreplace(tmp, path);
        remove_tmp();
        return match r {
            Err(nix::Error::EEXIST) => Err(taken()),
            r => r.map_err(io),
        };
    }
    if !same_file(ours, path) {
        remove_tmp();
        return Err(taken());
    }
    match sys::exchange_names(tmp, path) {
        Ok(()) => {
            if same_file(ours, tmp) {
                let _ = std::fs::remove_file(tmp); // our old ring, now nameless
                return Ok(());
            }
            // Another ring came between the check and the swap: give the name back.
            // Should that fail, `tmp` names the other ring and stays.
            sys::exchange_names(tmp, path).map_err(io)?;
            remove_tmp();
            Err(taken())
        }
        // The name went between the check and the swap.
        Err(nix::Error::ENOENT) => {
            let r = sys::rename_noreplace(tmp, path);
            remove_tmp();
            match r {
                Err(nix::Error::EEXIST) => Err(taken()),
                r => r.map_err(io),
            }
        }
        Err(nix::Error::EINVAL | nix::Error::ENOSYS | nix::Error::EPERM) => {
            std::fs::rename(tmp, path).map_err(|e| {
                remove_tmp();
                Error::io(path, "rename into place", e)
            })
        }
        Err(e) => {
            remove_tmp();
            Err(io(e))
        }
    }
}

/// Removes the ring at `loc` if its writer is dead (or closed it), holding the ring's
/// lock while doing so, so that a new writer taking the name over at the same moment is
/// never the one removed. Returns the dead writer's pid when it removed the ring.
pub fn remove_if_dead(loc: &RingLocation) -> Result<Option<u32>> {
    let path = loc.path();
    let Some(file) = open_existing(path)? else {
        return Ok(None);
    };
    if !sys::try_lock_exclusive(&file).map_err(|e| Error::io(path, "lock", e))? {
        return Ok(None); // a live writer
    }
    let Some(pid) = pid_in(&file) else {
        return Err(Error::NotARingFile {
            path: path.to_owned(),
            found: "a file that is not a shmring ring".into(),
        });
    };
    let _names = NameLock::take(loc.dir());
    if !same_file(&file, path) {
        return Ok(None); // replaced meanwhile: not ours to judge
    }
    std::fs::remove_file(path).map_err(|e| Error::io(path, "remove", e))?;
    Ok(Some(pid))
}

/// Temporary files of ring creation (`.<name>.ring.<pid>.<n>.new`) whose creator is no
/// longer running, in `dir`.
pub fn abandoned_temp_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix('.')?.strip_suffix(".new")?;
            let mut parts = rest.rsplitn(3, '.');
            let (_n, pid) = (parts.next()?, parts.next()?.parse::<u32>().ok()?);
            let gone = process_gone(pid);
            // A locked file is a live writer's ring, whatever its name says (a swap of
            // `replace` that was cut short leaves one under a dot-name). Asked with
            // F_OFD_GETLK, which takes no lock a writer could trip over. What cannot
            // be opened and asked (another user's, not a file) is left alone.
            let unlocked = || {
                matches!(open_existing(&e.path()),
                    Ok(Some(f)) if sys::is_write_locked(&f) == Ok(false))
            };
            (gone && unlocked()).then(|| e.path())
        })
        .collect()
}

/// Removes `path`, a temporary file that `abandoned_temp_files` found, if it is still
/// unlocked and still under that name: looked at and removed under the name lock, so
/// that a writer that has just made a file of that name (a reused pid) keeps it.
/// Ok(false) when it was left alone.
pub fn remove_abandoned_temp(path: &Path) -> Result<bool> {
    let Some(file) = open_existing(path)? else {
        return Ok(false);
    };
    if !sys::try_lock_exclusive(&file).map_err(|e| Error::io(path, "lock", e))? {
        return Ok(false); // a live writer's
    }
    let _names = NameLock::take(path.parent().unwrap_or(Path::new(".")));
    if !same_file(&file, path) {
        return Ok(false);
    }
    std::fs::remove_file(path).map_err(|e| Error::io(path, "remove", e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDir;

    #[test]
    fn a_second_taker_waits_for_the_first() {
        let dir = TestDir::new("namelock");
        let sut = NameLock::take(&dir.path);
        assert!(sut.is_held());
        let t0 = Instant::now();
        let second = NameLock::take_within(&dir.path, Duration::from_millis(50));
        assert!(!second.is_held(), "taken while held");
        assert!(t0.elapsed() >= Duration::from_millis(50));
        drop(sut);
        assert!(NameLock::take_within(&dir.path, Duration::from_millis(50)).is_held());
    }

    #[test]
    fn a_holder_that_never_lets_go_delays_others_by_the_bound_only() {
        let dir = TestDir::new("namelock-stuck");
        let stuck = NameLock::take(&dir.path);
        let t0 = Instant::now();
        let late = NameLock::take(&dir.path);
        let waited = t0.elapsed();
        assert!(!late.is_held());
        assert!(waited >= MAX_WAIT && waited < MAX_WAIT * 4, "{waited:?}");
        drop(stuck);
    }

    #[test]
    fn a_lock_file_that_is_not_ours_or_not_a_file_is_never_used() {
        let dir = TestDir::new("namelock-fifo");
        let path = dir
            .path
            .join(lock_file_name(nix::unistd::geteuid().as_raw()));
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let t0 = Instant::now();
        let sut = NameLock::take(&dir.path);
        assert!(!sut.is_held(), "a FIFO is not a lock file");
        assert!(t0.elapsed() < MAX_WAIT, "and it never hangs the open");
    }

    #[test]
    fn no_directory_means_no_lock_and_no_error() {
        let sut = NameLock::take(Path::new("/nonexistent/shmring-dir"));
        assert!(!sut.is_held());
    }
}
