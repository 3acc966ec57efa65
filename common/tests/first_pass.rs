//! A reader's first pass over a ring: it maps the ring's pages when it attaches
//! (MADV_POPULATE_READ), so the first frame it reads from each slot costs no more than
//! later ones; before, each took hundreds of page faults and those frames were a
//! reader's slowest (docs/latency.md, "The first pass over the ring"). Counted as
//! the reading thread's minor faults, in a child process each, one of them under a
//! seccomp filter that refuses the advice as a kernel before 5.14 does: that reader
//! faults as before and still reads every frame whole. A ring file with holes is not
//! populated: that would allocate them; nor is one on a disk: that would read it whole.

mod support {
    pub mod seccomp;
}

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use shmring_common::reader::PREFAULT_MAX;
use shmring_common::testing::{
    check, fill, huge_pages_kib_per_mapping, resident_kib_of_read_only_mappings, spawn_child_test,
    under_runner, TestDir, RUNNER_ENV,
};
use shmring_common::*;
use support::seccomp::refuse_madvise;

const CHILD_ENV: &str = "SHMRING_FIRST_PASS_CHILD";
const SLOTS: u32 = 16;
const FRAME: usize = 1 << 20;
/// Pages of payload the reader reads once: 4096 with 4 KiB pages.
const PAGES: u64 = SLOTS as u64 * FRAME as u64 / 4096;

/// A ring of SLOTS frames of FRAME bytes, all written; the directory that holds it.
fn full_ring(tag: &str) -> (TestDir, RingWriter, RingLocation) {
    let dir = TestDir::new(tag);
    let loc = dir.ring("r");
    let w = write_full_ring(&loc);
    (dir, w, loc)
}

/// A writer of a ring at `loc` of SLOTS frames of FRAME bytes, all written.
fn write_full_ring(loc: &RingLocation) -> RingWriter {
    let config = WriterConfig {
        slots: SLOTS,
        max_frame: FRAME as u64,
        ..Default::default()
    };
    let mut w = RingWriter::create(loc, &config).unwrap();
    let mut buf = vec![0u8; FRAME];
    for seq in 1..=u64::from(SLOTS) {
        fill(&mut buf, seq);
        w.write(
            &FrameMeta {
                pts: Some(seq),
                ..Default::default()
            },
            &buf,
        )
        .unwrap();
    }
    w
}

/// This thread's minor page faults so far.
fn minor_faults() -> u64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)
        .expect("getrusage");
    usage.minor_page_faults() as u64
}

