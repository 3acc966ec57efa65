//! The ring of units: placement in the arena, keyframes, and the seqlock under a
//! writer that overwrites what a reader copies.

use super::*;
use crate::testing::{check, fill, TestDir};
use crate::RingReader;
use std::sync::atomic::{AtomicBool, AtomicU64};

const SECOND: u64 = 1_000_000_000;

/// A ring of units with the smallest arena (`MIN_ARENA`) and `seconds` × 30 fps units.
fn unit_ring(dir: &TestDir, name: &str, seconds: u64) -> UnitWriter {
    let sizing = UnitSizing {
        history_ns: seconds * SECOND,
        bitrate: 1,
        fps: 30.0,
    };
    UnitWriter::create(&dir.ring(name), &sizing, 0o600, Some("video/x-h264".into())).unwrap()
}

/// Unit `seq`'s metadata: a keyframe every `gop` units, captured at `seq` × 10 ms.
fn meta(seq: u64, gop: u64) -> FrameMeta {
    FrameMeta {
        captured_at_ns: Some(1_000 * SECOND + seq * 10_000_000),
        flags: if (seq - 1).is_multiple_of(gop) {
            0
        } else {
            DELTA_UNIT_FLAG
        },
        ..Default::default()
    }
}

/// Unit `seq`'s bytes: a size that varies with seq, filled with its pattern.
fn unit(seq: u64, base: usize) -> Vec<u8> {
    let mut v = vec![0; base + (seq as usize * 7919) % base];
    fill(&mut v, seq);
    v
}

fn read(r: &mut RingReader) -> Frame<Vec<u8>> {
    match r
        .next_unit(Duration::from_secs(5), |i| vec![0; i.len as usize])
        .unwrap()
    {
        Next::Frame(f) => f,
        other => panic!("no unit: {:?}", other.map(|_| ())),
    }
}

#[test]
fn sixty_seconds_of_720p_at_2_mbit_fit_well_under_64_mib() {
    let g = UnitSizing {
        history_ns: 60 * SECOND,
        bitrate: 2_000_000,
        fps: 30.0,
    }
    .geometry()
    .unwrap();
    assert_eq!(g.kind, RingKind::Units);
    assert!(
        g.slot_stride >= 15_000_000,
        "60 s × 2 Mbit/s is 15 MB: {g:?}"
    );
    assert!(g.total_size < 32 << 20, "{} bytes", g.total_size);
    assert!(u64::from(g.slot_count) >= 60 * 30, "{g:?}");
}

#[test]
fn only_h264_and_h265_caps_are_units() {
    assert_eq!(
        codec_of("video/x-h264, stream-format=(string)avc"),
        Some("h264")
    );
    assert_eq!(codec_of("video/x-h265"), Some("h265"));
    for other in ["video/x-raw, format=(string)I420", "video/x-h2645", "", ","] {
        assert_eq!(codec_of(other), None, "{other}");
    }
}

#[test]
fn sizing_refuses_what_a_ring_cannot_hold() {
    for (history_s, bitrate, fps) in [
        (60, 2_000_000, 0.0),
        (60, 2_000_000, f64::NAN),
        (3600, 2_000_000, 30.0),           // 135 000 units
        (60, u64::MAX, 30.0),              // beyond MAX_SLOT_SIZE
        (u64::MAX / SECOND, 1_000, 1e-12), // huge history, tiny rate
    ] {
        let sizing = UnitSizing {
            history_ns: history_s * SECOND,
            bitrate,
            fps,
        };
        assert!(sizing.geometry().is_err(), "{sizing:?}");
    }
}

#[test]
fn units_of_every_size_come_back_in_order_from_a_keyframe() {
    let dir = TestDir::new("units-order");
    let mut w = unit_ring(&dir, "u", 10);
    let mut r = RingReader::open(&dir.ring("u")).unwrap();
    assert!(r.holds_units());
    for seq in 1..=25 {
        assert_eq!(
            w.write(&meta(seq, 10), &unit(seq, 20_000)).unwrap(),
            Some(seq)
        );
    }
    // A fresh reader starts at the newest keyframe (21), then every unit.
    for want in 21..=25 {
        let f = read(&mut r);
        assert_eq!(f.info.seq, want);
        assert_eq!(f.info.keyframe_seq, 21);
        assert_eq!(is_keyframe(&f.info), want == 21);
        assert_eq!(check(&f.data, want), Ok(()));
        assert_eq!(f.data.len(), unit(want, 20_000).len());
    }
    w.write(&meta(26, 10), &[]).unwrap(); // an empty unit is a unit too
    assert_eq!(read(&mut r).data.len(), 0);
}

