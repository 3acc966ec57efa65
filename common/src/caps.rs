//! Caps versions: the caps string the writer publishes with the ring, and reading it back.
//!
//! Two caps slots alternate (version & 1), each guarded by a commit word as a frame's
//! slot is, so a reader holding a frame of caps version v can still read v's text after
//! the writer has published v + 1 (see `CapsSlot`).

use std::sync::atomic::{fence, Ordering};

use crate::error::{Error, Result};
use crate::layout::*;
use crate::reader::{RingReader, MAX_TORN_RETRIES};

/// Publishes `caps` as the ring's next caps version; returns that version.
pub(crate) fn publish_caps(sb: &Superblock, caps: &str) -> Result<u32> {
    let bytes = caps.as_bytes();
    if bytes.len() > CAPS_CAPACITY {
        return Err(Error::CapsTooLong {
            len: bytes.len(),
            capacity: CAPS_CAPACITY,
        });
    }
    // Relaxed: only this writer stores caps_version.
    let version = sb
        .caps_version
        .load(Ordering::Relaxed)
        .wrapping_add(1)
        .max(1);
    let slot = &sb.caps[(version & 1) as usize];
    slot.commit
        .store(writing(u64::from(version)), Ordering::Relaxed);
    // Pairs with the reader's Acquire fence after copying the caps words.
    fence(Ordering::Release);
    slot.len.store(bytes.len() as u32, Ordering::Relaxed);
    for (i, word) in slot.words.iter().enumerate() {
        let mut w = [0u8; 8];
        let start = (i * 8).min(bytes.len());
        let end = (start + 8).min(bytes.len());
        w[..end - start].copy_from_slice(&bytes[start..end]);
        word.store(u64::from_le_bytes(w), Ordering::Relaxed);
        if end == bytes.len() && start == end {
            break;
        }
    }
    // Release: pairs with the reader's Acquire load of the caps slot's commit word.
    slot.commit
        .store(committed(u64::from(version)), Ordering::Release);
    // Release: pairs with the reader's Acquire load of caps_version.
    sb.caps_version.store(version, Ordering::Release);
    Ok(version)
}

impl RingReader {
    /// Caps text of caps version `version`; None when it has been overwritten by a
    /// later version already (the frame is stale) or was never published.
    pub fn caps(&self, version: u32) -> Result<Option<String>> {
        self.check_mapped()?; // a truncated ring has no caps, not "none yet"
        if version == 0 {
            return Ok(None);
        }
        let slot = &self.map.superblock().caps[(version & 1) as usize];
        for _ in 0..MAX_TORN_RETRIES {
            // Acquire: pairs with the writer's Release store of the caps commit word.
            let c1 = slot.commit.load(Ordering::Acquire);
            if c1 != committed(u64::from(version)) {
                return Ok(None);
            }
            // Relaxed loads of the caps slot: validated by the commit re-check below.
            let len = slot.len.load(Ordering::Relaxed) as usize;
            if len > CAPS_CAPACITY {
                return Err(Error::corrupt(
                    self.loc.path(),
                    format!("caps length {len} > {CAPS_CAPACITY}"),
                ));
            }
            let mut bytes = Vec::with_capacity(len + 8);
            for w in slot.words.iter().take(len.div_ceil(8)) {
                bytes.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
            }
            bytes.truncate(len);
            // Pairs with the writer's Release fence after it marks the slot as writing.
            fence(Ordering::Acquire);
            if slot.commit.load(Ordering::Relaxed) != c1 {
                continue;
            }
            return String::from_utf8(bytes).map(Some).map_err(|_| {
                Error::corrupt(
                    self.loc.path(),
                    format!("caps version {version} is not UTF-8"),
                )
            });
        }
        Ok(None)
    }

    /// The latest caps version and its text.
    pub fn current_caps(&self) -> Result<Option<(u32, String)>> {
        // Acquire: pairs with the writer's Release store of caps_version.
        let v = self.map.superblock().caps_version.load(Ordering::Acquire);
        Ok(self.caps(v)?.map(|c| (v, c)))
    }
}
