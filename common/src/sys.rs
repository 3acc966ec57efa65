//! What talks to the kernel directly: futexes, clocks and open-file-description locks.
//!
//! The rest of the crate goes through these few functions.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use nix::errno::Errno;

/// CLOCK_MONOTONIC in ns: comparable across processes on one machine.
pub fn monotonic_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME in ns since the Unix epoch.
pub fn realtime_ns() -> u64 {
    clock_ns(nix::time::ClockId::CLOCK_REALTIME)
}

fn clock_ns(id: nix::time::ClockId) -> u64 {
    // Both clocks always exist on Linux; a failure would mean a broken kernel.
    let ts = nix::time::clock_gettime(id).unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    (ts.tv_sec() as u64).saturating_mul(1_000_000_000) + ts.tv_nsec() as u64
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// Wakes every waiter on `word`. `shared` is false for words that live in this
/// process's private memory and true for words in a shared mapping.
pub fn futex_wake(word: &AtomicU32, shared: bool) {
    let op = if shared {
        libc::FUTEX_WAKE
    } else {
        libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG
    };
    // SAFETY: FUTEX_WAKE only uses the address as a key; `word` is a live, aligned u32.
    // Read-only mappings are fine: the kernel does not write the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            i32::MAX,
            0usize,
            0usize,
            0u32,
        );
    }
}

/// Why a futex wait returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// Woken, or a word no longer held its expected value, or a signal: re-check.
    Maybe,
    /// The whole timeout passed with both words unchanged (as far as the wait saw).
    TimedOut,
}

/// How this process waits on two words at once, decided by the first wait that needs
/// it and kept for the life of the process (`wait_path`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitPath {
    /// futex_waitv (Linux 5.16+): one sleep on both words, woken by either at once.
    Waitv,
    /// No futex_waitv (an older kernel, qemu-user, a seccomp filter that refuses it):
    /// FUTEX_WAIT on the shared word in slices of `FALLBACK_SLICE`, the private word
    /// checked between slices.
    Slices,
}

const PATH_UNKNOWN: u8 = 0;
const PATH_WAITV: u8 = 1;
const PATH_SLICES: u8 = 2;
/// The path decided for this process. Relaxed: a hint that only ever goes from unknown
/// to one value; two threads that decide at once decide the same.
static WAIT_PATH: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(PATH_UNKNOWN);

/// The wait path this process uses, once a wait has decided it (None before).
pub fn wait_path() -> Option<WaitPath> {
    match WAIT_PATH.load(std::sync::atomic::Ordering::Relaxed) {
        PATH_WAITV => Some(WaitPath::Waitv),
        PATH_SLICES => Some(WaitPath::Slices),
        _ => None,
    }
}

/// Sleeps until `shared_word` (in a shared mapping) no longer holds `shared_expected`,
/// or `private_word` (in this process) no longer holds `private_expected`, or a wake on
/// either, or `timeout`. Returns `TimedOut` only when the whole timeout passed.
///
/// Uses futex_waitv (Linux 5.16+) so that an interrupt through the private word can
/// never be lost. Where futex_waitv is missing or refused (ENOSYS: an older kernel or
/// qemu-user; EPERM or EACCES: a seccomp filter), this process falls
/// back for good to FUTEX_WAIT on the shared word in slices of `FALLBACK_SLICE`,
/// checking the private word between them: a frame still wakes the waiter at once, an
/// interrupt is seen within one slice.
pub fn futex_wait2(
    shared_word: &AtomicU32,
    shared_expected: u32,
    private_word: &AtomicU32,
    private_expected: u32,
    timeout: Duration,
) -> Woken {
    use std::sync::atomic::Ordering::Relaxed;
    if WAIT_PATH.load(Relaxed) != PATH_SLICES {
        match futex_waitv2(
            shared_word,
            shared_expected,
            private_word,
            private_expected,
            timeout,
        ) {
            Ok(woken) => {
                // Only from unknown: a thread that found it refused (seccomp filters
                // are per thread) has the last word.
                let _ = WAIT_PATH.compare_exchange(PATH_UNKNOWN, PATH_WAITV, Relaxed, Relaxed);
                return woken;
            }
            Err(Errno::ENOSYS | Errno::EPERM | Errno::EACCES) => {
                WAIT_PATH.store(PATH_SLICES, Relaxed);
            }
            Err(_) => {
                // Not a refusal of the call (EFAULT from a word being unmapped, say):
                // keep the path, never spin.
                std::thread::sleep(timeout.min(FALLBACK_SLICE));
                return Woken::Maybe;
            }
        }
    }
    futex_wait2_in_slices(
        shared_word,
        shared_expected,
        private_word,
        private_expected,
        timeout,
    )
}