#[test]
fn the_arena_wraps_and_overwritten_units_are_gone_never_torn() {
    let dir = TestDir::new("units-wrap");
    let mut w = unit_ring(&dir, "u", 60);
    let r = RingReader::open(&dir.ring("u")).unwrap();
    let arena = w.arena();
    let size = 300_000;
    let count = 3 * arena / size as u64;
    for seq in 1..=count {
        w.write(&meta(seq, 5), &unit(seq, size / 2)).unwrap();
    }
    let mut held = 0;
    let mut bytes = 0;
    for seq in 1..=count {
        if let Some(info) = r.peek(seq).unwrap() {
            held += 1;
            bytes += info.len;
            assert!(info.payload_at + info.len <= arena);
            let mut v = vec![0; info.len as usize];
            match r.copy(seq, &mut |_| std::mem::take(&mut v)).unwrap() {
                Copy::Ok(_, data) => assert_eq!(check(&data, seq), Ok(()), "unit {seq}"),
                _ => panic!("unit {seq} peeked but not copied"),
            }
        } else {
            assert!(held == 0, "unit {seq} gone after a held one");
        }
    }
    assert!(
        held > 0 && bytes <= arena && bytes > arena / 2,
        "{held} units, {bytes} bytes"
    );
    // A keyframe larger than the arena: it and the units that depend on it are
    // dropped, until the next keyframe.
    let too_big = vec![0; arena as usize + 1];
    let next = (count / 5 + 1) * 5 + 1; // after count, and a keyframe: (next - 1) % 5 == 0
    assert!(matches!(
        w.write(&meta(next, 5), &too_big),
        Err(Error::FrameTooLarge { .. })
    ));
    for seq in next + 1..next + 5 {
        assert_eq!(
            w.write(&meta(seq, 5), b"delta").unwrap(),
            None,
            "unit {seq}"
        );
    }
    assert!(w.write(&meta(next + 5, 5), b"key").unwrap().is_some());
}

#[test]
fn the_keyframe_for_a_moment_is_found_as_a_scan_would_find_it() {
    let dir = TestDir::new("units-index");
    let mut w = unit_ring(&dir, "u", 30);
    let r = RingReader::open(&dir.ring("u")).unwrap();
    assert_eq!(r.keyframe_for(0).unwrap(), None);
    // Enough 40 kB units to wrap the 4 MiB arena: the oldest GOPs are gone.
    let count = 400;
    for seq in 1..=count {
        w.write(&meta(seq, 12), &unit(seq, 20_000)).unwrap();
    }
    let held: Vec<FrameInfo> = (1..=count).filter_map(|s| r.peek(s).unwrap()).collect();
    let oldest_key = held.iter().find(|i| is_keyframe(i)).unwrap().seq;
    assert!(held[0].seq > 1, "the arena wrapped");
    for t in (0..=count + 5).map(|s| 1_000 * SECOND + s * 10_000_000 + 3) {
        let scan = held
            .iter()
            .rev()
            .find(|i| i.captured_at_ns <= t)
            .and_then(|i| r.peek(i.keyframe_seq).unwrap())
            .filter(is_keyframe)
            .map_or(oldest_key, |k| k.seq);
        assert_eq!(r.keyframe_for(t).unwrap(), Some(scan), "moment {t}");
    }
    // Capture times never go back in a ring of units, whatever the writer is told.
    let back = FrameMeta {
        captured_at_ns: Some(5),
        ..meta(count + 1, 12)
    };
    w.write(&back, b"x").unwrap();
    assert!(
        r.peek(count + 1).unwrap().unwrap().captured_at_ns >= held.last().unwrap().captured_at_ns
    );
}

#[test]
fn a_reader_that_falls_behind_jumps_to_the_newest_keyframe_and_counts_it() {
    let dir = TestDir::new("units-behind");
    let mut w = unit_ring(&dir, "u", 2); // 77 units
    let mut r = RingReader::open(&dir.ring("u")).unwrap();
    w.write(&meta(1, 10), &unit(1, 100)).unwrap();
    assert_eq!(read(&mut r).info.seq, 1);
    for seq in 2..=200 {
        w.write(&meta(seq, 10), &unit(seq, 100)).unwrap();
    }
    let f = read(&mut r);
    assert_eq!(f.info.seq, 191, "the newest keyframe");
    assert!(is_keyframe(&f.info));
    assert_eq!(f.missed, 189);
    assert_eq!(read(&mut r).info.seq, 192);
}

