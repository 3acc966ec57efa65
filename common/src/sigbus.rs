//! Survives a ring file being truncated under its mappings.
//!
//! A process of the ring's user can shrink the file while others map it. Touching a page
//! past the new end then raises SIGBUS, which would kill the process: a reader in the
//! middle of a copy, a downstream element reading a leased buffer, or the writer. Every
//! ring mapping is registered here, and a SIGBUS handler (installed once, chaining to
//! whatever handler was there before) replaces a registered mapping that faults with
//! anonymous zero pages of the same size and marks it. The faulting access then reads
//! zeros instead of crashing, and the ring code, which checks the mark, reports the
//! truncation as an error. This is what Wayland compositors do for client shm pools.
//!
//! A SIGBUS outside every registered mapping, or sent by `kill`, goes to the previous
//! handler, or, if there was none, kills the process as it would have without us.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// How many mappings can be guarded at once in a process. A ring reader or writer holds
/// one or two; a mapping beyond the last entry works, unguarded.
const ENTRIES: usize = 256;

struct Entry {
    /// First byte of the mapping, 0 for a free entry. Release-stored last when
    /// registering and first when unregistering; pairs with the Acquire load in
    /// `on_sigbus` and in `register`'s claim.
    start: AtomicUsize,
    /// Length in bytes. Relaxed: published by the Release store of `start`.
    len: AtomicUsize,
    /// Whether the mapping is writable, so that its replacement is too.
    writable: AtomicBool,
    /// Set by the handler once it replaced the mapping. Release; pairs with the Acquire
    /// load in `Guard::truncated`.
    hit: AtomicBool,
    /// Claimed by a `Guard` with a CAS (AcqRel), so a free entry is not taken twice;
    /// given back by its Release store in `Drop`, which the CAS's Acquire pairs with.
    taken: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // the initialiser of each array element
const FREE: Entry = Entry {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    writable: AtomicBool::new(false),
    hit: AtomicBool::new(false),
    taken: AtomicBool::new(false),
};

static TABLE: [Entry; ENTRIES] = [FREE; ENTRIES];

/// The SIGBUS disposition found when ours was installed. Set before ours is installed,
/// read by the handler (a plain load once set).
static PREVIOUS: OnceLock<SigHandler> = OnceLock::new();

/// A registered mapping. Drop it before unmapping.
pub(crate) struct Guard {
    entry: Option<&'static Entry>,
}

impl Guard {
    /// Registers the `len` bytes mapped at `start`. Never fails: if the handler cannot
    /// be installed or every entry is taken, the mapping is simply not guarded.
    pub(crate) fn register(start: *const u8, len: usize, writable: bool) -> Guard {
        if !install() || len == 0 {
            return Guard { entry: None };
        }
        let entry = TABLE.iter().find(|e| {
            e.taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(e) = entry {
            // Relaxed: published to the handler by the Release store of `start` below,
            // and to `truncated` by the claim itself (same thread).
            e.hit.store(false, Ordering::Relaxed);
            e.len.store(len, Ordering::Relaxed);
            e.writable.store(writable, Ordering::Relaxed);
            // Release: publishes len and writable to the handler (its Acquire load).
            e.start.store(start as usize, Ordering::Release);
        }
        Guard { entry }
    }

    /// Whether the mapping is registered: a fault in it reads zeros instead of killing.
    pub(crate) fn active(&self) -> bool {
        self.entry.is_some()
    }

    /// Whether the file was truncated under the mapping and it now reads as zeros.
    pub(crate) fn truncated(&self) -> bool {
        // Acquire: pairs with the handler's Release store after the remap.
        self.entry.is_some_and(|e| e.hit.load(Ordering::Acquire))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(e) = self.entry {
            // Release: the handler stops matching this range before it is unmapped.
            e.start.store(0, Ordering::Release);
            e.taken.store(false, Ordering::Release);
        }
    }
}

/// Installs the handler once. False if that failed (the mapping goes unguarded).
/// The environment variable that turns the guard off for a process (`0`, `off`, `no`
/// or `false`), for an application with a SIGBUS handler of its own that does not chain.
pub const GUARD_ENV: &str = "SHMRING_SIGBUS_GUARD";

/// Set by `disable`: no handler is installed from then on.
static DISABLED: AtomicBool = AtomicBool::new(false);
/// Whether the once-only notice of `install_notice` was taken. Relaxed: a flag.
static NOTICE_TAKEN: AtomicBool = AtomicBool::new(false);

/// Keeps this process from installing the SIGBUS handler, if it has not yet (before
/// the first ring is mapped); returns whether the handler is installed anyway. Rings
/// mapped without it still work; a truncation then kills the process.
pub fn disable() -> bool {
    // Relaxed: read by `install` on the same or a later call of this process's threads;
    // a ring mapped at the same moment on another thread may still install it.
    DISABLED.store(true, Ordering::Relaxed);
    is_installed()
}

/// Whether the handler is installed in this process.
pub fn is_installed() -> bool {
    INSTALLED.get().copied().unwrap_or(false)
}

/// Once per process, after the first ring was mapped: what became of the guard, for
/// the caller to log (the elements log it at INFO). None after the first call.
pub fn install_notice() -> Option<String> {
    if INSTALLED.get().is_none() || NOTICE_TAKEN.swap(true, Ordering::Relaxed) {
        return None;
    }
    Some(if is_installed() {
        format!(
            "installed a SIGBUS handler so that a ring truncated by another process is an \
             error, not a crash; it chains to the previous one ({GUARD_ENV}=0 turns it off)"
        )
    } else {
        format!("no SIGBUS handler: a ring truncated by another process kills this one ({GUARD_ENV} or disable_sigbus_guard() turned it off, or it could not be installed)")
    })
}

static INSTALLED: OnceLock<bool> = OnceLock::new();

/// How often `still_ours` asks the kernel.
const RECHECK: Duration = Duration::from_secs(1);

/// Whether ours is still this process's SIGBUS handler. A handler installed after ours
/// that does not chain to it turns the guard off: a truncated mapping then kills (or,
/// under a handler that returns, faults for ever), so readers must go back to checking
/// the file size before they touch it. One that chains cannot be told apart: it costs
/// that process the fstat, nothing else. Asked of the kernel at most once per `RECHECK`,
/// the last answer in between; false until first asked.
pub(crate) fn still_ours() -> bool {
    static START: OnceLock<Instant> = OnceLock::new();
    // Relaxed, both: a deadline and an answer, each complete in itself. A thread that
    // sees the new deadline before the answer uses the older answer (or false, the
    // safe one) for one more RECHECK at most.
    static DUE_NS: AtomicU64 = AtomicU64::new(0);
    static OURS: AtomicBool = AtomicBool::new(false);
    if !is_installed() {
        return false;
    }
    let now = START.get_or_init(Instant::now).elapsed().as_nanos() as u64;
    if now >= DUE_NS.load(Ordering::Relaxed) {
        DUE_NS.store(now + RECHECK.as_nanos() as u64, Ordering::Relaxed);
        let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: a null new action makes sigaction only write the current one into
        // `current`, which is valid for writes and zeroed, so initialised either way.
        let ours = unsafe {
            libc::sigaction(libc::SIGBUS, std::ptr::null(), current.as_mut_ptr()) == 0
                && current.assume_init().sa_sigaction
                    == on_sigbus as *const () as libc::sighandler_t
        };
        OURS.store(ours, Ordering::Relaxed);
    }
    OURS.load(Ordering::Relaxed)
}

fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        let off = std::env::var(GUARD_ENV).is_ok_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "off" | "no" | "false"
            )
        });
        // Relaxed: see `disable`.
        if off || DISABLED.load(Ordering::Relaxed) {
            return false;
        }
        let ours = SigAction::new(
            SigHandler::SigAction(on_sigbus),
            // SA_ONSTACK: use the thread's alternate stack where it has one.
            SaFlags::SA_SIGINFO | SaFlags::SA_ONSTACK,
            SigSet::empty(),
        );
        // SAFETY: on_sigbus only loads atomics, calls mmap, signal, raise and the
        // previous handler, all async-signal-safe, and reads PREVIOUS only once set.
        let previous = unsafe { sigaction(Signal::SIGBUS, &ours) };
        match previous {
            Ok(p) => {
                let _ = PREVIOUS.set(p.handler());
                // If SIGBUS arrived between the two steps, PREVIOUS was unset and the
                // handler fell back to the default action, as without us.
                true
            }
            Err(_) => false,
        }
    })
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo. si_code > 0 means the
    // kernel raised it for a memory access, and then si_addr is the faulting address;
    // a SIGBUS sent by kill() or sigqueue() (si_code <= 0) carries none.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    for e in TABLE.iter().filter(|_| code > 0) {
        // Acquire: pairs with the Release store in `register`.
        let start = e.start.load(Ordering::Acquire);
        // Relaxed: ordered after the Acquire load of `start` (see `register`).
        let len = e.len.load(Ordering::Relaxed);
        if start == 0 || addr < start || addr - start >= len {
            continue;
        }
        // Relaxed: as `len`.
        let prot = if e.writable.load(Ordering::Relaxed) {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: [start, start + len) is a live ring mapping of this process (its
        // Guard is dropped before it is unmapped), and the access that faulted was into
        // it. MAP_FIXED swaps its pages for private zero pages in one step, so every
        // pointer into it stays valid.
        let p = unsafe {
            libc::mmap(
                start as *mut c_void,
                len,
                prot,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            // Release: pairs with the Acquire load in `Guard::truncated`.
            e.hit.store(true, Ordering::Release);
            return; // the access is retried and reads zeros
        }
        break;
    }
    match PREVIOUS.get() {
        Some(SigHandler::SigAction(f)) => f(sig, info, ctx),
        Some(SigHandler::Handler(f)) => f(sig),
        // None, SIG_DFL or SIG_IGN (a fault cannot be ignored): the default action,
        // which kills the process. The signal raised again stays pending until this
        // handler returns; a fault would also recur when the access is retried.
        _ => {
            // SAFETY: signal() and raise() are async-signal-safe.
            unsafe {
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
                libc::raise(libc::SIGBUS);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_when_guards_drop() {
        let memory = vec![0u8; 4096];
        for round in 0..ENTRIES * 4 {
            let guard = Guard::register(memory.as_ptr(), memory.len(), false);
            assert!(guard.entry.is_some(), "no entry left in round {round}");
            assert!(!guard.truncated());
        }
        let held: Vec<Guard> = (0..ENTRIES)
            .map(|_| Guard::register(memory.as_ptr(), memory.len(), false))
            .collect();
        // Other tests of this binary may hold a few entries at the same time.
        let guarded = held.iter().filter(|g| g.entry.is_some()).count();
        assert!(guarded > ENTRIES - 16, "{guarded} of {ENTRIES} guarded");
        let beyond = Guard::register(memory.as_ptr(), memory.len(), false);
        assert!(beyond.entry.is_none() || guarded < ENTRIES);
        assert!(!beyond.truncated(), "an unguarded mapping is never marked");
    }
}