/// One futex_waitv on both words; Err(errno) when the kernel has or allows none.
fn futex_waitv2(
    shared_word: &AtomicU32,
    shared_expected: u32,
    private_word: &AtomicU32,
    private_expected: u32,
    timeout: Duration,
) -> Result<Woken, Errno> {
    #[repr(C)]
    struct FutexWaitv {
        val: u64,
        uaddr: u64,
        flags: u32,
        reserved: u32,
    }
    const FUTEX2_SIZE_U32: u32 = 0x02;
    const FUTEX2_PRIVATE: u32 = 128;
    const SYS_FUTEX_WAITV: libc::c_long = 449;

    let waiters = [
        FutexWaitv {
            val: u64::from(shared_expected),
            uaddr: shared_word.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        },
        FutexWaitv {
            val: u64::from(private_expected),
            uaddr: private_word.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32 | FUTEX2_PRIVATE,
            reserved: 0,
        },
    ];
    // futex_waitv takes an absolute CLOCK_MONOTONIC deadline.
    let deadline = Duration::from_nanos(monotonic_ns()) + timeout;
    let ts = timespec(deadline);
    // SAFETY: `waiters` and `ts` outlive the call; both words are live aligned u32s.
    let r = unsafe {
        libc::syscall(
            SYS_FUTEX_WAITV,
            waiters.as_ptr(),
            waiters.len() as libc::c_uint,
            0 as libc::c_uint,
            &ts as *const libc::timespec,
            libc::CLOCK_MONOTONIC,
        )
    };
    if r >= 0 {
        return Ok(Woken::Maybe);
    }
    match Errno::last() {
        Errno::ETIMEDOUT => Ok(Woken::TimedOut),
        // A word had moved already, or a signal: the caller re-checks.
        Errno::EAGAIN | Errno::EINTR => Ok(Woken::Maybe),
        // ENOSYS (no such call), EPERM or EACCES (seccomp): not a path this process can
        // use; anything else: the caller decides.
        other => Err(other),
    }
}

/// `futex_wait2` without futex_waitv: FUTEX_WAIT on the shared word for at most
/// `FALLBACK_SLICE` at a time, the private word checked before each slice, until a
/// word moves or `timeout` passes. A wake on the shared word ends the wait at once;
/// an interrupt through the private word is seen within one slice.
fn futex_wait2_in_slices(
    shared_word: &AtomicU32,
    shared_expected: u32,
    private_word: &AtomicU32,
    private_expected: u32,
    timeout: Duration,
) -> Woken {
    use std::sync::atomic::Ordering;

    let start = std::time::Instant::now();
    loop {
        // Acquire: pairs with the interrupter's Release store of the private word.
        if private_word.load(Ordering::Acquire) != private_expected {
            return Woken::Maybe;
        }
        let Some(left) = timeout
            .checked_sub(start.elapsed())
            .filter(|l| !l.is_zero())
        else {
            return Woken::TimedOut;
        };
        match futex_wait(shared_word, shared_expected, left.min(FALLBACK_SLICE)) {
            Woken::TimedOut => continue,
            Woken::Maybe => return Woken::Maybe,
        }
    }
}

/// The longest a waiter without futex_waitv sleeps before it looks at its private
/// (interrupt) word: the bound on how late `Interrupter::interrupt` reaches it there.
pub const FALLBACK_SLICE: Duration = Duration::from_millis(50);

/// Plain FUTEX_WAIT on a word in a shared mapping. A wait the kernel refuses (no
/// futex at all for this address, say) sleeps the timeout instead, so that a caller that
/// loops on it never spins.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Woken {
    futex_wait_at(word.as_ptr(), expected, timeout)
}

/// `futex_wait` on a raw address, which the kernel checks (EFAULT when unmapped).
fn futex_wait_at(word: *const u32, expected: u32, timeout: Duration) -> Woken {
    let ts = timespec(timeout);
    // SAFETY: FUTEX_WAIT only reads the word, through the kernel, which fails with
    // EFAULT instead of faulting on a bad address; `ts` outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word,
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            0usize,
            0u32,
        )
    };
    if r >= 0 {
        return Woken::Maybe;
    }
    match Errno::last() {
        Errno::ETIMEDOUT => Woken::TimedOut,
        Errno::EAGAIN | Errno::EINTR => Woken::Maybe,
        _ => {
            std::thread::sleep(timeout);
            Woken::Maybe
        }
    }
}

