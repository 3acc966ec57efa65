//! Arbitrary bytes as a ring file: opening and reading must give an error or a frame,
//! never a panic or an out-of-bounds access.

use std::time::Duration;

use proptest::prelude::*;
use shmring_common::testing::TestDir;
use shmring_common::*;

fn try_everything(dir: &TestDir, bytes: &[u8]) {
    let path = dir.path.join("f.ring");
    std::fs::write(&path, bytes).unwrap();
    let loc = dir.ring("f");
    if let Ok(mut r) = RingReader::open(&loc) {
        let _ = r.current_caps();
        for v in 0..4 {
            let _ = r.caps(v);
        }
        let alloc = |i: &FrameInfo| vec![0u8; i.len as usize];
        let _ = r.latest(Duration::ZERO, alloc);
        let _ = r.next(Duration::ZERO, alloc);
        for seq in [1, 2, 3, u64::MAX / 4] {
            let h = Handle {
                ring: "f".into(),
                epoch: r.epoch(),
                seq,
            };
            let _ = r.by_handle(&h, alloc);
        }
        let _ = r.writer_status();
        let _ = r.readers();
        // The zero-copy paths, where the file lets this process write its reader table.
        if r.enable_zero_copy().unwrap_or(false) {
            let _ = r.latest_zero_copy(Duration::ZERO, alloc);
            let _ = r.next_zero_copy(Duration::ZERO, alloc);
            let _ = r.readers();
        }
    }
}

/// A valid ring's bytes, to mutate.
fn valid_ring(dir: &TestDir) -> Vec<u8> {
    let loc = dir.ring("seed");
    let mut w = RingWriter::create(
        &loc,
        &WriterConfig {
            slots: 2,
            max_frame: 4096,
            caps: Some("video/x-raw".into()),
            ..Default::default()
        },
    )
    .unwrap();
    for i in 0..3u8 {
        w.write(&FrameMeta::default(), &[i; 100]).unwrap();
    }
    std::fs::read(loc.path()).unwrap()
}

proptest! {
    // Cases: $PROPTEST_CASES (256 by default); CI raises it for a longer, bounded run.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn random_files_never_crash_a_reader(bytes in proptest::collection::vec(any::<u8>(), 0..20_000)) {
        let dir = TestDir::new("fuzz-rand");
        try_everything(&dir, &bytes);
    }

    #[test]
    fn mutated_rings_never_crash_a_reader(
        edits in proptest::collection::vec((0usize..20_480, any::<u64>()), 1..12),
        cut in proptest::option::of(0usize..20_480),
    ) {
        let dir = TestDir::new("fuzz-mut");
        let mut bytes = valid_ring(&dir);
        for (at, v) in edits {
            let at = (at % bytes.len()) & !7;
            let n = (bytes.len() - at).min(8);
            bytes[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
        if let Some(c) = cut {
            bytes.truncate(c.min(bytes.len()));
        }
        try_everything(&dir, &bytes);
    }
}

/// A ring whose `head` a hostile or broken writer set to `head`: what the readers make
/// of it, and how long they take.
fn read_with_head(head: u64) -> Vec<(String, std::result::Result<String, String>)> {
    let dir = TestDir::new("hostile-head");
    let loc = dir.ring("h");
    let mut w = RingWriter::create(
        &loc,
        &WriterConfig {
            slots: 4,
            max_frame: 64,
            ..Default::default()
        },
    )
    .unwrap();
    w.write(&FrameMeta::default(), &[1; 64]).unwrap();
    let mut bytes = std::fs::read(loc.path()).unwrap();
    bytes[88..96].copy_from_slice(&head.to_le_bytes()); // Superblock::head
    std::fs::write(dir.path.join("copy.ring"), &bytes).unwrap();
    drop(w);
    let loc = dir.ring("copy");
    let alloc = |i: &FrameInfo| vec![0u8; i.len as usize];
    let mut outcomes = vec![];
    let mut r = RingReader::open(&loc).unwrap();
    let t = std::time::Instant::now();
    outcomes.push((
        "latest".into(),
        r.latest(Duration::from_secs(5), alloc)
            .map(|n| format!("{n:?}"))
            .map_err(|e| e.to_string()),
    ));
    let mut r = RingReader::open(&loc).unwrap();
    r.seek_after(head.saturating_sub(1));
    outcomes.push((
        "next".into(),
        r.next(Duration::from_secs(5), alloc)
            .map(|n| format!("{n:?}"))
            .map_err(|e| e.to_string()),
    ));
    let mut r = RingReader::open(&loc).unwrap();
    r.seek_after(u64::MAX);
    outcomes.push((
        "next after u64::MAX".into(),
        r.next(Duration::ZERO, alloc)
            .map(|n| format!("{n:?}"))
            .map_err(|e| e.to_string()),
    ));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the readers spun on head {head} for {:?}",
        t.elapsed()
    );
    outcomes
}

#[test]
fn a_head_ahead_of_every_commit_is_a_corrupt_ring_at_once() {
    for head in [3, 1000, u64::MAX >> 1, (u64::MAX >> 1) + 1, u64::MAX] {
        for (what, outcome) in read_with_head(head) {
            match outcome {
                Err(e) => assert!(e.contains("corrupt"), "head {head}, {what}: {e}"),
                Ok(n) => assert!(
                    !n.starts_with("Frame"),
                    "head {head}, {what}: a frame from a slot that does not hold it: {n}"
                ),
            }
        }
    }
}
