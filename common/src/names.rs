//! The ring directory's name lock: every change of a ring's name (create, take-over,
//! replace, drop, gc) is made under a short `flock` on the directory itself, so that
//! looking at a name and acting on it are one step for every process that changes names.
//!
//! Without it each of those checks a name, then acts on it, and another process could
//! put a ring under the name in between (the plain-rename fallback of `replace`, the
//! take-over of a dead writer's ring, which builds its ring for milliseconds between the
//! check and the rename, and the removal by drop and gc).
//!
//! Rules, so that the lock can never block anyone for long:
//! - it is taken last: after the ring's own lock where one is held, never before, and
//!   nothing is waited for while it is held (ring locks are only ever tried);
//! - it is never held across building a ring, a copy or a wait: only around the check
//!   of a name and the rename or unlink that follows;
//! - waiting for it is bounded ([`MAX_WAIT`]): a holder that is stopped (SIGSTOP, a
//!   debugger) delays the others by that much, then they go ahead with their own checks,
//!   as they did before the lock existed. So does a process that cannot open the
//!   directory for reading.
//!
//! A directory fd's `flock` is per open file description: two threads of one process
//! exclude each other as two processes do, and the lock goes with the fd when a process
//! dies.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// How long a change of a name waits for another to finish before going ahead.
pub const MAX_WAIT: Duration = Duration::from_millis(500);

/// Held while a name is looked at and changed; released when dropped.
#[must_use = "the lock is released when this is dropped"]
pub struct NameLock {
    _held: Option<Flock<File>>,
}

impl NameLock {
    /// Takes the lock of the ring directory `dir`, waiting at most [`MAX_WAIT`]. When the
    /// wait runs out or the directory cannot be opened, the guard holds nothing and the
    /// change goes ahead on its own checks.
    pub fn take(dir: &Path) -> NameLock {
        Self::take_within(dir, MAX_WAIT)
    }

    pub(crate) fn take_within(dir: &Path, wait: Duration) -> NameLock {
        let Ok(mut file) = File::open(dir) else {
            return NameLock { _held: None };
        };
        let deadline = Instant::now() + wait;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(held) => return NameLock { _held: Some(held) },
                Err((f, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR))
                    if Instant::now() < deadline =>
                {
                    file = f;
                    // Held for microseconds by a running process: look again soon.
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(_) => return NameLock { _held: None },
            }
        }
    }

    /// Whether the lock is held (false: the wait ran out, or no directory to lock).
    pub fn is_held(&self) -> bool {
        self._held.is_some()
    }
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
    fn no_directory_means_no_lock_and_no_error() {
        let sut = NameLock::take(Path::new("/nonexistent/shmring-dir"));
        assert!(!sut.is_held());
    }
}