fn byte_lock(kind: libc::c_short, byte: u64) -> libc::flock {
    libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: byte as libc::off_t,
        l_len: 1,
        l_pid: 0,
    }
}

/// The byte whose lock is the writer's: the first of the file. Readers lock bytes of
/// their reader-table entries, which never overlap it.
pub const WRITER_LOCK_BYTE: u64 = 0;

/// Takes an exclusive open-file-description lock on one byte of the file without
/// waiting. Ok(false) when another open file description holds a conflicting lock. The
/// lock lives as long as the file description (every fd dup'ed from it) and dies with
/// the process, so a SIGKILLed writer or reader frees what it held.
pub fn try_lock_byte(fd: impl AsFd, byte: u64) -> nix::Result<bool> {
    let lock = byte_lock(libc::F_WRLCK as libc::c_short, byte);
    match nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&lock)) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN) | Err(Errno::EACCES) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases a byte lock taken with `try_lock_byte`.
pub fn unlock_byte(fd: impl AsFd, byte: u64) {
    let lock = byte_lock(libc::F_UNLCK as libc::c_short, byte);
    let _ = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&lock));
}

/// The writer's lock on its ring.
pub fn try_lock_exclusive(fd: impl AsFd) -> nix::Result<bool> {
    try_lock_byte(fd, WRITER_LOCK_BYTE)
}

/// True when some open file description holds a write lock on `byte`. Takes no lock
/// itself, so it can never make anybody's lock fail.
pub fn is_byte_locked(fd: impl AsFd, byte: u64) -> nix::Result<bool> {
    let mut lock = byte_lock(libc::F_RDLCK as libc::c_short, byte);
    nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_OFD_GETLK(&mut lock))?;
    Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
}

/// True when the ring's writer is alive (holds its lock).
pub fn is_write_locked(fd: impl AsFd) -> nix::Result<bool> {
    is_byte_locked(fd, WRITER_LOCK_BYTE)
}

/// The byte every reader holds a shared lock on while it has the ring open, so that
/// tools can count the readers, those that cannot write the reader table included.
/// Nobody write-locks it; it overlaps neither the writer's byte nor the entries' bytes.
pub const READER_PRESENCE_BYTE: u64 = 1;

/// Takes a shared (read) open-file-description lock on one byte without waiting. Shared
/// locks never conflict with each other, and a read-only file may take them. The lock
/// lives as long as the file description and dies with the process.
pub fn hold_shared_byte(fd: impl AsFd, byte: u64) -> nix::Result<()> {
    let lock = byte_lock(libc::F_RDLCK as libc::c_short, byte);
    nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&lock)).map(drop)
}

/// How many open file descriptions hold a shared lock on exactly `byte` of the file
/// `id` (device, inode, as `file_id` gives them), system-wide. OFD locks carry no pid
/// (F_OFD_GETLK answers -1), and F_OFD_GETLK names one holder at most, so the count
/// comes from the kernel's table of locks. None where /proc/locks cannot be read.
pub fn shared_locks_on(id: (u64, u64), byte: u64) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    Some(count_shared_locks(&table, id, byte))
}

/// Counts the lines of a /proc/locks text that are shared OFD locks on exactly `byte`
/// of the file `id`. A line reads `1: OFDLCK ADVISORY  READ -1 00:1b:3777464 1 1`: id,
/// kind, mode, type, pid, major:minor:inode (major and minor in hex), first and last
/// byte. Lines of waiters (`1: -> OFDLCK ...`) are not locks held.
fn count_shared_locks(table: &str, (dev, ino): (u64, u64), byte: u64) -> usize {
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let ours = |line: &&str| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [_, "OFDLCK", _, "READ", _, file, first, last] = f[..] else {
            return false;
        };
        let mut parts = file.split(':');
        let mut next = |radix| {
            parts
                .next()
                .and_then(|p| u64::from_str_radix(p, radix).ok())
        };
        (next(16), next(16), next(10)) == (Some(major), Some(minor), Some(ino))
            && first.parse() == Ok(byte)
            && last.parse() == Ok(byte)
    };
    table.lines().filter(ours).count()
}

/// Swaps the names `a` and `b` in one step (`renameat2(RENAME_EXCHANGE)`; both must
/// exist). EINVAL where the file system cannot, ENOSYS before Linux 3.15.
pub fn exchange_names(a: &Path, b: &Path) -> nix::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE)
}