#[test]
fn a_unit_claimed_and_lost_in_its_copy_is_followed_by_a_keyframe_only() {
    let dir = TestDir::new("units-claim-torn");
    let mut w = unit_ring(&dir, "u", 2); // 77 units
    let mut r = RingReader::open(&dir.ring("u")).unwrap();
    let gop = 1000; // 1 is the only keyframe until 80
    w.write(&meta(1, gop), &unit(1, 100)).unwrap();
    assert_eq!(read(&mut r).info.seq, 1);
    for seq in 2..=5 {
        w.write(&meta(seq, gop), &unit(seq, 100)).unwrap();
    }
    let Next::Frame(f) = r.take_unit(Duration::ZERO).unwrap() else {
        panic!("unit 2 is there");
    };
    let (claim, epoch) = (f.data, f.info.epoch);
    assert_eq!(f.info.seq, 2);
    // 79 takes unit 2's descriptor (and 78 keyframe 1's); 3 to 77 are still held.
    for seq in 6..=79 {
        w.write(&meta(seq, gop), &unit(seq, 100)).unwrap();
    }
    let alloc = &mut |i: &FrameInfo| vec![0u8; i.len as usize];
    assert!(claim.copy(r.location(), alloc).unwrap().is_none(), "torn");
    r.claim_torn(2, epoch, f.missed);
    // No keyframe held: nothing, however often it is asked, never unit 3.
    for _ in 0..3 {
        match r.take_unit(Duration::ZERO).unwrap() {
            Next::TimedOut => {}
            Next::Frame(f) => panic!("unit {} after a lost unit, before a keyframe", f.info.seq),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    let keyframe = FrameMeta {
        flags: 0,
        ..meta(80, gop)
    };
    w.write(&keyframe, &unit(80, 100)).unwrap();
    let f = read(&mut r);
    assert_eq!(f.info.seq, 80);
    assert_eq!(f.missed, 78, "2 to 79, the lost claim included");
    assert_eq!(
        read_after(&mut r, &mut w, 81, gop).info.seq,
        81,
        "then in order"
    );
}

/// Writes unit `seq` and reads the next.
fn read_after(r: &mut RingReader, w: &mut UnitWriter, seq: u64, gop: u64) -> Frame<Vec<u8>> {
    w.write(&meta(seq, gop), &unit(seq, 100)).unwrap();
    read(r)
}

#[test]
fn a_sought_unit_is_where_reading_starts_even_the_first() {
    let dir = TestDir::new("units-seek");
    let mut w = unit_ring(&dir, "u", 10);
    let mut r = RingReader::open(&dir.ring("u")).unwrap();
    for seq in 1..=30 {
        w.write(&meta(seq, 10), &unit(seq, 100)).unwrap();
    }
    let k = r.keyframe_for(1_000 * SECOND + 5 * 10_000_000).unwrap();
    assert_eq!(k, Some(1));
    r.seek_to_unit(1);
    for want in 1..=12 {
        assert_eq!(read(&mut r).info.seq, want);
    }
    r.seek_after(0);
    assert_eq!(read(&mut r).info.seq, 21, "seek_after(0) is a fresh start");
}

#[test]
fn a_reader_racing_a_writer_that_laps_it_never_returns_a_torn_unit() {
    let dir = TestDir::new("units-race");
    let mut w = unit_ring(&dir, "u", 1);
    let mut r = RingReader::open(&dir.ring("u")).unwrap();
    let stop = AtomicBool::new(false);
    let written = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut seq = 1;
            while !stop.load(Ordering::Relaxed) {
                // 50 kB to 1 MB units: a 4 MiB arena wraps every few units.
                w.write(
                    &meta(seq, 4),
                    &unit(seq, 50_000 + (seq as usize % 10) * 50_000),
                )
                .unwrap();
                written.store(seq, Ordering::Relaxed);
                seq += 1;
            }
        });
        let (mut units, mut jumps) = (0, 0);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let f = read(&mut r);
            assert_eq!(check(&f.data, f.info.seq), Ok(()), "unit {}", f.info.seq);
            if f.missed > 0 {
                jumps += 1;
                assert!(is_keyframe(&f.info), "a jump lands on a keyframe");
            }
            units += 1;
        }
        stop.store(true, Ordering::Relaxed);
        assert!(units > 10, "{units} units read, {jumps} jumps");
    });
    assert!(written.load(Ordering::Relaxed) > 10);
}

