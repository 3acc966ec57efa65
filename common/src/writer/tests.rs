//! The writer: creating, taking over and replacing rings under the name lock, and
//! writing frames.
use super::*;
use crate::testing::TestDir;

/// A ring with `slots` slots of `slot_bytes` and `spares` lease spares.
fn ring(dir: &TestDir, name: &str, slots: u32, spares: u32, slot_bytes: u64) -> RingWriter {
    let config = WriterConfig {
        slots,
        spares,
        max_frame: slot_bytes,
        ..Default::default()
    };
    RingWriter::create(&dir.ring(name), &config).expect("ring created")
}

/// A dead writer's ring under `loc`: its writer pid is one no process has, its lock
/// free.
fn dead_ring(loc: &RingLocation) -> u32 {
    let config = WriterConfig::default();
    let (_file, map, _epoch, tmp) = build(loc, &config.geometry().unwrap(), &config).unwrap();
    let dead = crate::testing::dead_pid();
    // Relaxed: a one-off store before the file has its name.
    map.superblock().writer_pid.store(dead, Ordering::Relaxed);
    std::fs::rename(&tmp, loc.path()).unwrap();
    dead
}

/// Whether `change`, started while another holder kept the directory's name lock,
/// finished only after that holder let go (100 ms later). Not a timing: a change
/// started late on a busy machine still cannot finish before the release.
fn waits_for_held_name_lock(dir: &TestDir, change: impl FnOnce() + Send) -> bool {
    use std::sync::atomic::AtomicBool;
    let held = NameLock::take(&dir.path);
    assert!(held.is_held());
    let released = AtomicBool::new(false);
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            change();
            // Acquire pairs with the Release store before the lock is let go.
            released.load(Ordering::Acquire)
        });
        std::thread::sleep(Duration::from_millis(100));
        released.store(true, Ordering::Release);
        drop(held);
        t.join().unwrap()
    })
}

/// Every change of a name (create, take-over, replace, drop, gc's removal) is made
/// under the directory's name lock: while another process holds it, each waits.
#[test]
fn every_change_of_a_name_waits_for_the_directory_name_lock() {
    let dir = TestDir::new("name-lock");
    let loc = dir.ring("cam");
    let config = WriterConfig::default();
    let mut made = None;
    let waited = waits_for_held_name_lock(&dir, || {
        made = Some(RingWriter::create(&loc, &config).unwrap())
    });
    assert!(waited, "create did not wait for the name lock");
    let mut w = made.unwrap();
    let waited = waits_for_held_name_lock(&dir, || w.replace(&config).unwrap());
    assert!(waited, "replace did not wait for the name lock");
    assert!(same_file(&w.file, loc.path()));
    let waited = waits_for_held_name_lock(&dir, || drop(w));
    assert!(waited, "drop did not wait for the name lock");
    assert!(!loc.path().exists());

    let dead = dead_ring(&loc);
    let mut made = None;
    let waited = waits_for_held_name_lock(&dir, || {
        made = Some(RingWriter::create(&loc, &config).unwrap())
    });
    assert!(waited, "take-over did not wait for the name lock");
    let w = made.unwrap();
    assert_eq!(w.origin(), &Origin::TookOver { dead_pid: dead });
    drop(w);

    let dead = dead_ring(&loc);
    let waited = waits_for_held_name_lock(&dir, || {
        assert_eq!(remove_if_dead(&loc).unwrap(), Some(dead))
    });
    assert!(waited, "gc did not wait for the name lock");
    assert!(!loc.path().exists());
}

/// A dead writer's ring whose lock `shmring gc` (or another writer) holds for a
/// moment is taken over once it lets go, not refused as a live writer's.
#[test]
fn a_dead_writers_ring_locked_for_a_moment_is_taken_over() {
    let dir = TestDir::new("locked-moment");
    let loc = dir.ring("cam");
    let config = WriterConfig::default();
    let (file, map, _epoch, tmp) = build(&loc, &config.geometry().unwrap(), &config).unwrap();
    let dead = crate::testing::dead_pid();
    // Relaxed: a one-off store before the file has its name.
    map.superblock().writer_pid.store(dead, Ordering::Relaxed);
    std::fs::rename(&tmp, loc.path()).unwrap();
    drop((file, map)); // the writer is gone: its lock with it

    let holder = File::options()
        .read(true)
        .write(true)
        .open(loc.path())
        .unwrap();
    assert!(sys::try_lock_exclusive(&holder).unwrap());
    let (locked, let_go) = std::sync::mpsc::channel();
    let gc = std::thread::spawn(move || {
        locked.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(holder);
    });
    let_go.recv().unwrap();
    let w = RingWriter::create(&loc, &config).expect("taken over once the lock is free");
    gc.join().unwrap();
    assert!(same_file(&w.file, loc.path()));
    assert_eq!(w.origin(), &Origin::TookOver { dead_pid: dead });
}

#[test]
fn the_cache_is_bypassed_for_the_slots_cycled_through_not_the_spares() {
    let dir = TestDir::new("bypass-choice");
    let half = copy::last_level_cache_bytes() / 2;
    // Four slots take 3/8 of the cache: the slot written next is still cached.
    // With 8 spares the ring's payloads take 9/8 of it, but the spares only stand
    // in for slots that readers hold.
    let slot = half * 3 / 16;
    let w = ring(&dir, "fits", 4, 8, slot);
    assert!(u64::from(w.geometry().payload_count) * w.slot_capacity() > half);
    assert!(
        !w.bypasses_cache(),
        "4 slots of {slot} bytes fit half the cache"
    );
    drop(w);
    // Twelve slots of that size do not.
    let w = ring(&dir, "larger", 12, 8, slot);
    assert_eq!(w.bypasses_cache(), cfg!(target_arch = "x86_64"));
}