/// Renames `from` to `to` unless `to` exists (EEXIST then). Where renameat2 or its
/// flag is refused (glibc answers EINVAL for a kernel's ENOSYS; a seccomp profile may
/// answer EPERM; some file systems EINVAL), links `to` and then unlinks `from` (best
/// effort), which fails on an existing name just the same. A file system with neither
/// fails (EPERM).
pub fn rename_noreplace(from: &Path, to: &Path) -> nix::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Err(nix::Error::EINVAL | nix::Error::ENOSYS | nix::Error::EPERM) => {
            let errno =
                |e: std::io::Error| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
            std::fs::hard_link(from, to).map_err(errno)?;
            // The file is in place: a second name left over is the caller's to remove.
            let _ = std::fs::remove_file(from);
            Ok(())
        }
        r => r,
    }
}

/// The (device, inode) of an open file: the identity of one ring file.
pub fn file_id(fd: impl AsFd) -> nix::Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd.as_fd())?;
    Ok((st.st_dev, st.st_ino))
}

/// Size of an open file in bytes.
pub fn file_size(fd: impl AsFd) -> nix::Result<u64> {
    Ok(nix::sys::stat::fstat(fd.as_fd())?.st_size as u64)
}

/// ramfs's `f_type` (linux/magic.h), which the libc crate does not name.
const RAMFS_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0x8584_58f6_u32 as _);