/// Writes `value` over the u64 at `offset` of the ring file (a hostile process).
fn poke(dir: &TestDir, name: &str, offset: u64, value: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.ring(name).path())
        .unwrap();
    f.write_all_at(&value.to_le_bytes(), offset).unwrap();
}

#[test]
fn hostile_rings_of_units_are_errors_that_say_what_never_a_panic() {
    let dir = TestDir::new("units-hostile");
    let desc = |seq: u64, field: u64| DESCRIPTOR_OFFSET + (seq % 77) * DESCRIPTOR_SIZE + field;
    let mut w = unit_ring(&dir, "u", 2);
    for seq in 1..=20 {
        w.write(&meta(seq, 5), &unit(seq, 100)).unwrap();
    }
    let r = RingReader::open(&dir.ring("u")).unwrap();
    let arena = w.arena();
    // A unit placed past the arena's end.
    poke(&dir, "u", desc(20, 136), arena - 10);
    let e = r.peek(20).unwrap_err().to_string();
    assert!(e.contains("payload of") && e.contains("frame 20"), "{e}");
    // A keyframe after the unit that depends on it.
    poke(&dir, "u", desc(20, 136), 0);
    poke(&dir, "u", desc(20, 144), 21);
    let e = r.peek(20).unwrap_err().to_string();
    assert!(e.contains("keyframe 21 comes after it"), "{e}");
    // Units claiming keyframes that are not: found out, never followed.
    poke(&dir, "u", desc(20, 144), 19); // 19 is a delta unit
    poke(&dir, "u", desc(19, 144), 19); // ... claiming to be its own keyframe
    assert!(r.newest_keyframe().unwrap().is_none(), "19 is a delta unit");
    assert_eq!(
        r.keyframe_for(u64::MAX).unwrap(),
        None,
        "no real one from 20 on"
    );
    let at_12 = 1_000 * SECOND + 12 * 10_000_000;
    assert_eq!(
        r.keyframe_for(at_12).unwrap(),
        Some(11),
        "GOPs not poked are whole"
    );
    // A ring of another kind, or an arena that is two slots.
    drop(r);
    poke(&dir, "u", 152, 7);
    let e = RingReader::open(&dir.ring("u")).err().unwrap().to_string();
    assert!(e.contains("ring kind 7"), "{e}");
    poke(&dir, "u", 152, 1);
    poke(&dir, "u", 136, 2 << 32 | 4096); // payload_count 2 (reader_table_len kept)
    let e = RingReader::open(&dir.ring("u")).err().unwrap().to_string();
    assert!(e.contains("2 payload slots in a ring of units"), "{e}");
}

#[test]
fn stats_say_the_bit_rate_gop_and_history_held() {
    let dir = TestDir::new("units-stats");
    let mut w = unit_ring(&dir, "u", 30);
    let r = RingReader::open(&dir.ring("u")).unwrap();
    assert_eq!(r.unit_stats().unwrap(), Some(UnitStats::default()));
    // 1000-byte units every 10 ms: 800 kbit/s; a keyframe every 12.
    for seq in 1..=100 {
        w.write(&meta(seq, 12), &[seq as u8; 1000]).unwrap();
    }
    let s = r.unit_stats().unwrap().unwrap();
    assert!((s.bitrate - 800_000.0).abs() < 1.0, "{s:?}");
    assert_eq!(s.gop, Some(12));
    assert_eq!((s.units, s.history_ns), (100, 99 * 10_000_000));
    let frames = TestDir::new("units-stats-frames");
    let _f = RingWriter::create(&frames.ring("f"), &WriterConfig::default()).unwrap();
    let rf = RingReader::open(&frames.ring("f")).unwrap();
    assert_eq!(rf.unit_stats().unwrap(), None);
}

