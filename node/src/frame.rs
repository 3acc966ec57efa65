//! `NativeFrame`: a frame read from a ring, and the Buffer of its bytes.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use shmring_common::layout::MAX_PLANES;
use shmring_common::{formats, FrameInfo, LeasedPayload, Payload};

use crate::{buffers, error, lock};

/// Where a frame's bytes are, while they are its.
enum Bytes {
    /// In the ring, leased: the writer does not reuse the slot.
    Leased(#[allow(dead_code)] LeasedPayload),
    /// A copy of its own.
    Copied(#[allow(dead_code)] Vec<u8>),
}

/// The bytes, shared by the frame and its Buffer's finalizer: whichever goes last (or
/// `release`) ends the lease.
type Cell = Arc<Mutex<Option<Bytes>>>;

/// Where `NativeFrame::fields` puts what a frame is, for `index.js` to read without a
/// Node-API call per field (building an object of 14 fields through Node-API costs
/// more than the read itself).
/// Slots of the numbers: seq, width, height, format, flags, missed, zero-copy,
/// planes, then offset and stride of each plane.
pub const NUMBER_FIELDS: usize = 8 + 2 * MAX_PLANES;

/// The formats by number, for `index.js`: a GStreamer format name per
/// `GstVideoFormat` number this package knows ("" for the others).
#[napi(catch_unwind)]
pub fn format_names() -> Vec<String> {
    let top = formats::FORMATS.iter().map(|f| f.number).max().unwrap_or(0);
    (0..=top)
        .map(|n| formats::by_number(n).map_or(String::new(), |f| f.name.to_owned()))
        .collect()
}

/// A frame read from a ring (`index.js` wraps it as `Frame`).
#[napi]
pub struct NativeFrame {
    info: FrameInfo,
    missed: u64,
    zero_copy: bool,
    bytes: Cell,
    /// The Buffer over the bytes, whose address stays while `bytes` holds them.
    pixels: buffers::Pixels,
    released: bool,
}

impl NativeFrame {
    pub(crate) fn new(info: FrameInfo, data: Payload<Vec<u8>>, missed: u64) -> Self {
        let (bytes, ptr, len, zero_copy) = match data {
            Payload::Leased(l) => {
                let (ptr, len) = (l.as_ptr() as usize, l.len());
                (Bytes::Leased(l), ptr, len, true)
            }
            Payload::Copied(mut v) => {
                let (ptr, len) = (v.as_mut_ptr() as usize, v.len());
                (Bytes::Copied(v), ptr, len, false)
            }
        };
        NativeFrame {
            info,
            missed,
            zero_copy,
            bytes: Arc::new(Mutex::new(Some(bytes))),
            pixels: buffers::Pixels::new(ptr as *const u8, len),
            released: false,
        }
    }
}

#[napi]
impl NativeFrame {
    /// What the frame is, into `big` (epoch, seq, pts, dts, duration, capture time;
    /// u64::MAX for none) and `numbers` (see `NUMBER_FIELDS`).
    #[napi(catch_unwind)]
    pub fn fields(&self, mut big: BigUint64Array, mut numbers: Float64Array) -> Result<()> {
        let i = &self.info;
        let none = u64::MAX;
        buffers::fill_u64(
            &mut big,
            &[
                i.epoch,
                i.seq,
                i.pts.unwrap_or(none),
                i.dts.unwrap_or(none),
                i.duration.unwrap_or(none),
                i.captured_at_ns,
            ],
        )?;
        let v = &i.video;
        let n = (v.n_planes as usize).min(MAX_PLANES);
        let mut out = [0f64; NUMBER_FIELDS];
        out[..8].copy_from_slice(&[
            i.seq as f64,
            f64::from(v.width),
            f64::from(v.height),
            f64::from(v.format),
            f64::from(i.flags),
            self.missed as f64,
            f64::from(u8::from(self.zero_copy)),
            n as f64,
        ]);
        for p in 0..n {
            out[8 + 2 * p] = v.offsets[p] as f64;
            out[9 + 2 * p] = f64::from(v.strides[p]);
        }
        buffers::fill_f64(&mut numbers, &out)
    }

    /// The frame's bytes as a Buffer: over the leased slot, or over the frame's copy.
    /// Made once; `release` detaches it.
    #[napi(ts_return_type = "Buffer", catch_unwind)]
    pub fn pixels<'env>(&mut self, env: &'env Env) -> Result<Unknown<'env>> {
        if self.released {
            return Err(error("ERR_SHMRING_RELEASED", "the frame was released"));
        }
        // SAFETY: the bytes stay where they are while `bytes` holds them (a leased slot
        // stays mapped and unwritten, a copy is never reallocated), and the Buffer keeps
        // the cell alive; `release` detaches the Buffer before it lets the bytes go.
        // The ring's memory is mapped read-only in a reader (see docs/node.md).
        unsafe { self.pixels.make(env, Box::new(Arc::clone(&self.bytes))) }
    }

    /// Ends the frame's lease (or frees its copy), after detaching the Buffer
    /// `pixels()` made. When JavaScript transferred that Buffer's memory elsewhere, the
    /// lease ends when the memory's last holder is collected. Releasing twice does
    /// nothing.
    #[napi(catch_unwind)]
    pub fn release(&mut self) -> Result<()> {
        if self.released {
            return Ok(());
        }
        let unreachable = self.pixels.detach()?;
        self.released = true;
        if unreachable {
            drop(lock(&self.bytes).take());
        }
        Ok(())
    }

    /// Whether the frame still holds its bytes.
    #[napi(getter, catch_unwind)]
    pub fn held(&self) -> bool {
        !self.released
    }
}
