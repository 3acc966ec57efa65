//! `RingWriter::replace` puts its new ring under the name only while the name is still
//! its own: a ring another writer made there after ours was removed is never lost. Run
//! on the kernel's own path (renameat2 with RENAME_EXCHANGE) and, in child processes
//! whose renameat2 a seccomp filter refuses, on the fallback path older kernels and
//! container profiles take.

use std::process::Stdio;

use shmring_common::testing::{dead_pid, spawn_child_test, under_runner, TestDir};
use shmring_common::*;

mod support {
    pub mod seccomp;
}
use support::seccomp::refuse_renameat2;

const CHILD_ENV: &str = "SHMRING_RENAME_CHILD";

fn config(slots: u32) -> WriterConfig {
    WriterConfig {
        slots,
        max_frame: 4096,
        ..WriterConfig::default()
    }
}

fn names(dir: &TestDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&dir.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".shmring-names-")) // the name lock's file
        .collect();
    v.sort();
    v
}

/// Every case, on whichever rename path this process has; panics on a failure.
fn scenario(tag: &str) {
    // Our ring removed by hand, another writer's ring made under the name since.
    let dir = TestDir::new(&format!("replace-taken-{tag}"));
    let loc = dir.ring("cam");
    let mut ours = RingWriter::create(&loc, &config(2)).unwrap();
    let our_epoch = ours.epoch();
    std::fs::remove_file(loc.path()).unwrap();
    let mut theirs = RingWriter::create(&loc, &config(2)).unwrap();
    let before = names(&dir);
    match ours.replace(&config(3)) {
        Err(Error::Busy { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("replace over another writer's ring: {other:?}"),
    }
    assert_eq!(ours.epoch(), our_epoch, "a refused replace keeps our ring");
    assert_eq!(names(&dir), before, "no file left behind, none removed");
    let reader = RingReader::open(&loc).unwrap();
    assert_eq!(
        reader.epoch(),
        theirs.epoch(),
        "the name still leads to their ring"
    );
    assert!(!reader.is_superseded());
    theirs.write(&FrameMeta::default(), b"theirs").unwrap();
    drop(ours);
    let reader = RingReader::open(&loc).unwrap();
    assert_eq!(reader.epoch(), theirs.epoch(), "our leaving takes nothing");
    assert_eq!(reader.writer_status(), WriterStatus::Live);

    // Our ring removed by hand, nothing under the name: the new ring takes it.
    let dir = TestDir::new(&format!("replace-removed-{tag}"));
    let loc = dir.ring("cam");
    let mut ours = RingWriter::create(&loc, &config(2)).unwrap();
    std::fs::remove_file(loc.path()).unwrap();
    ours.replace(&config(3)).unwrap();
    let reader = RingReader::open(&loc).unwrap();
    assert_eq!(reader.epoch(), ours.epoch());
    assert_eq!(reader.geometry().slot_count, 3);
    assert_eq!(names(&dir).len(), 1, "{:?}", names(&dir));

    // The usual case: the name is ours, the old ring goes, readers move on.
    let dir = TestDir::new(&format!("replace-ours-{tag}"));
    let loc = dir.ring("cam");
    let mut ours = RingWriter::create(&loc, &config(2)).unwrap();
    let old = RingReader::open(&loc).unwrap();
    ours.replace(&config(4)).unwrap();
    assert!(old.is_superseded());
    assert_eq!(old.writer_status(), WriterStatus::Replaced);
    let reader = RingReader::open(&loc).unwrap();
    assert_eq!(reader.epoch(), ours.epoch());
    assert_eq!(reader.geometry().slot_count, 4);
    assert_eq!(names(&dir).len(), 1, "{:?}", names(&dir));
}

/// A live writer's ring under a creation dot-name of a dead process (what a `replace`
/// cut short between its two swaps would leave) is not an abandoned temporary file.
#[test]
fn a_locked_ring_under_a_dead_processs_dot_name_is_not_abandoned() {
    let dir = TestDir::new("dot-name");
    let loc = dir.ring("cam");
    let _live = RingWriter::create(&loc, &config(2)).unwrap();
    let dead = dead_pid();
    let dot = dir.path.join(format!(".cam.ring.{dead}.0.new"));
    std::fs::rename(loc.path(), &dot).unwrap();
    assert!(abandoned_temp_files(&dir.path).is_empty());
    let abandoned = dir.path.join(format!(".other.ring.{dead}.0.new"));
    std::fs::write(&abandoned, b"half made").unwrap();
    // What cannot be opened as a file and asked about its lock is not ours to remove.
    let link = dir.path.join(format!(".link.ring.{dead}.0.new"));
    std::os::unix::fs::symlink(&abandoned, &link).unwrap();
    assert_eq!(abandoned_temp_files(&dir.path), vec![abandoned]);
}

#[test]
fn replace_on_the_kernels_rename_exchange() {
    scenario("exchange");
}

fn in_child(errno: &str) {
    if under_runner() {
        // qemu-user cannot install a filter for the emulated CPU's system calls.
        eprintln!("skipped: under an emulator, where seccomp filters cannot be installed");
        return;
    }
    let out = spawn_child_test("child_role", CHILD_ENV, errno, Stdio::piped())
        .wait_with_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("replace cases passed"),
        "child refused renameat2 with {errno}: {}\n{stdout}",
        out.status
    );
}

#[test]
fn replace_where_renameat2_is_refused_with_enosys() {
    in_child("ENOSYS");
}

#[test]
fn replace_where_renameat2_is_refused_with_eperm() {
    in_child("EPERM");
}

/// The child of the two tests above: refuses renameat2, runs every case.
#[test]
fn child_role() {
    let Ok(errno) = std::env::var(CHILD_ENV) else {
        return;
    };
    refuse_renameat2(match errno.as_str() {
        "ENOSYS" => libc::ENOSYS,
        _ => libc::EPERM,
    });
    // The filter works: renameat2 itself now fails.
    let probe = TestDir::new("replace-probe");
    let (a, b) = (probe.path.join("a"), probe.path.join("b"));
    std::fs::write(&a, b"a").unwrap();
    std::fs::write(&b, b"b").unwrap();
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    let exchanged = renameat2(AT_FDCWD, &a, AT_FDCWD, &b, RenameFlags::RENAME_EXCHANGE);
    assert!(exchanged.is_err(), "renameat2 was not refused");
    scenario(&errno.to_lowercase());
    println!("replace cases passed");
}