#[test]
fn a_unit_the_writer_ended_is_gone_for_every_way_of_reading() {
    let dir = TestDir::new("units-gone");
    let mut w = unit_ring(&dir, "u", 60);
    let mut r = RingReader::open(&dir.ring("u")).unwrap();
    // 1 MB units: the 4 MiB arena holds the last few, their descriptors many more.
    for seq in 1..=12 {
        w.write(&meta(seq, 3), &unit(seq, 1 << 19)).unwrap();
    }
    assert!(r.peek(1).unwrap().is_none());
    let handle = crate::Handle {
        ring: "u".into(),
        epoch: r.epoch(),
        seq: 1,
    };
    let got = r.by_handle(&handle, |i| vec![0; i.len as usize]).unwrap();
    assert!(matches!(got, crate::ByHandle::Gone), "not 'not yet'");
    // In order from the oldest: lapped, not a corrupt ring.
    r.seek_after(0);
    match r.next(Duration::ZERO, |i| vec![0; i.len as usize]).unwrap() {
        Next::Frame(f) => assert_eq!(check(&f.data, f.info.seq), Ok(())),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // A session reads units from a keyframe.
    let s = crate::session::Session::open(dir.ring("u"), false).unwrap();
    match s
        .read(crate::session::ReadMode::Next, None, || false)
        .unwrap()
    {
        crate::session::Read::Frame(f) => assert!(is_keyframe(&f.info), "{:?}", f.info),
        _ => panic!("no unit"),
    }
}

#[test]
fn empty_units_at_the_arena_end_and_a_hostile_head_are_handled() {
    let dir = TestDir::new("units-edges");
    let mut w = unit_ring(&dir, "u", 60);
    let r = RingReader::open(&dir.ring("u")).unwrap();
    let arena = w.arena() as usize;
    // Fill to one byte short of the end, then empty units, then a wrap.
    w.write(&meta(1, 1), &vec![1; arena - 1]).unwrap();
    w.write(&meta(2, 1), &[]).unwrap();
    w.write(&meta(3, 1), &[]).unwrap(); // no room for its byte: wraps, ends 1
    w.write(&meta(4, 1), &unit(4, 1000)).unwrap();
    assert!(r.peek(1).unwrap().is_none(), "its first byte went to 3");
    assert_eq!(r.peek(2).unwrap().unwrap().payload_at, arena as u64 - 1);
    assert_eq!(r.peek(3).unwrap().unwrap().payload_at, 0);
    assert_eq!(r.peek(4).unwrap().unwrap().payload_at, 1);
    // A writer's ring replaced by a ring of frames takes no more units.
    w.ring_mut().replace(&WriterConfig::default()).unwrap();
    assert!(w.write(&meta(5, 1), b"x").is_err());
    drop(w);

    // A head at the largest sequence, and its descriptor committed there.
    let mut w = unit_ring(&dir, "h", 2);
    w.write(&meta(1, 1), b"k").unwrap();
    let mut r = RingReader::open(&dir.ring("h")).unwrap();
    assert_eq!(read(&mut r).info.seq, 1);
    poke(&dir, "h", 88, MAX_SEQ); // head
    let slot = MAX_SEQ % 77;
    poke(
        &dir,
        "h",
        DESCRIPTOR_OFFSET + slot * DESCRIPTOR_SIZE,
        committed(MAX_SEQ),
    );
    poke(
        &dir,
        "h",
        DESCRIPTOR_OFFSET + slot * DESCRIPTOR_SIZE + 144,
        MAX_SEQ,
    );
    r.seek_to_unit(MAX_SEQ);
    let f = read(&mut r);
    assert_eq!(f.info.seq, MAX_SEQ);
    let again = r.next_unit(Duration::from_millis(50), |i| vec![0; i.len as usize]);
    assert!(
        matches!(again, Ok(Next::TimedOut)) || again.is_err(),
        "the same unit twice: {:?}",
        again.map(|n| n.map(|_| ()))
    );
    assert!(r.keyframe_for(u64::MAX).is_ok());
    assert!(r.unit_stats().is_ok());
}

#[test]
fn a_ring_sized_for_an_unknown_rate_always_fits_whatever_the_history() {
    // Histories whose units land on the limit after rounding: 200 to 800 s, 0.1 s
    // apart, and odd nanoseconds between.
    for tenth in 2000..8000u64 {
        for extra_ns in [0, 7_332_599] {
            let history_ns = tenth * 100_000_000 + extra_ns;
            let sizing = UnitSizing {
                history_ns,
                bitrate: 1_000_000,
                fps: UnitSizing::rate_unknown(history_ns),
            };
            let g = sizing
                .geometry()
                .unwrap_or_else(|e| panic!("{history_ns} ns at {} fps: {e}", sizing.fps));
            assert!(g.slot_count <= MAX_UNITS, "{history_ns} ns");
        }
    }
    assert_eq!(UnitSizing::rate_unknown(30_000_000_000), 120.0);
    assert_eq!(UnitSizing::rate_unknown(3_600_000_000_000), 30.0);
}
