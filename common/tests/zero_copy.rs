//! Zero-copy reads: a leased slot is never reused while leased, the lease budget keeps
//! the writer supplied with free slots, and a dead reader's leases come back.

use std::time::{Duration, Instant};

use shmring_common::testing::{check, fill, spawn_child_test, TestDir};
use shmring_common::*;

const NO_WAIT: Duration = Duration::ZERO;
const CHILD_ENV: &str = "SHMRING_ZC_CHILD";
const GROUP_CHILD_ENV: &str = "SHMRING_ZC_GROUP_CHILD";
/// The group a group reader belongs to in `a_group_reader_is_counted_not_listed`, and
/// the user it runs as: Debian's nogroup and nobody.
const NOBODY: u32 = 65534;

fn vec_alloc(i: &FrameInfo) -> Vec<u8> {
    vec![0u8; i.len as usize]
}

fn config(slots: u32, spares: u32) -> WriterConfig {
    WriterConfig {
        slots,
        spares,
        max_frame: 4096,
        ..Default::default()
    }
}

fn write(w: &mut RingWriter, seq: u64) {
    let mut buf = vec![0u8; 4096];
    fill(&mut buf, seq);
    assert_eq!(w.write(&FrameMeta::default(), &buf).unwrap(), seq);
}

fn leased(n: Next<Payload<Vec<u8>>>) -> (FrameInfo, LeasedPayload) {
    match n {
        Next::Frame(Frame {
            info,
            data: Payload::Leased(l),
            ..
        }) => (info, l),
        other => panic!("expected a leased frame, got {other:?}"),
    }
}

#[test]
fn a_leased_frame_survives_the_writer_lapping_the_ring() {
    let dir = TestDir::new("zc-lap");
    let mut w = RingWriter::create(&dir.ring("z"), &config(2, 2)).unwrap();
    let mut sut = RingReader::open(&dir.ring("z")).unwrap();
    assert!(sut.enable_zero_copy().unwrap());
    write(&mut w, 1);
    let (info, frame) = leased(sut.latest_zero_copy(NO_WAIT, vec_alloc).unwrap());
    assert_eq!(info.seq, 1);
    for seq in 2..=20 {
        write(&mut w, seq);
    }
    check(&frame.to_vec(), 1).expect("a leased slot is never reused");
    assert_eq!(sut.lease_budget(), 1);
    drop(frame);
    assert_eq!(sut.lease_budget(), 2);
    // Copies keep working beside leases, and readers see every frame intact.
    let mut copier = RingReader::open(&dir.ring("z")).unwrap();
    for seq in 21..=30 {
        write(&mut w, seq);
        let f = match copier.latest(NO_WAIT, vec_alloc).unwrap() {
            Next::Frame(f) => f,
            other => panic!("{other:?}"),
        };
        check(&f.data, seq).unwrap();
    }
}

#[test]
fn without_budget_a_reader_copies_instead() {
    let dir = TestDir::new("zc-budget");
    let mut w = RingWriter::create(&dir.ring("b"), &config(4, 1)).unwrap();
    let mut sut = RingReader::open(&dir.ring("b")).unwrap();
    assert!(sut.enable_zero_copy().unwrap());
    write(&mut w, 1);
    let (_, held) = leased(sut.latest_zero_copy(NO_WAIT, vec_alloc).unwrap());
    write(&mut w, 2);
    match sut.latest_zero_copy(NO_WAIT, vec_alloc).unwrap() {
        Next::Frame(Frame {
            info,
            data: Payload::Copied(v),
            ..
        }) => {
            assert_eq!(info.seq, 2);
            check(&v, 2).unwrap();
        }
        other => panic!("expected a copy while the only spare is leased: {other:?}"),
    }
    drop(held);
    write(&mut w, 3);
    let (info, l) = leased(sut.latest_zero_copy(NO_WAIT, vec_alloc).unwrap());
    assert_eq!(info.seq, 3);
    check(&l.to_vec(), 3).unwrap();
}

