//! Helpers for tests of programs that use rings.
//!
//! Private ring directories, and frame patterns that let a reader check every byte of
//! every frame.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::RingLocation;

/// A fresh private ring directory, removed when dropped.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    /// A new directory in /dev/shm, as rings have by default.
    pub fn new(tag: &str) -> Self {
        Self::new_in(std::path::Path::new("/dev/shm"), tag)
    }

    /// A new directory in `base` (a ring directory elsewhere, as `SHMRING_DIR` may name).
    pub fn new_in(base: &std::path::Path, tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = base.join(format!(
            "shmring-test-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        TestDir { path }
    }

    pub fn ring(&self, name: &str) -> RingLocation {
        RingLocation::parse(name, Some(&self.path)).unwrap()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Fills `buf` with frame `seq`'s pattern: every 8-byte word is a function of the
/// sequence and its position, so any mix of two frames is detected.
pub fn fill(buf: &mut [u8], seq: u64) {
    let words = buf.len() / 8;
    for i in 0..words {
        let v = pattern_word(seq, i as u64);
        buf[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    for (j, b) in buf[words * 8..].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_add(j as u8);
    }
}

fn pattern_word(seq: u64, i: u64) -> u64 {
    seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// Checks that `buf` is exactly frame `seq`'s pattern; returns the first bad offset.
pub fn check(buf: &[u8], seq: u64) -> Result<(), usize> {
    let words = buf.len() / 8;
    for i in 0..words {
        let v = u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
        if v != pattern_word(seq, i as u64) {
            return Err(i * 8);
        }
    }
    for (j, b) in buf[words * 8..].iter().enumerate() {
        if *b != (seq as u8).wrapping_add(j as u8) {
            return Err(words * 8 + j);
        }
    }
    Ok(())
}

/// Kilobytes of `path` mapped with huge pages in this process (ShmemPmdMapped in
/// /proc/self/smaps), one figure per mapping of it.
pub fn huge_pages_kib_per_mapping(path: &std::path::Path) -> Vec<u64> {
    smaps_kib_per_mapping(path, "ShmemPmdMapped:")
        .into_iter()
        .map(|(_, kib)| kib)
        .collect()
}

/// KiB of each of this process's read-only mappings of `path` in its page tables now
/// (`Rss`): a reader's mapping, not a writer's.
pub fn resident_kib_of_read_only_mappings(path: &std::path::Path) -> Vec<u64> {
    smaps_kib_per_mapping(path, "Rss:")
        .into_iter()
        .filter(|(perms, _)| !perms.contains('w'))
        .map(|(_, kib)| kib)
        .collect()
}

/// `field`'s KiB for each of this process's mappings of `path`, with the mapping's
/// permissions (`r--s`, `rw-s`, ...), from /proc/self/smaps.
fn smaps_kib_per_mapping(path: &std::path::Path, field: &str) -> Vec<(String, u64)> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut found: Vec<(String, u64)> = Vec::new();
    let mut ours = false;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range, perms, offset, device, inode, path.
            let perms = words.next().unwrap_or("").to_owned();
            ours = words.nth(3).map(std::path::Path::new) == Some(path);
            if ours {
                found.push((perms, 0));
            }
        } else if ours && first == field {
            if let (Some(last), Some(kib)) = (found.last_mut(), words.next()) {
                last.1 = kib.parse().unwrap_or(0);
            }
        }
    }
    found
}

/// Cost of moving one frame through a ring, beside a plain memcpy of the same frame
/// measured in the same run with the same rotation over slots (so cache effects match).
#[derive(Clone, Debug)]
pub struct CopyCosts {
    pub frame_bytes: usize,
    pub memcpy_write_ns: f64,
    pub memcpy_read_ns: f64,
    pub write_ns: f64,
    pub read_ns: f64,
}

impl CopyCosts {
    pub fn write_ratio(&self) -> f64 {
        self.write_ns / self.memcpy_write_ns
    }

    pub fn read_ratio(&self) -> f64 {
        self.read_ns / self.memcpy_read_ns
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median over `batches` of the mean ns per call of `f` over `iters` calls.
fn time_per_call(batches: usize, iters: usize, mut f: impl FnMut(usize)) -> f64 {
    f(0); // warm up: page faults of fresh memory
    let mut results = Vec::with_capacity(batches);
    for b in 0..batches {
        let t = std::time::Instant::now();
        for i in 0..iters {
            f(b * iters + i);
        }
        results.push(t.elapsed().as_nanos() as f64 / iters as f64);
    }
    median(results)
}

/// The cost benchmarks' frame (`width` x `height` I420), batches and calls per batch.
fn cost_frame(width: usize, height: usize, quick: bool) -> (Vec<u8>, usize, usize) {
    let size = width * height * 3 / 2;
    let (batches, iters) = if quick { (3, 10) } else { (15, 40) };
    ((0..size).map(|i| i as u8).collect(), batches, iters)
}

/// A ring of `slots` slots for frames of `size` bytes in `dir`, and its writer.
fn cost_ring(dir: &TestDir, slots: u32, size: usize) -> (RingLocation, crate::RingWriter) {
    let loc = dir.ring("bench");
    let config = crate::WriterConfig {
        slots,
        max_frame: size as u64,
        ..Default::default()
    };
    let w = crate::RingWriter::create(&loc, &config).expect("a ring for the benchmark");
    (loc, w)
}

/// Measures write and read cost of a `width` x `height` I420 frame through a ring of
/// `slots` slots, and the memcpy baselines.
pub fn copy_costs(width: usize, height: usize, slots: u32, quick: bool) -> CopyCosts {
    use crate::{ByHandle, FrameMeta, RingReader};
    use std::hint::black_box;

    let (frame, batches, iters) = cost_frame(width, height, quick);
    let size = frame.len();
    let n = slots as usize;

    // Writing: one memcpy of the frame into one of `slots` destinations.
    let mut dsts: Vec<Vec<u8>> = (0..n).map(|_| vec![1u8; size]).collect();
    let memcpy_write_ns = time_per_call(batches, iters, |i| {
        let d = &mut dsts[i % n];
        d.copy_from_slice(black_box(&frame));
        black_box(d);
    });
    // Reading: one memcpy from one of `slots` sources into one buffer.
    let mut out = vec![0u8; size];
    let memcpy_read_ns = time_per_call(batches, iters, |i| {
        out.copy_from_slice(black_box(&dsts[i % n]));
        black_box(&out);
    });
    drop(dsts);

    let dir = TestDir::new("copy-costs");
    let (loc, mut w) = cost_ring(&dir, slots, size);
    let meta = FrameMeta::default();
    let write_ns = time_per_call(batches, iters, |_| {
        w.write(&meta, black_box(&frame)).expect("frame fits");
    });
    let mut r = RingReader::open(&loc).expect("the benchmark ring opens");
    let mut buf = vec![0u8; size];
    let read_ns = time_per_call(batches, iters, |i| {
        // A committed frame of a different slot each time, as a reader following the writer.
        let h = w.handle(w.head() - (i as u64 % u64::from(slots - 1)));
        // The same buffer every time, moved in and out: no allocation per read.
        match r
            .by_handle(&h, |_| std::mem::take(&mut buf))
            .expect("readable")
        {
            ByHandle::Frame(f) => buf = black_box(f.data),
            other => panic!("frame {} not readable: {other:?}", h.seq),
        }
    });
    CopyCosts {
        frame_bytes: size,
        memcpy_write_ns,
        memcpy_read_ns,
        write_ns,
        read_ns,
    }
}

/// A frame written into a ring of `slots` slots and read back at once, as a reader
/// that follows its writer: (write ns, read ns) per frame, medians over batches. With
/// `bypass_cache` the writer copies with non-temporal stores, else with ordinary ones.
pub fn write_then_read_costs(
    width: usize,
    height: usize,
    slots: u32,
    bypass_cache: bool,
    quick: bool,
) -> (f64, f64) {
    use crate::{FrameMeta, Next, RingReader};
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    let (frame, batches, iters) = cost_frame(width, height, quick);
    let size = frame.len();
    let dir = TestDir::new("write-then-read");
    let (loc, mut w) = cost_ring(&dir, slots, size);
    w.set_bypass_cache(bypass_cache);
    let mut r = RingReader::open(&loc).expect("the benchmark ring opens");
    let mut buf = vec![0u8; size];
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    for batch in 0..=batches {
        let (mut write, mut read) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..iters {
            let t = Instant::now();
            w.write(&FrameMeta::default(), black_box(&frame))
                .expect("frame fits");
            write += t.elapsed();
            let t = Instant::now();
            match r.latest(Duration::from_secs(1), |_| std::mem::take(&mut buf)) {
                Ok(Next::Frame(f)) => buf = black_box(f.data),
                other => panic!("the frame just written is not readable: {other:?}"),
            }
            read += t.elapsed();
        }
        if batch > 0 {
            // batch 0 warms up: page faults of fresh memory
            writes.push(write.as_nanos() as f64 / iters as f64);
            reads.push(read.as_nanos() as f64 / iters as f64);
        }
    }
    (median(writes), median(reads))
}

/// The environment variable that names the program to start test binaries with, as
/// cargo's runner for a cross target (`qemu-aarch64 -L /usr/aarch64-linux-gnu`): a
/// test that starts itself again as a child must start it the same way.
pub const RUNNER_ENV: &str = "SHMRING_TEST_RUNNER";

/// Whether this test binary runs through `$SHMRING_TEST_RUNNER` (qemu-user for another
/// CPU), where what the kernel does for the emulated program is not tested: qemu takes
/// madvise for advice, has no futex_waitv, and its seccomp filters are its own.
pub fn under_runner() -> bool {
    std::env::var_os(RUNNER_ENV).is_some()
}

/// Set (to anything) when the tests run emulated, under qemu-user-static
/// (scripts/test-platforms.sh's arm64 chroot): every process runs several times slower.
pub const EMULATED_ENV: &str = "SHMRING_EMULATED";

/// How many times longer than natively a test gives work whose speed it depends on (an
/// encoder catching up, a process starting): 1 natively, 6 under emulation. Only
/// times are scaled, never what a test checks; docs/testing.md lists the tests.
pub fn slowdown() -> u32 {
    if std::env::var_os(EMULATED_ENV).is_some() {
        6
    } else {
        1
    }
}

/// The pid of a process that has just ended (and been reaped): a writer pid that is
/// gone.
pub fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("true starts");
    let pid = child.id();
    child.wait().expect("true ends");
    pid
}

/// A command that starts this test binary again, through `$SHMRING_TEST_RUNNER` when
/// it is set (the binary may be of another CPU, run under qemu-user).
pub fn this_test_binary() -> std::process::Command {
    let exe = std::env::current_exe().expect("test binary path");
    let runner = std::env::var(RUNNER_ENV).unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut cmd = std::process::Command::new(program);
            cmd.args(words).arg(exe);
            cmd
        }
        None => std::process::Command::new(exe),
    }
}

/// Starts this test binary again to run only the test `role_test` (which should act on
/// `env_var` and return at once when it is unset), with `env_var` set to `value`.
pub fn spawn_child_test(
    role_test: &str,
    env_var: &str,
    value: &str,
    stdout: std::process::Stdio,
) -> std::process::Child {
    this_test_binary()
        .args(["--exact", role_test, "--nocapture", "--test-threads=1"])
        .env(env_var, value)
        .stdin(std::process::Stdio::piped())
        .stdout(stdout)
        .spawn()
        .expect("test binary starts again")
}
