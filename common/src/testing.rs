//! Helpers for tests of programs that use rings: private ring directories and frame
//! patterns that let a reader check every byte of every frame.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::RingLocation;

/// A fresh private ring directory, removed when dropped.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = PathBuf::from(format!(
            "/dev/shm/shmring-test-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        TestDir { path }
    }

    pub fn ring(&self, name: &str) -> RingLocation {
        RingLocation::parse(name, Some(&self.path)).unwrap()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Fills `buf` with frame `seq`'s pattern: every 8-byte word is a function of the
/// sequence and its position, so any mix of two frames is detected.
pub fn fill(buf: &mut [u8], seq: u64) {
    let words = buf.len() / 8;
    for i in 0..words {
        let v = pattern_word(seq, i as u64);
        buf[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    for (j, b) in buf[words * 8..].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_add(j as u8);
    }
}

fn pattern_word(seq: u64, i: u64) -> u64 {
    seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// Checks that `buf` is exactly frame `seq`'s pattern; returns the first bad offset.
pub fn check(buf: &[u8], seq: u64) -> Result<(), usize> {
    let words = buf.len() / 8;
    for i in 0..words {
        let v = u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
        if v != pattern_word(seq, i as u64) {
            return Err(i * 8);
        }
    }
    for (j, b) in buf[words * 8..].iter().enumerate() {
        if *b != (seq as u8).wrapping_add(j as u8) {
            return Err(words * 8 + j);
        }
    }
    Ok(())
}