#[test]
fn readers_without_write_access_copy() {
    let dir = TestDir::new("zc-ro");
    let mut w = RingWriter::create(
        &dir.ring("r"),
        &WriterConfig {
            perms: 0o640,
            ..config(4, 2)
        },
    )
    .unwrap();
    write(&mut w, 1);
    // Only the group may read: as far as this test can show without a second user,
    // a reader that cannot open the file read-write falls back to copies.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(w.location().path(), std::fs::Permissions::from_mode(0o440)).unwrap();
    let mut sut = RingReader::open(&dir.ring("r")).unwrap();
    let enabled = sut.enable_zero_copy().unwrap();
    if nix::unistd::geteuid().is_root() {
        // root ignores permission bits: leasing works, which is right for root.
        assert!(enabled);
    } else {
        assert!(!enabled);
    }
    std::fs::set_permissions(w.location().path(), std::fs::Permissions::from_mode(0o640)).unwrap();
}

/// A child that leases the newest frame, says so, and waits to be killed.
#[test]
fn child_role() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let loc = RingLocation::parse(&path, None).unwrap();
    let mut r = RingReader::open(&loc).unwrap();
    assert!(r.enable_zero_copy().unwrap());
    let (_, held) = leased(
        r.latest_zero_copy(Duration::from_secs(5), vec_alloc)
            .unwrap(),
    );
    println!("leased");
    std::thread::sleep(Duration::from_secs(60));
    drop(held);
}

#[test]
fn a_dead_readers_leases_come_back() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = TestDir::new("zc-dead");
    let loc = dir.ring("d");
    let mut w = RingWriter::create(&loc, &config(4, 2)).unwrap();
    write(&mut w, 1);
    let mut child = spawn_child_test(
        "child_role",
        CHILD_ENV,
        loc.path().to_str().unwrap(),
        std::process::Stdio::piped(),
    );
    let observer = RingReader::open_for_inspection(&loc).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The lease is taken before the frame's progress is published: wait for both.
    while observer.lease_budget() != 1 || observer.readers().first().map(|r| r.received) != Some(1)
    {
        assert!(Instant::now() < deadline, "the child never leased");
        std::thread::sleep(Duration::from_millis(10));
    }
    let readers = observer.readers();
    assert_eq!(readers.len(), 1, "{readers:?}");
    assert_eq!(
        (readers[0].pid, readers[0].received, readers[0].leases),
        (child.id(), 1, 1)
    );
    assert_eq!(
        observer.reader_count(),
        Some(1),
        "the child, not the observer"
    );
    let _ = child.kill(); // SIGKILL while holding the lease
    let _ = child.wait();
    assert_eq!(observer.readers(), vec![], "a dead reader is not listed");
    assert_eq!(observer.reader_count(), Some(0), "nor counted");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seq = 1;
    while observer.lease_budget() != 2 {
        assert!(
            Instant::now() < deadline,
            "the dead reader's lease was never reclaimed"
        );
        seq += 1;
        write(&mut w, seq);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn leased_frames_held_across_laps_are_never_overwritten() {
    // The writer goes flat out over 3 slots; a reader leases frames and holds each for
    // several of the writer's laps before checking every byte again.
    let dir = TestDir::new("zc-stress");
    let loc = dir.ring("s");
    let mut w = RingWriter::create(
        &loc,
        &WriterConfig {
            max_frame: 65536,
            ..config(3, 2)
        },
    )
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut seq = 0;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            seq += 1;
            fill(&mut buf, seq);
            w.write(&FrameMeta::default(), &buf).unwrap();
        }
        seq
    });
    let mut sut = RingReader::open(&loc).unwrap();
    assert!(sut.enable_zero_copy().unwrap());
    let (mut leases, mut copies) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        match sut
            .latest_zero_copy(Duration::from_secs(1), vec_alloc)
            .unwrap()
        {
            Next::Frame(Frame {
                info,
                data: Payload::Leased(l),
                ..
            }) => {
                check(&l.to_vec(), info.seq).unwrap();
                std::thread::sleep(Duration::from_millis(2)); // many laps meanwhile
                if let Err(at) = check(&l.to_vec(), info.seq) {
                    panic!(
                        "leased frame {} overwritten while held (byte {at})",
                        info.seq
                    );
                }
                leases += 1;
            }
            Next::Frame(Frame {
                info,
                data: Payload::Copied(v),
                ..
            }) => {
                check(&v, info.seq).unwrap();
                copies += 1;
            }
            Next::TimedOut => {}
            other => panic!("{other:?}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(
        leases > 50,
        "{leases} leases, {copies} copies of {written} frames"
    );
    eprintln!("{leases} leased frames held across laps of {written} frames, {copies} copies");
}