/// Whether an open file lives in memory (tmpfs, hugetlbfs, ramfs), so that faulting its
/// pages in reads no disk. False when the kernel does not say.
pub fn is_in_memory(fd: impl AsFd) -> bool {
    use nix::sys::statfs::{fstatfs, HUGETLBFS_MAGIC, TMPFS_MAGIC};
    fstatfs(fd.as_fd()).is_ok_and(|s| {
        let t = s.filesystem_type();
        t == TMPFS_MAGIC || t == HUGETLBFS_MAGIC || t == RAMFS_MAGIC
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn shared_locks_are_counted_from_the_kernels_table() {
        let dev = nix::sys::stat::makedev(0, 0x1b);
        let table = "\
1: OFDLCK ADVISORY  READ -1 00:1b:3777464 1 1
2: OFDLCK ADVISORY  READ -1 00:1b:3777464 1 1
2: -> OFDLCK ADVISORY  READ -1 00:1b:3777464 1 1
3: OFDLCK ADVISORY  WRITE -1 00:1b:3777464 0 0
4: OFDLCK ADVISORY  READ -1 00:1b:3777464 0 1
5: OFDLCK ADVISORY  READ -1 00:1b:3777465 1 1
6: OFDLCK ADVISORY  READ -1 00:1c:3777464 1 1
7: POSIX  ADVISORY  READ 4242 00:1b:3777464 1 1
8: OFDLCK ADVISORY  READ -1 00:1b:3777464 1 EOF
9: FLOCK  ADVISORY  WRITE 17 fd:01:99 0 EOF
garbage
";
        assert_eq!(count_shared_locks(table, (dev, 3777464), 1), 2);
        assert_eq!(count_shared_locks(table, (dev, 3777464), 0), 0);
        assert_eq!(count_shared_locks(table, (dev, 3777465), 1), 1);
        assert_eq!(count_shared_locks("", (dev, 3777464), 1), 0);
    }

    #[test]
    fn a_held_shared_lock_shows_in_the_count_until_its_file_closes() {
        let path = std::env::temp_dir().join(format!("shmring-presence-{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        let open = || std::fs::File::open(&path).unwrap(); // read-only, as readers are
        let id = file_id(open()).unwrap();
        let Some(before) = shared_locks_on(id, READER_PRESENCE_BYTE) else {
            eprintln!("no /proc/locks here: skipped");
            return;
        };
        assert_eq!(before, 0);
        let (a, b) = (open(), open());
        hold_shared_byte(&a, READER_PRESENCE_BYTE).unwrap();
        hold_shared_byte(&b, READER_PRESENCE_BYTE).unwrap();
        assert_eq!(shared_locks_on(id, READER_PRESENCE_BYTE), Some(2));
        assert!(
            !is_byte_locked(&a, READER_PRESENCE_BYTE).unwrap(),
            "not a write lock"
        );
        drop(a);
        assert_eq!(shared_locks_on(id, READER_PRESENCE_BYTE), Some(1));
        drop(b);
        assert_eq!(shared_locks_on(id, READER_PRESENCE_BYTE), Some(0));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn wait_times_out_when_nothing_changes() {
        let a = AtomicU32::new(1);
        let b = AtomicU32::new(0);
        let t = Instant::now();
        assert_eq!(
            futex_wait2(&a, 1, &b, 0, Duration::from_millis(30)),
            Woken::TimedOut
        );
        assert!(t.elapsed() >= Duration::from_millis(25));
    }

    #[test]
    fn wait_returns_at_once_when_a_word_already_moved() {
        let a = AtomicU32::new(2);
        let b = AtomicU32::new(0);
        assert_eq!(
            futex_wait2(&a, 1, &b, 0, Duration::from_secs(5)),
            Woken::Maybe
        );
        let a = AtomicU32::new(1);
        let b = AtomicU32::new(1);
        assert_eq!(
            futex_wait2(&a, 1, &b, 0, Duration::from_secs(5)),
            Woken::Maybe
        );
    }

    /// What the reader does with futex_wait2: wait until either word moves, looping
    /// over early returns. Returns how long that took.
    fn wait_until_moved(
        wait: fn(&AtomicU32, u32, &AtomicU32, u32, Duration) -> Woken,
        words: &(AtomicU32, AtomicU32),
    ) -> Duration {
        let start = Instant::now();
        while words.0.load(Ordering::Acquire) == 0 && words.1.load(Ordering::Acquire) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "never woke");
            wait(&words.0, 0, &words.1, 0, Duration::from_secs(10));
        }
        start.elapsed()
    }

    #[test]
    fn without_futex_waitv_a_wait_times_out_only_at_its_timeout() {
        let (a, b) = (AtomicU32::new(1), AtomicU32::new(0));
        let t = Instant::now();
        let timeout = FALLBACK_SLICE * 3 + Duration::from_millis(5);
        assert_eq!(
            futex_wait2_in_slices(&a, 1, &b, 0, timeout),
            Woken::TimedOut
        );
        assert!(t.elapsed() >= timeout, "took {:?}", t.elapsed());
        let moved = AtomicU32::new(2);
        assert_eq!(
            futex_wait2_in_slices(&moved, 1, &b, 0, Duration::from_secs(5)),
            Woken::Maybe
        );
        // An interrupt already there returns at once, not after a slice.
        let interrupted = AtomicU32::new(1);
        let t = Instant::now();
        assert_eq!(
            futex_wait2_in_slices(&a, 1, &interrupted, 0, Duration::from_secs(5)),
            Woken::Maybe
        );
        assert!(t.elapsed() < FALLBACK_SLICE / 2, "took {:?}", t.elapsed());
    }

    #[test]
    fn without_futex_waitv_a_wake_is_immediate_and_an_interrupt_takes_a_slice_at_most() {
        for which in [0, 1] {
            let words = Arc::new((AtomicU32::new(0), AtomicU32::new(0)));
            let w2 = words.clone();
            let t = std::thread::spawn(move || wait_until_moved(futex_wait2_in_slices, &w2));
            std::thread::sleep(Duration::from_millis(50));
            let word = if which == 0 { &words.0 } else { &words.1 };
            word.store(1, Ordering::Release);
            futex_wake(word, which == 0);
            // The waiter times itself from its own start, which a loaded machine may
            // delay past our sleep: saturate rather than underflow.
            let waited = t.join().unwrap().saturating_sub(Duration::from_millis(50));
            // Generous bounds: a loaded machine or qemu-user delays any thread.
            let bound = if which == 0 {
                FALLBACK_SLICE
            } else {
                FALLBACK_SLICE * 3
            };
            assert!(waited < bound, "word {which}: waited {waited:?}");
        }
    }

    #[test]
    fn a_refused_futex_wait_sleeps_instead_of_spinning() {
        // The one FUTEX_WAIT error a test can cause everywhere: EFAULT, from an address
        // that is not mapped (the first page never is).
        let t = Instant::now();
        assert_eq!(
            futex_wait_at(8usize as *const u32, 0, Duration::from_millis(30)),
            Woken::Maybe
        );
        assert!(t.elapsed() >= Duration::from_millis(25));
    }

    #[test]
    fn the_wait_path_is_decided_once_and_kept() {
        let (a, b) = (AtomicU32::new(1), AtomicU32::new(0));
        futex_wait2(&a, 1, &b, 0, Duration::from_millis(1));
        let path = wait_path().expect("decided by the first wait");
        futex_wait2(&a, 1, &b, 0, Duration::from_millis(1));
        assert_eq!(wait_path(), Some(path));
        eprintln!("wait path here: {path:?}");
    }

    #[test]
    fn private_word_wakes_a_waiter() {
        let words = Arc::new((AtomicU32::new(0), AtomicU32::new(0)));
        let w2 = words.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            let r = futex_wait2(&w2.0, 0, &w2.1, 0, Duration::from_secs(10));
            (r, start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        words.1.store(1, Ordering::Release);
        futex_wake(&words.1, false);
        let (r, waited) = t.join().unwrap();
        assert_eq!(r, Woken::Maybe);
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    }
}
