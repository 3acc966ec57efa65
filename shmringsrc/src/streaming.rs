//! `latest` and `sequential` modes: the ring's next frame, re-attaching when the writer goes.

use gst::subclass::prelude::*;

use shmring_common::{Next, Payload};

use crate::imp::{ShmRingSrc, Stream, CAT};
use crate::Mode;

impl ShmRingSrc {
    /// The next buffer in `mode` (`latest` or `sequential`), waiting as long as it takes
    /// and posting a `shmringsrc-timeout` message every `timeout` without a frame.
    pub(crate) fn create_streaming(
        &self,
        stream: &mut Stream,
        mode: Mode,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let timeout = self.timeout();
        loop {
            self.ensure_attached(stream)?;
            let reader = stream.follower.reader_mut().expect("attached");
            let allocator = &stream.allocator;
            // A shmringsink downstream proposed its pool: a copy into it goes straight
            // into that ring, and an element between (an overlay, a filter working in
            // place) writes there instead of copying a read-only leased frame first.
            let ring_pool = self.ring_pool.lock().unwrap().clone();
            let next = match (&ring_pool, mode) {
                // Encoded units: from a keyframe, every one, in both modes (a decoder
                // cannot skip); a reader left behind jumps to the newest keyframe.
                _ if reader.holds_units() => reader
                    .next_unit(timeout, |i| allocator.alloc(i))
                    .map(|n| n.map(Payload::Copied)),
                (Some(pool), Mode::Sequential) => reader
                    .next(timeout, |i| allocator.alloc_from(pool, i))
                    .map(|n| n.map(Payload::Copied)),
                (Some(pool), _) => reader
                    .latest(timeout, |i| allocator.alloc_from(pool, i))
                    .map(|n| n.map(Payload::Copied)),
                (None, Mode::Sequential) => reader.next_zero_copy(timeout, |i| allocator.alloc(i)),
                (None, _) => reader.latest_zero_copy(timeout, |i| allocator.alloc(i)),
            };
            match next.map_err(|e| self.read_error(stream, e))? {
                Next::Frame(f) => match self.to_buffer(stream, f, mode)? {
                    Ok(buffer) => return Ok(buffer),
                    Err(_) => continue,
                },
                Next::TimedOut => {
                    self.count(|s| s.timeouts += 1);
                    self.post(
                        gst::Structure::builder("shmringsrc-timeout")
                            .field("ring", stream.loc().display_name())
                            .field("waiting-for", "frame")
                            .field("waited", timeout.as_nanos() as u64)
                            .build(),
                    );
                }
                Next::Interrupted => return Err(gst::FlowError::Flushing),
                Next::Eos => {
                    gst::info!(CAT, imp = self, "writer of {} reached EOS", stream.loc());
                    return Err(gst::FlowError::Eos);
                }
                Next::WriterGone(why) => {
                    gst::info!(
                        CAT,
                        imp = self,
                        "writer of {} is gone ({why:?}): re-attaching",
                        stream.loc()
                    );
                    stream.follower.writer_gone();
                }
            }
        }
    }
}