#[test]
fn readers_are_counted_with_or_without_an_entry() {
    let dir = TestDir::new("zc-count");
    let loc = dir.ring("c");
    let _w = RingWriter::create(&loc, &config(4, 2)).unwrap();
    let tool = RingReader::open_for_inspection(&loc).unwrap();
    assert_eq!(tool.reader_count(), Some(0), "a tool is not a reader");
    let copying = RingReader::open(&loc).unwrap();
    let mut leasing = RingReader::open(&loc).unwrap();
    assert!(leasing.enable_zero_copy().unwrap());
    assert_eq!(tool.readers().len(), 1, "one reader has an entry");
    assert_eq!(tool.reader_count(), Some(2), "both are counted");
    drop(copying);
    assert_eq!(tool.reader_count(), Some(1));
    drop(leasing);
    assert_eq!(tool.reader_count(), Some(0));
}

/// A ring shared with the group nogroup as `perms=0640` shares one: the file and its
/// directory let the group read. None (skipped) when not root.
fn group_shared_ring(tag: &str) -> Option<(TestDir, RingLocation, RingWriter)> {
    use std::os::unix::fs::{chown, PermissionsExt};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: running a process as another user needs root");
        return None;
    }
    let dir = TestDir::new(tag);
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o750)).unwrap();
    chown(&dir.path, None, Some(NOBODY)).unwrap();
    let loc = dir.ring("g");
    let w = RingWriter::create(
        &loc,
        &WriterConfig {
            perms: 0o640,
            ..config(4, 2)
        },
    )
    .unwrap();
    chown(loc.path(), None, Some(NOBODY)).unwrap();
    Some((dir, loc, w))
}

/// This test binary running `role` as nobody:nogroup on the ring at `loc`.
fn as_nobody(role: &str, loc: &RingLocation) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    shmring_common::testing::this_test_binary()
        .args(["--exact", role, "--nocapture", "--test-threads=1"])
        .env(GROUP_CHILD_ENV, loc.path())
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the test binary starts as nobody")
}

#[test]
fn a_group_reader_is_counted_not_listed() {
    use std::io::BufRead;
    if std::env::var_os(GROUP_CHILD_ENV).is_some() {
        return;
    }
    let Some((_dir, loc, mut w)) = group_shared_ring("zc-group") else {
        return;
    };
    write(&mut w, 1);
    let tool = RingReader::open_for_inspection(&loc).unwrap();
    let mut child = as_nobody("group_reader_role", &loc);
    let said: Vec<String> = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(|l| l.ok())
        .take_while(|l| !l.contains("attached without an entry"))
        .collect();
    let counted = tool.reader_count();
    let listed = tool.readers();
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert!(
        status.code().is_none(),
        "the group reader ended first: {said:?}"
    );
    assert_eq!(
        listed,
        vec![],
        "a group reader cannot write the reader table"
    );
    assert_eq!(counted, Some(1), "but it is counted");
    assert_eq!(tool.reader_count(), Some(0), "until it is gone");
}