/// Runs a child reader of `loc` (`refuse`: "EINVAL" to refuse MADV_POPULATE_READ, or
/// "none") and returns the minor faults its first pass took.
fn first_pass_faults(refuse: &str, loc: &RingLocation) -> u64 {
    let role = format!("{refuse}:{}", loc.path().display());
    let mut child = spawn_child_test("child_role", CHILD_ENV, &role, Stdio::piped());
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut faults = None;
    for line in lines {
        let line = line.unwrap();
        eprintln!("child: {line}");
        if let Some((_, n)) = line.split_once("@faults@") {
            faults = Some(n.trim().parse().unwrap());
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the child reader failed: {status}");
    faults.expect("the child said how many faults it took")
}

fn emulated() -> bool {
    if under_runner() {
        // qemu-user takes madvise() for advice and does not pass it on, and its page
        // faults are the emulator's: the kernel's behaviour is tested natively.
        eprintln!("skipped: under an emulator (${RUNNER_ENV})");
        return true;
    }
    false
}

#[test]
fn a_reader_reads_each_slot_the_first_time_without_faulting_it_in() {
    if std::env::var_os(CHILD_ENV).is_some() || emulated() {
        return;
    }
    let (_dir, _w, loc) = full_ring("first-pass");
    if huge_pages_kib_per_mapping(loc.path())
        .iter()
        .any(|&k| k > 0)
    {
        // A ring in 2 MiB pages faults a few times whatever the reader does.
        eprintln!("skipped: the ring's tmpfs gives it huge pages");
        return;
    }
    let populated = first_pass_faults("none", &loc);
    let refused = first_pass_faults("EINVAL", &loc);
    eprintln!("first pass over {PAGES} pages: {populated} faults populated, {refused} refused");
    // Faulted in as read, the kernel maps 16 pages a fault (fault-around, 64 KiB by
    // default): PAGES / 16. Populated at attach, none of the payload should fault.
    assert!(
        refused >= PAGES / 64,
        "a reader whose kernel cannot populate faults the payload in: {refused} faults"
    );
    assert!(
        populated < PAGES / 64,
        "populated at attach, the first pass took {populated} faults (refused: {refused})"
    );
}

#[test]
fn a_reader_of_a_sparse_ring_allocates_none_of_its_holes() {
    if std::env::var_os(CHILD_ENV).is_some() || emulated() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let (_dir, _w, loc) = full_ring("first-pass-sparse");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(loc.path())
        .unwrap();
    let ring = file.metadata().unwrap().len();
    // Half the ring made a hole again, as a hand-made or hostile file may be, and as
    // much again allocated past its end: the file has as many blocks as the ring.
    let (hole_at, hole_len) = (ring / 4, ring / 2);
    nix::fcntl::fallocate(
        &file,
        nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
            | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
        hole_at as i64,
        hole_len as i64,
    )
    .unwrap();
    nix::fcntl::fallocate(
        &file,
        nix::fcntl::FallocateFlags::empty(),
        ring as i64,
        hole_len as i64,
    )
    .unwrap();
    let blocks = || file.metadata().unwrap().blocks() * 512;
    let before = blocks();
    assert!(
        before >= ring,
        "the tail makes up for the hole: {before} bytes allocated, the ring is {ring}"
    );
    let mut follower = Follower::new(loc.clone(), StartAt::Newest);
    follower.open(&Interrupter::new().unwrap()).unwrap();
    assert_eq!(
        blocks(),
        before,
        "attaching allocated the file's holes ({} bytes)",
        blocks() - before
    );
    drop(follower);
}

/// KiB of this process's reader mapping of `loc` in its page tables once a reader has
/// attached as every element does (the follow policy), before it reads anything.
fn resident_after_attach(loc: &RingLocation) -> u64 {
    let mut follower = Follower::new(loc.clone(), StartAt::Newest);
    follower.open(&Interrupter::new().unwrap()).unwrap();
    let resident = resident_kib_of_read_only_mappings(loc.path());
    assert_eq!(resident.len(), 1, "one reader mapping: {resident:?}");
    resident[0]
}

#[test]
fn a_reader_maps_a_ring_whole_up_to_the_cap_and_a_larger_one_as_it_reads() {
    if std::env::var_os(CHILD_ENV).is_some() || emulated() {
        return;
    }
    let (_dir, _w, loc) = full_ring("first-pass-cap-under");
    let ring_kib = std::fs::metadata(loc.path()).unwrap().len() / 1024;
    let under = resident_after_attach(&loc);
    assert!(
        under >= ring_kib * 9 / 10,
        "a {ring_kib} KiB ring, under the cap, is mapped whole at attach: {under} KiB"
    );

    // Just over PREFAULT_MAX: two slots of half of it and 4 MiB more each. The writer
    // reserves every page of it (a GiB of memory, for the length of this test).
    let avail = nix::sys::statvfs::statvfs("/dev/shm")
        .map_or(0, |v| v.blocks_available() * v.fragment_size());
    if avail < 2 * PREFAULT_MAX {
        eprintln!("skipped the ring over the cap: /dev/shm has {avail} bytes free");
        return;
    }
    let dir = TestDir::new("first-pass-cap-over");
    let loc = dir.ring("r");
    let config = WriterConfig {
        slots: 2,
        max_frame: PREFAULT_MAX / 2 + (4 << 20),
        spares: 0,
        ..Default::default()
    };
    let mut w = RingWriter::create(&loc, &config).unwrap();
    w.write(&FrameMeta::default(), &[7u8; 4096]).unwrap();
    let big_kib = std::fs::metadata(loc.path()).unwrap().len() / 1024;
    assert!(big_kib * 1024 > PREFAULT_MAX, "{big_kib} KiB");
    let over = resident_after_attach(&loc);
    assert!(
        over < 4096,
        "a {big_kib} KiB ring, over the cap, is not mapped whole at attach: {over} KiB"
    );
}

#[test]
fn a_reader_of_a_ring_on_a_disk_reads_nothing_of_it_at_attach() {
    if std::env::var_os(CHILD_ENV).is_some() || emulated() {
        return;
    }
    // A ring directory on the build's own filesystem, as SHMRING_DIR may name one.
    let dir = TestDir::new_in(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")), "disk");
    let fs = nix::sys::statfs::statfs(&dir.path)
        .unwrap()
        .filesystem_type();
    if fs == nix::sys::statfs::TMPFS_MAGIC {
        eprintln!("skipped: {} is on tmpfs", dir.path.display());
        return;
    }
    let loc = dir.ring("r");
    let _w = write_full_ring(&loc);
    let ring_kib = std::fs::metadata(loc.path()).unwrap().len() / 1024;
    // The writer's pages are in the page cache: mapping them whole would read none from
    // the disk here, so only the reader's page tables tell whether it was tried. Reading
    // the ring's headers maps a few of them (2 MiB of this 24 MiB ring on ext4, whose
    // fault-around maps large folios whole).
    let resident = resident_after_attach(&loc);
    assert!(
        resident < ring_kib / 4,
        "a {ring_kib} KiB ring on a disk was mapped at attach: {resident} KiB"
    );
}

/// The child: `REFUSE:PATH` attaches to the ring at PATH (under a filter refusing
/// MADV_POPULATE_READ with EINVAL when REFUSE says so), reads every frame in it into
/// buffers already touched, checks each, and prints the faults the reads took.
#[test]
fn child_role() {
    let Some(role) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let role = role.into_string().unwrap();
    let (refuse, path) = role.split_once(':').unwrap();
    if refuse == "EINVAL" {
        refuse_madvise(libc::MADV_POPULATE_READ, libc::EINVAL);
    }
    let loc = RingLocation::parse(path, None).unwrap();
    let mut buffers: Vec<Vec<u8>> = (0..SLOTS).map(|_| vec![1u8; FRAME]).collect();
    // As every element and binding attaches: the follow policy's `attach`.
    let interrupter = Interrupter::new().unwrap();
    let mut reader = match attach(&loc, Duration::from_secs(5), &interrupter).unwrap() {
        Attach::Reader(r) => r,
        _ => panic!("the ring is live"),
    };
    reader.seek_after(0);
    let before = minor_faults();
    let mut read = Vec::new();
    for _ in 0..SLOTS {
        match reader
            .next(Duration::from_secs(5), |_| buffers.pop().unwrap())
            .unwrap()
        {
            Next::Frame(f) => read.push((f.info.seq, f.data)),
            other => panic!("expected a frame, got {other:?}"),
        }
    }
    let faults = minor_faults() - before;
    for (seq, data) in &read {
        check(data, *seq).unwrap_or_else(|at| panic!("frame {seq} wrong at byte {at}"));
    }
    assert_eq!(read.len(), SLOTS as usize);
    println!("@faults@ {faults}");
}
