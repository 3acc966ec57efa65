//! `NativeFrame`: a frame read from a ring, and the Buffer of its bytes.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use shmring_common::layout::MAX_PLANES;
use shmring_common::{formats, FrameInfo, Handle, LeasedPayload, Payload};

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

/// One plane of a frame: where it starts in `pixels`, and its row stride in bytes.
#[napi(object)]
pub struct Plane {
    pub offset: f64,
    pub stride: i32,
}

/// What a frame is, read once by `index.js`.
#[napi(object)]
pub struct FrameFields {
    pub ring: String,
    pub seq: f64,
    pub handle: String,
    pub pts: Option<BigInt>,
    pub dts: Option<BigInt>,
    pub duration: Option<BigInt>,
    pub captured_at: BigInt,
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub planes: Vec<Plane>,
    pub flags: u32,
    pub missed: f64,
    pub zero_copy: bool,
}

/// A frame read from a ring (`index.js` wraps it as `Frame`).
#[napi]
pub struct NativeFrame {
    info: FrameInfo,
    ring: String,
    missed: u64,
    zero_copy: bool,
    /// The bytes' address and length, fixed while `bytes` holds them.
    ptr: usize,
    len: usize,
    bytes: Cell,
    pixels_made: bool,
    /// The Buffer `pixels()` made, until `release` detaches it.
    attached: Option<buffers::Attached>,
    released: bool,
}

impl NativeFrame {
    pub(crate) fn new(ring: &str, info: FrameInfo, data: Payload<Vec<u8>>, missed: u64) -> Self {
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
            ring: ring.to_owned(),
            missed,
            zero_copy,
            ptr,
            len,
            bytes: Arc::new(Mutex::new(Some(bytes))),
            pixels_made: false,
            attached: None,
            released: false,
        }
    }
}

#[napi]
impl NativeFrame {
    /// What the frame is.
    #[napi(catch_unwind)]
    pub fn fields(&self) -> FrameFields {
        let i = &self.info;
        let v = &i.video;
        let n = (v.n_planes as usize).min(MAX_PLANES);
        FrameFields {
            ring: self.ring.clone(),
            seq: i.seq as f64,
            handle: Handle {
                ring: self.ring.clone(),
                epoch: i.epoch,
                seq: i.seq,
            }
            .to_string(),
            pts: i.pts.map(BigInt::from),
            dts: i.dts.map(BigInt::from),
            duration: i.duration.map(BigInt::from),
            captured_at: BigInt::from(i.captured_at_ns),
            width: v.width,
            height: v.height,
            format: formats::by_number(v.format)
                .map_or("unknown", |f| f.name)
                .to_owned(),
            planes: (0..n)
                .map(|p| Plane {
                    offset: v.offsets[p] as f64,
                    stride: v.strides[p],
                })
                .collect(),
            flags: i.flags,
            missed: self.missed as f64,
            zero_copy: self.zero_copy,
        }
    }

    /// The frame's bytes as a Buffer: over the leased slot, or over the frame's copy.
    /// Made once; `release` detaches it.
    #[napi(ts_return_type = "Buffer", catch_unwind)]
    pub fn pixels<'env>(&mut self, env: &'env Env) -> Result<Unknown<'env>> {
        if self.pixels_made {
            return Err(error(
                "ERR_SHMRING_INVALID_ARG",
                "the frame's pixels were made already",
            ));
        }
        if self.released {
            return Err(error("ERR_SHMRING_RELEASED", "the frame was released"));
        }
        self.pixels_made = true;
        // SAFETY: the bytes stay where they are while `bytes` holds them (a leased slot
        // stays mapped and unwritten, a copy is never reallocated), and the Buffer keeps
        // the cell alive; `release` detaches the Buffer before it lets the bytes go.
        // The ring's memory is mapped read-only in a reader (see docs/node.md).
        let (buffer, attached) = unsafe {
            buffers::external(
                env,
                self.ptr as *mut u8,
                self.len,
                Box::new(Arc::clone(&self.bytes)),
            )?
        };
        self.attached = Some(attached);
        Ok(buffer)
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
        let unreachable = match self.attached.take() {
            Some(a) => a.detach()?,
            None => true,
        };
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
