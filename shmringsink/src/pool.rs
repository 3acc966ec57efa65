//! The buffer pool shmringsink proposes upstream: its buffers are payload slots of the
//! ring, lent by the writer, so an upstream element writes its frame straight into shared
//! memory and the sink commits it without a copy (zero-copy write).
//!
//! A buffer is reused only while its slot is still lent and unwritten. Once committed,
//! the slot belongs to the ring and its buffer is dropped when it comes back, which lets
//! the ring rewrite the slot; the next buffer gets a fresh slot. When the slots set aside
//! for lending are all out, the pool hands out ordinary buffers, which the sink copies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use gst::glib;
use gst::subclass::prelude::*;

use shmring_common::Lender;

use crate::imp::CAT;

glib::wrapper! {
    pub struct RingPool(ObjectSubclass<imp::RingPool>) @extends gst::BufferPool, gst::Object;
}

impl RingPool {
    pub fn new(lender: Lender) -> Self {
        let pool = glib::Object::new::<RingPool>();
        let _ = pool.imp().lender.set(lender);
        pool
    }
}

/// A lent slot as the memory of a GStreamer buffer. GStreamer takes the slot's address
/// and length from it once, when it wraps it, and reads and writes the bytes as C code
/// from then on; no Rust code here reads through the slices.
struct LoanMemory(shmring_common::Loan);

impl AsRef<[u8]> for LoanMemory {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the slice only carries the address and length to GStreamer, which
        // keeps this LoanMemory (and so the mapping and the loan) alive with the memory.
        unsafe { self.0.as_slice() }
    }
}

impl AsMut<[u8]> for LoanMemory {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for as_ref.
        unsafe { self.0.as_mut_slice() }
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct RingPool {
        pub(super) lender: OnceLock<Lender>,
        /// Buffer size of the active configuration.
        size: AtomicUsize,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for RingPool {
        const NAME: &'static str = "GstShmRingBufferPool";
        type Type = super::RingPool;
        type ParentType = gst::BufferPool;
    }

    impl ObjectImpl for RingPool {}
    impl GstObjectImpl for RingPool {}

    impl BufferPoolImpl for RingPool {
        fn options() -> &'static [&'static str] {
            &[shmring_common::RING_POOL_OPTION]
        }

        fn set_config(&self, config: &mut gst::BufferPoolConfigRef) -> bool {
            let Some((_caps, size, _min, _max)) = config.params() else {
                return false;
            };
            // A slot holds one frame and starts on a page: a larger size, or an alignment
            // beyond a page, cannot be lent. Refuse it before anything is changed.
            let slot = self.lender.get().map_or(0, |l| l.slot_capacity());
            if u64::from(size) > slot {
                gst::warning!(
                    CAT,
                    imp = self,
                    "buffers of {size} bytes do not fit slots of {slot}"
                );
                return false;
            }
            if let Some((_, params)) = config.allocator() {
                let align = params.align();
                if align >= shmring_common::layout::PAGE_SIZE as usize {
                    gst::warning!(CAT, imp = self, "alignment {} beyond a page", align + 1);
                    return false;
                }
            }
            if !self.parent_set_config(config) {
                return false;
            }
            // Relaxed: the pool's own lock orders configuration before allocation.
            self.size.store(size as usize, Ordering::Relaxed);
            true
        }

        fn alloc_buffer(
            &self,
            _params: Option<&gst::BufferPoolAcquireParams>,
        ) -> Result<gst::Buffer, gst::FlowError> {
            // Relaxed: see set_config.
            let size = self.size.load(Ordering::Relaxed);
            match self.lender.get().and_then(|l| l.lend(size)) {
                Some(loan) => {
                    gst::trace!(CAT, imp = self, "lent slot {}", loan.slot());
                    Ok(gst::Buffer::from_mut_slice(LoanMemory(loan)))
                }
                None => {
                    gst::trace!(CAT, imp = self, "no slot to lend: an ordinary buffer");
                    gst::Buffer::with_size(size).map_err(|_| gst::FlowError::Error)
                }
            }
        }

        fn reset_buffer(&self, buffer: &mut gst::BufferRef) {
            // A committed slot's memory was locked exclusively once more at commit
            // (frames.rs), so it is no longer writable: it goes back to the ring. The
            // default pool would drop such a buffer anyway; telling so here skips the
            // map, the lender's lock and the reset on every frame's path.
            if buffer.n_memory() == 1 && !buffer.is_all_memory_writable() {
                buffer.set_flags(gst::BufferFlags::TAG_MEMORY);
                return;
            }
            self.parent_reset_buffer(buffer);
            let Some(lender) = self.lender.get() else {
                return;
            };
            let keep = buffer.n_memory() == 1
                && buffer.map_readable().is_ok_and(|m| {
                    let bytes = m.as_slice();
                    if lender.lent_slot(bytes).is_some() {
                        true // lent and unwritten: reuse it
                    } else {
                        // A committed slot goes back to the ring; an ordinary buffer
                        // stays while no slot can be lent in its place.
                        !lender.is_slot(bytes) && !lender.can_lend()
                    }
                });
            if !keep {
                // The pool frees buffers whose memory is tagged instead of reusing them.
                buffer.set_flags(gst::BufferFlags::TAG_MEMORY);
            }
        }
    }
}
