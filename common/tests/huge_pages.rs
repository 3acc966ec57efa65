//! Rings on tmpfs mounts of their own: on one mounted `huge=advise` the writer asks for
//! 2 MiB pages and gets them (docs/design.md, "Huge pages"); on one too small for the
//! ring, creating it is an error and not a SIGBUS. Mounting needs root, as in CI;
//! elsewhere the tests say why they did not run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shmring_common::testing::{self, check, fill, huge_pages_kib_per_mapping, TestDir};
use shmring_common::*;

const FRAME: usize = 4 << 20;

/// A tmpfs mounted over a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> std::result::Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        // The mount point itself, which the TestDir could not remove while mounted.
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A private ring directory with a tmpfs of `options` mounted on it, or why not.
fn mounted(tag: &str, options: &str) -> Option<(Tmpfs, TestDir)> {
    if testing::under_runner() {
        // qemu-user takes madvise() for advice and ignores it: neither huge pages nor
        // MADV_POPULATE_WRITE's reservation happen there. What these tests check is
        // the kernel's tmpfs, which is the same whatever the CPU.
        eprintln!(
            "skipped: under an emulator (${}), madvise is not passed to the kernel",
            testing::RUNNER_ENV
        );
        return None;
    }
    let dir = TestDir::new(tag);
    match Tmpfs::mount(&dir.path, options) {
        Ok(m) => Some((m, dir)),
        Err(e) => {
            eprintln!("skipped: cannot mount a tmpfs (needs root): {e}");
            None
        }
    }
}

#[test]
fn a_ring_larger_than_its_tmpfs_is_an_error_when_created_not_a_sigbus_when_written() {
    let Some((_tmpfs, dir)) = mounted("full", "size=16m,mode=0700") else {
        return;
    };
    let config = WriterConfig {
        slots: 4,
        max_frame: FRAME as u64,
        ..Default::default()
    };
    let e = RingWriter::create(&dir.ring("full"), &config)
        .err()
        .expect("a 48 MiB ring (4 slots, 8 lease spares) on a 16 MiB tmpfs");
    let text = e.to_string();
    assert!(text.contains("reserve shared memory"), "{text}");
    assert!(text.contains("No space left"), "{text}");
    // Nothing is left behind, and a ring that fits is made in the same place.
    let left = std::fs::read_dir(&dir.path)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            !name.to_string_lossy().starts_with(".shmring-names-") // the name lock's file
        })
        .count();
    assert_eq!(left, 0);
    let small = WriterConfig {
        slots: 2,
        max_frame: 1 << 20,
        ..Default::default()
    };
    RingWriter::create(&dir.ring("fits"), &small).unwrap();
}

#[test]
fn a_ring_on_a_huge_advise_tmpfs_is_mapped_with_huge_pages_by_writer_and_reader() {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
    if thp.is_err() {
        eprintln!("not run: this kernel has no transparent huge pages");
        return;
    }
    let Some((_tmpfs, dir)) = mounted("huge", "huge=advise,size=64m,mode=0700") else {
        return;
    };
    let loc = dir.ring("huge");
    let config = WriterConfig {
        slots: 2,
        max_frame: FRAME as u64,
        ..Default::default()
    };
    let mut w = RingWriter::create(&loc, &config).unwrap();
    for seq in 1..=2 {
        let mut slot = w.begin().unwrap();
        // SAFETY: nothing else writes or truncates this test's ring file.
        fill(unsafe { &mut slot.payload()[..FRAME] }, seq);
        slot.commit(&FrameMeta::default(), FRAME as u64).unwrap();
    }
    let intr = Interrupter::new().unwrap();
    let Ok(Attach::Reader(mut r)) = attach(&loc, Duration::from_secs(5), &intr) else {
        panic!("the reader did not attach");
    };
    let Next::Frame(f) = r
        .latest(Duration::from_secs(1), |i| vec![0u8; i.len as usize])
        .unwrap()
    else {
        panic!("no frame");
    };
    assert_eq!(check(&f.data, f.info.seq), Ok(()));

    let huge = huge_pages_kib_per_mapping(loc.path());
    assert_eq!(
        huge.len(),
        2,
        "one mapping by the writer, one by the reader"
    );
    // Each 4 MiB payload holds at least one whole 2 MiB page.
    for kb in huge {
        assert!(kb >= 2048, "a ring mapping has {kb} kB in huge pages");
    }
}