/// A reader of another user with read access only, for `a_group_reader_is_counted_not_listed`.
#[test]
fn group_reader_role() {
    let Ok(path) = std::env::var(GROUP_CHILD_ENV) else {
        return;
    };
    let loc = RingLocation::parse(&path, None).unwrap();
    let mut r = RingReader::open(&loc).expect("the group may open the ring");
    assert!(
        !r.enable_zero_copy().unwrap(),
        "the group cannot write the ring"
    );
    println!("attached without an entry");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_writer_of_another_user_is_told_the_pid_of_the_live_writer() {
    if std::env::var_os(GROUP_CHILD_ENV).is_some() {
        return;
    }
    let Some((_dir, loc, _w)) = group_shared_ring("zc-group-writer") else {
        return;
    };
    let child = as_nobody("group_writer_role", &loc);
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    let busy = format!(
        "g.ring already has a live writer (pid {})",
        std::process::id()
    );
    assert!(said.contains(&busy), "{said}");
}

/// A writer of another user that may only read the ring, for
/// `a_writer_of_another_user_is_told_the_pid_of_the_live_writer`.
#[test]
fn group_writer_role() {
    let Ok(path) = std::env::var(GROUP_CHILD_ENV) else {
        return;
    };
    let loc = RingLocation::parse(&path, None).unwrap();
    match RingWriter::create(&loc, &config(4, 2)) {
        Err(e) => println!("{e}"),
        Ok(_) => panic!("a ring the group may only read was taken"),
    }
}

#[test]
fn readers_publish_their_progress_for_tools() {
    let dir = TestDir::new("zc-progress");
    let mut w = RingWriter::create(&dir.ring("p"), &config(8, 2)).unwrap();
    let observer = RingReader::open(&dir.ring("p")).unwrap();
    let mut sut = RingReader::open(&dir.ring("p")).unwrap();
    assert_eq!(observer.readers(), vec![], "no reader has an entry yet");
    assert!(sut.enable_zero_copy().unwrap());
    for seq in 1..=3 {
        write(&mut w, seq);
        let _ = leased(sut.next_zero_copy(NO_WAIT, vec_alloc).unwrap());
    }
    // A latest reader that comes back after three more frames skips two of them.
    for seq in 4..=6 {
        write(&mut w, seq);
    }
    let (_, held) = leased(sut.latest_zero_copy(NO_WAIT, vec_alloc).unwrap());
    let progress = observer.readers();
    assert_eq!(
        progress,
        vec![ReaderProgress {
            pid: std::process::id(),
            last_seq: 6,
            received: 4,
            missed: 2,
            torn: 0,
            leases: 1,
        }]
    );
    // A frame asked for by handle counts too, without skipping anything.
    assert!(matches!(
        sut.by_handle(&w.handle(5), vec_alloc).unwrap(),
        ByHandle::Frame(_)
    ));
    let listed = observer.readers();
    assert_eq!(
        (listed[0].last_seq, listed[0].received, listed[0].missed),
        (5, 5, 2),
        "{listed:?}"
    );
    drop(held);
    drop(sut);
    assert_eq!(
        observer.readers(),
        vec![],
        "a reader that let go is not listed"
    );
    // The next owner of the entry starts from zero.
    let mut again = RingReader::open(&dir.ring("p")).unwrap();
    assert!(again.enable_zero_copy().unwrap());
    let listed = observer.readers();
    assert_eq!((listed.len(), listed[0].received), (1, 0), "{listed:?}");
}

/// The reader table of a ring, mapped read-write as any reader with write access to the
/// file can map it: what a reader that breaks the protocol works with.
struct RawTable {
    map: memmap2::MmapMut,
    _file: std::fs::File,
}

impl RawTable {
    fn open(loc: &RingLocation, geom: &Geometry) -> Self {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(loc.path())
            .unwrap();
        // SAFETY: a shared mapping of the ring's reader table; every access below goes
        // through atomics, as the other processes' do.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(geom.reader_table_offset)
                .len(layout::READER_TABLE_SIZE as usize)
                .map_mut(&file)
                .unwrap()
        };
        RawTable { map, _file: file }
    }

    /// The u32 at byte `at` of the table.
    fn word(&self, at: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(at.is_multiple_of(4) && at + 4 <= self.map.len());
        // SAFETY: in bounds and aligned (checked above; the mapping is page aligned),
        // and the mapping lives as long as the borrow of self.
        unsafe { std::sync::atomic::AtomicU32::from_ptr(self.map.as_ptr().add(at) as *mut u32) }
    }

    fn lease_budget(&self) -> &std::sync::atomic::AtomicU32 {
        self.word(0)
    }

    /// Takes entry `entry`'s lock, as a live reader holds it (the writer reclaims the
    /// leases of entries whose lock is free).
    fn claim(&self, geom: &Geometry, entry: usize) {
        let byte = geom.reader_entry_offset(entry);
        let lock = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: byte as libc::off_t,
            l_len: 1,
            l_pid: 0,
        };
        nix::fcntl::fcntl(&self._file, nix::fcntl::FcntlArg::F_OFD_SETLK(&lock)).unwrap();
    }

    /// Lease word `i` of entry `entry` (0-based, after the header).
    fn lease(&self, entry: usize, i: usize) -> &std::sync::atomic::AtomicU32 {
        self.word(layout::reader_entry_in_table(entry) as usize + 8 + 4 * i)
    }
}

