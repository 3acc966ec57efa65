//! Copying frames into ring slots, around the cache when the ring is larger than it.
//!
//! A writer fills the slot that was written longest ago. When the ring's slots
//! together are larger than the last-level cache, that slot's lines left the cache long
//! ago, and an ordinary copy first reads every destination line from memory (a read
//! for ownership) before overwriting it: the writer then cost 1.2 times shmsink's,
//! which rewrites a block its reader has just released. Non-temporal stores write
//! whole lines straight to memory without reading them first; the first reader of
//! each frame then reads it from memory instead. The trade-off, measured, is in
//! `docs/design.md` ("Writing around the cache").

use std::sync::OnceLock;

/// Whether a ring whose slots take `footprint` bytes (the payloads the writer cycles
/// through, not the lease spares) is written with non-temporal stores: when it is
/// larger than half the last-level cache (the other half is left to the frame's
/// source, the readers and everything else).
pub(crate) fn bypass_cache_for(footprint: u64) -> bool {
    cfg!(target_arch = "x86_64") && footprint > last_level_cache_bytes() / 2
}

/// The size of the largest CPU cache, from sysfs; 8 MiB where it cannot be read.
pub(crate) fn last_level_cache_bytes() -> u64 {
    static SIZE: OnceLock<u64> = OnceLock::new();
    *SIZE.get_or_init(|| {
        let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
        let read = |p: std::path::PathBuf| std::fs::read_to_string(p).ok();
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let level: u32 = read(e.path().join("level"))?.trim().parse().ok()?;
                let size = parse_cache_size(&read(e.path().join("size"))?)?;
                Some((level, size))
            })
            .max()
            .map_or(8 << 20, |(_, size)| size)
    })
}

/// "32768K", "1M", "512": sysfs's way of writing a cache size.
fn parse_cache_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let n: u64 = digits.parse().ok()?;
    match unit {
        "" => Some(n),
        "K" => n.checked_mul(1 << 10),
        "M" => n.checked_mul(1 << 20),
        "G" => n.checked_mul(1 << 30),
        _ => None,
    }
}

/// Copies `src` into `dst` (of equal length) with non-temporal stores where the target
/// has them; elsewhere, an ordinary copy. The stores are weakly ordered: call
/// `store_fence()` before anything that publishes `dst`.
pub(crate) fn copy_nontemporal(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy_nontemporal: lengths differ");
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        const LANE: usize = 16;
        let head = dst.as_ptr().align_offset(LANE).min(dst.len());
        let (dst_head, dst_body) = dst.split_at_mut(head);
        let (src_head, src_body) = src.split_at(head);
        dst_head.copy_from_slice(src_head);
        let mut d = dst_body.chunks_exact_mut(LANE);
        let mut s = src_body.chunks_exact(LANE);
        for (d, s) in (&mut d).zip(&mut s) {
            // SAFETY: `s` and `d` are LANE valid bytes each (chunks_exact), and `d` is
            // LANE-aligned: dst_body starts aligned and every chunk is LANE long, as
            // movntdq needs. SSE2 is part of the x86_64 baseline. The caller fences
            // (store_fence) before the bytes are published.
            unsafe {
                let v = _mm_loadu_si128(s.as_ptr().cast::<__m128i>());
                _mm_stream_si128(d.as_mut_ptr().cast::<__m128i>(), v);
            }
        }
        d.into_remainder().copy_from_slice(s.remainder());
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// Orders every non-temporal store before it ahead of the stores after it (sfence).
/// A Release store alone does not order non-temporal stores on x86.
pub(crate) fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence has no preconditions; SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nontemporal_copy_equals_the_source_at_every_alignment_and_length() {
        let src: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut buf = vec![0u8; 4096 + 64];
        for offset in 0..33 {
            for len in (0..300).chain([1000, 4000]) {
                buf.fill(0xAA);
                let s = &src[offset % 5..offset % 5 + len];
                copy_nontemporal(&mut buf[offset..offset + len], s);
                store_fence();
                assert_eq!(&buf[offset..offset + len], s, "offset {offset} len {len}");
                assert!(
                    buf[..offset].iter().all(|&b| b == 0xAA),
                    "before, offset {offset} len {len}"
                );
                assert!(
                    buf[offset + len..].iter().all(|&b| b == 0xAA),
                    "after, offset {offset} len {len}"
                );
            }
        }
    }

    #[test]
    fn cache_sizes_as_sysfs_writes_them() {
        assert_eq!(parse_cache_size("32768K\n"), Some(32 << 20));
        assert_eq!(parse_cache_size("1M"), Some(1 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("12Q"), None);
        assert_eq!(parse_cache_size(""), None);
        assert_eq!(parse_cache_size("99999999999999999999K"), None);
    }

    #[test]
    fn large_rings_bypass_the_cache_and_small_ones_do_not() {
        let llc = last_level_cache_bytes();
        assert!(llc >= 1 << 10, "a cache of {llc} bytes");
        assert!(!bypass_cache_for(llc / 4));
        assert_eq!(bypass_cache_for(llc), cfg!(target_arch = "x86_64"));
    }
}
