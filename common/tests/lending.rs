//! Zero-copy writing: payload slots the writer lends to its own process, committed in
//! place only from their start and once, and how many may be set aside for it.

use shmring_common::testing::TestDir;
use shmring_common::*;

#[test]
fn only_the_start_of_a_lent_slot_commits_in_place() {
    let dir = TestDir::new("lent");
    let config = WriterConfig {
        slots: 2,
        max_frame: 4096,
        spares: 0,
        loans: 1,
        ..Default::default()
    };
    let mut w = RingWriter::create(&dir.ring("l"), &config).unwrap();
    let meta = FrameMeta::default();
    let loan = w.lender().lend(4096).unwrap();
    assert!(w.lender().lend(10).is_none(), "one slot to lend");
    // SAFETY: only the slices' addresses and lengths are used.
    let bytes = unsafe { loan.as_slice() };
    assert!(!w.is_lent(&bytes[1..]));
    assert_eq!(w.commit_in_place(&bytes[8..], &meta).unwrap(), None);
    assert_eq!(w.commit_in_place(&vec![0u8; 4096], &meta).unwrap(), None);
    assert_eq!(w.head(), 0, "nothing committed");
    assert_eq!(w.commit_in_place(&bytes[..100], &meta).unwrap(), Some(1));
    assert!(!w.is_lent(bytes), "committed once");
    assert_eq!(w.commit_in_place(bytes, &meta).unwrap(), None);
    w.write(&meta, &[7; 100]).unwrap();
    assert_eq!(w.counters(), (2, 0, 200, 1), "one of two frames in place");
    drop(loan);
    assert!(w.lender().lend(10).is_some(), "lendable again once let go");
}

#[test]
fn lease_and_pool_slots_together_stay_within_the_format() {
    let dir = TestDir::new("too-many");
    let config = WriterConfig {
        spares: 60,
        loans: 5,
        ..Default::default()
    };
    let err = RingWriter::create(&dir.ring("x"), &config).err().unwrap();
    assert!(
        err.to_string().contains("60 lease slots and 5 pool slots"),
        "{err}"
    );
}