#[test]
fn a_reader_beyond_its_budget_cannot_make_the_writer_overwrite_a_lease() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = TestDir::new("zc-liar");
    let loc = dir.ring("l");
    let mut w = RingWriter::create(&loc, &config(2, 1)).unwrap();
    let mut honest = RingReader::open(&loc).unwrap();
    assert!(honest.enable_zero_copy().unwrap());
    write(&mut w, 1);
    let (info, frame) = leased(honest.latest_zero_copy(NO_WAIT, vec_alloc).unwrap());
    assert_eq!(info.seq, 1);
    // A liar claims the last entry of the table (its lock, so the writer does not take
    // it for dead) and leases every payload slot without taking budget.
    let geom = honest.geometry();
    let liar = RawTable::open(&loc, &geom);
    let entry = layout::READER_ENTRIES - 1;
    liar.claim(&geom, entry);
    for p in 0..geom.payload_count {
        liar.lease(entry, p as usize).store(p + 1, SeqCst);
    }
    let mut buf = vec![0u8; 4096];
    let mut dropped = 0;
    for seq in 2..=10 {
        fill(&mut buf, seq);
        match w.write(&FrameMeta::default(), &buf) {
            Ok(_) => {}
            Err(Error::SlotsHeld { .. }) => dropped += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        dropped > 0,
        "every slot was held: frames must have been dropped"
    );
    check(&frame.to_vec(), 1).expect("the honest reader's leased slot was overwritten");
    // The liar lets go: frames flow again, and the honest reader gets them.
    for p in 0..geom.payload_count {
        liar.lease(entry, p as usize).store(0, SeqCst);
    }
    drop(frame);
    let seq = w.head() + 1;
    write(&mut w, seq);
    match honest.latest(NO_WAIT, vec_alloc).unwrap() {
        Next::Frame(f) => check(&f.data, seq).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lease_budget_units_lost_by_a_killed_reader_come_back() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = TestDir::new("zc-audit");
    let loc = dir.ring("a");
    let _w = RingWriter::create(&loc, &config(4, 3)).unwrap();
    let observer = RingReader::open_for_inspection(&loc).unwrap();
    let geom = observer.geometry();
    let table = RawTable::open(&loc, &geom);
    let settles_at = |budget: u32, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while observer.lease_budget() != budget {
            assert!(
                Instant::now() < deadline,
                "{what}: the budget stays {}",
                observer.lease_budget()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // A reader killed after taking a unit and before storing its lease word: its entry
    // still names it, its lock is gone, and the unit is nowhere.
    let victim = RawTable::open(&loc, &geom);
    victim.claim(&geom, 5);
    victim
        .word(6 * layout::READER_ENTRY_SIZE as usize)
        .store(4242, SeqCst); // its pid
    victim.lease_budget().fetch_sub(1, SeqCst);
    assert_eq!(observer.lease_budget(), 2);
    drop(victim); // killed: the lock dies with it
    settles_at(3, "a unit lost by a killed reader");
    // A reader that refunds what it never took.
    table.lease_budget().fetch_add(1, SeqCst);
    settles_at(3, "a unit invented");
    // A live reader stopped inside the window (a debugger, say) has lost nothing: its
    // unit is not given to anybody else meanwhile.
    table.claim(&geom, 0);
    table.lease_budget().fetch_sub(1, SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        observer.lease_budget(),
        2,
        "a stopped reader's unit was handed out"
    );
    // It resumes and stores its lease word: all is consistent again.
    table.lease(0, 0).store(1, SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(observer.lease_budget(), 2);
}
