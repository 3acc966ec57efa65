//! Finding one frame without waiting for it: by its handle, or by when it was captured.
//!
//! A handle names a frame of one writer's epoch; a capture time names the frame held
//! whose capture is nearest, at or before, or at or after it. Descriptors only until the
//! frame is chosen; then it is copied as `reader.rs` copies every frame.

use crate::error::Result;
use crate::layout::*;
use crate::location::Handle;
use crate::reader::{Copy, Frame, RingReader, MAX_TORN_RETRIES};
use crate::FrameInfo;

/// How `RingReader::seq_at` picks a frame by capture time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtRule {
    /// The frame captured closest to the time, before or after.
    Nearest,
    /// The last frame captured at or before the time.
    AtOrBefore,
    /// The first frame captured at or after the time.
    AtOrAfter,
}

impl std::str::FromStr for AtRule {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "nearest" => Ok(AtRule::Nearest),
            "at-or-before" => Ok(AtRule::AtOrBefore),
            "at-or-after" => Ok(AtRule::AtOrAfter),
            other => Err(format!(
                "rule {other:?}: expected nearest, at-or-before or at-or-after"
            )),
        }
    }
}

/// What `RingReader::seq_at` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The frame of this sequence.
    Frame(u64),
    /// Every frame that would do has been overwritten.
    Gone,
    /// No frame that would do is written yet.
    NotYet,
}

/// Result of a read by handle.
#[derive(Debug)]
pub enum ByHandle<B> {
    Frame(Frame<B>),
    /// Overwritten already (or the handle is of another epoch of this ring).
    Gone,
    /// Not written yet.
    NotYet,
}

impl RingReader {
    /// Exactly the frame a handle names, without waiting.
    pub fn by_handle<B: AsMut<[u8]>>(
        &mut self,
        handle: &Handle,
        mut alloc: impl FnMut(&FrameInfo) -> B,
    ) -> Result<ByHandle<B>> {
        let found = self.by_handle_with(handle, |r, seq| r.copy(seq, &mut alloc))?;
        if let ByHandle::Frame(f) = &found {
            self.note_progress(handle.seq, 0, f.torn_retries);
        }
        Ok(found)
    }

    /// The read of `by_handle`: `take` copies or claims the frame. The reader's progress
    /// is the caller's to publish.
    pub(crate) fn by_handle_with<O>(
        &self,
        handle: &Handle,
        mut take: impl FnMut(&RingReader, u64) -> Result<Copy<O>>,
    ) -> Result<ByHandle<O>> {
        self.check_mapped()?; // a truncated ring holds no frame: not "not yet"
        if handle.epoch != self.epoch() {
            return Ok(ByHandle::Gone);
        }
        for torn in 0..MAX_TORN_RETRIES {
            if handle.seq > self.head() {
                return Ok(ByHandle::NotYet);
            }
            match take(self, handle.seq)? {
                Copy::Ok(info, data) => {
                    return Ok(ByHandle::Frame(Frame {
                        info,
                        data,
                        missed: 0,
                        torn_retries: torn,
                    }));
                }
                Copy::Newer | Copy::Torn => return Ok(ByHandle::Gone),
                Copy::Older => continue,
            }
        }
        Ok(ByHandle::NotYet)
    }

    /// The frame of this ring captured closest to `captured_at_ns` (wall clock, ns
    /// since the Unix epoch) by `rule`, among the frames it holds now. Capture times are
    /// the writer's: they need not rise with the sequence, so every held frame is
    /// looked at (at most the ring's slots, descriptors only).
    pub fn seq_at(&self, captured_at_ns: u64, rule: AtRule) -> Result<At> {
        self.check_mapped()?; // a truncated ring reads head 0: not "not yet"
        let head = self.head().min(MAX_SEQ);
        if head == 0 {
            return Ok(At::NotYet);
        }
        let oldest = self.geom.oldest_held(head);
        let (mut best, mut any) = (None::<(u64, u64)>, false);
        for seq in oldest..=head {
            let Some(info) = self.peek(seq)? else {
                continue; // being rewritten: no longer held
            };
            let t = info.captured_at_ns;
            any = true;
            let fits = match rule {
                AtRule::Nearest => true,
                AtRule::AtOrBefore => t <= captured_at_ns,
                AtRule::AtOrAfter => t >= captured_at_ns,
            };
            let distance = t.abs_diff(captured_at_ns);
            if fits && best.is_none_or(|(_, d)| distance < d) {
                best = Some((seq, distance));
            }
        }
        Ok(match best {
            Some((seq, _)) => At::Frame(seq),
            None if !any => At::NotYet,
            // Every frame held is newer than asked (at-or-before): those before are gone.
            None if rule == AtRule::AtOrBefore => At::Gone,
            // Every frame held is older (at-or-after): the one asked for is to come.
            None => At::NotYet,
        })
    }

    /// The oldest frame held that was captured at or after `captured_at_ns` (wall
    /// clock), for a reader that starts from a moment in the past (look-back); None
    /// when every frame held is older.
    pub fn oldest_since(&self, captured_at_ns: u64) -> Result<Option<u64>> {
        self.check_mapped()?; // as in seq_at
        let head = self.head().min(MAX_SEQ);
        let oldest = self.geom.oldest_held(head);
        for seq in oldest..=head {
            if let Some(info) = self.peek(seq)? {
                if info.captured_at_ns >= captured_at_ns {
                    return Ok(Some(seq));
                }
            }
        }
        Ok(None)
    }
}
