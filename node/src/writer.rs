//! `Writer`: a ring written from Buffers, copied in or filled in place (`WriteFrame`).
//!
//! What a writer may be asked for is checked once, by `shmring_common::spec`. A slot
//! lent to fill in place is a Buffer over the ring itself; the commit detaches it
//! first, so nothing written through it afterwards can reach a committed frame.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use shmring_common::spec::{self, VideoArgs, VideoSpec};
use shmring_common::{Handle, Lender, Loan, RingLocation, RingWriter};

use crate::{buffers, error, lock, ring_error};

/// What a writer is asked for (`index.js` fills the defaults).
#[napi(object)]
pub struct WriterOptions {
    pub width: f64,
    pub height: f64,
    pub format: String,
    pub fps: f64,
    pub slots: Option<f64>,
    pub lease_slots: Option<f64>,
    pub pool_slots: Option<f64>,
    pub dir: Option<String>,
}

/// A whole number from JS, or a message naming `what`.
fn whole(what: &str, n: f64) -> Result<i64> {
    if n.fract() == 0.0 && n.abs() < 2f64.powi(53) {
        Ok(n as i64)
    } else {
        Err(error(
            "ERR_SHMRING_INVALID_ARG",
            format!("{what} {n}: expected a whole number"),
        ))
    }
}

/// A time given with a frame: a BigInt of ns, 0 to 2n**63n - 1n.
fn time(what: &str, t: Option<BigInt>) -> Result<Option<u64>> {
    let Some(t) = t else { return Ok(None) };
    let (v, lossless) = t.get_i128();
    let v = if lossless { v } else { i128::MAX };
    spec::time_ns(what, v)
        .map(Some)
        .map_err(|e| error("ERR_SHMRING_INVALID_ARG", e))
}

/// A writer's ring while it is open: the writer, and the lender of its slots.
struct Open {
    writer: RingWriter,
    lender: Lender,
}

/// Writes one ring (`index.js` wraps it as `Writer`).
#[napi]
pub struct NativeWriter {
    name: String,
    spec: VideoSpec,
    open: Option<Open>,
}

impl NativeWriter {
    fn writer(&mut self) -> Result<&mut Open> {
        let name = &self.name;
        self.open.as_mut().ok_or_else(|| {
            error(
                "ERR_SHMRING_CLOSED",
                format!("the writer of ring {name} is closed"),
            )
        })
    }

    fn handle(&self, epoch: u64, seq: u64) -> String {
        Handle {
            ring: self.name.clone(),
            epoch,
            seq,
        }
        .to_string()
    }
}

#[napi]
impl NativeWriter {
    /// Creates ring `ring` for frames of `options`.
    #[napi(constructor, catch_unwind)]
    pub fn new(ring: String, options: WriterOptions) -> Result<Self> {
        let dir = options.dir.map(PathBuf::from);
        let loc = RingLocation::parse(&ring, dir.as_deref()).map_err(ring_error)?;
        let spec = VideoSpec::new(&VideoArgs {
            width: whole("width", options.width)?,
            height: whole("height", options.height)?,
            format: &options.format,
            fps: options.fps,
            slots: whole("slots", options.slots.unwrap_or(0.0))?,
            lease_slots: whole("leaseSlots", options.lease_slots.unwrap_or(8.0))?,
            pool_slots: whole("poolSlots", options.pool_slots.unwrap_or(2.0))?,
        })
        .map_err(|e| error("ERR_SHMRING_INVALID_ARG", e))?;
        let writer = RingWriter::create(&loc, &spec.config).map_err(ring_error)?;
        Ok(NativeWriter {
            name: loc.display_name().to_owned(),
            spec,
            open: Some(Open {
                lender: writer.lender(),
                writer,
            }),
        })
    }

    /// Bytes of one frame in GStreamer's default layout (what `write` takes).
    #[napi(getter, catch_unwind)]
    pub fn frame_size(&self) -> f64 {
        self.spec.size as f64
    }

    /// Copies `pixels` (exactly `frameSize` bytes) in as the next frame; its handle.
    #[napi(catch_unwind)]
    pub fn write(
        &mut self,
        pixels: Uint8Array,
        pts: Option<BigInt>,
        captured_at: Option<BigInt>,
    ) -> Result<String> {
        let meta = self
            .spec
            .meta(time("pts", pts)?, time("capturedAt", captured_at)?);
        if pixels.len() != self.spec.size {
            return Err(error(
                "ERR_SHMRING_INVALID_ARG",
                format!(
                    "the buffer has {} bytes, a frame of ring {} has {}",
                    pixels.len(),
                    self.name,
                    self.spec.size
                ),
            ));
        }
        let w = &mut self.writer()?.writer;
        let seq = w.write(&meta, &pixels).map_err(ring_error)?;
        let epoch = w.epoch();
        Ok(self.handle(epoch, seq))
    }

    /// A frame to fill in place: a slot of the ring lent to this process when one is
    /// free, else a buffer of its own.
    #[napi(catch_unwind)]
    pub fn frame(
        &mut self,
        pts: Option<BigInt>,
        captured_at: Option<BigInt>,
    ) -> Result<NativeWriteFrame> {
        let stamps = (time("pts", pts)?, time("capturedAt", captured_at)?);
        let size = self.spec.size;
        let keep = match self.writer()?.lender.lend(size) {
            Some(loan) => Keep::Loan(loan),
            None => Keep::Own(vec![0; size]),
        };
        let (ptr, len) = match &keep {
            Keep::Loan(l) => (l.as_ptr() as usize, l.len().min(size)),
            Keep::Own(v) => (v.as_ptr() as usize, v.len()),
        };
        Ok(NativeWriteFrame {
            memory: Arc::new(Mutex::new(Some(keep))),
            pixels: buffers::Pixels::new(ptr as *const u8, len),
            stamps,
            state: Filling::Open,
        })
    }

    /// Commits `frame` after detaching the Buffer its `pixels()` made; the frame's
    /// handle. A lent slot is committed in place; when JavaScript transferred the
    /// Buffer's memory elsewhere (so that it could still write it), a copy is.
    #[napi(catch_unwind)]
    pub fn commit(&mut self, frame: &mut NativeWriteFrame) -> Result<String> {
        frame.check_open()?;
        let unreachable = frame.pixels.detach()?;
        let meta = self.spec.meta(frame.stamps.0, frame.stamps.1);
        let size = self.spec.size;
        frame.state = Filling::Done;
        let gone = || error("ERR_SHMRING_CLOSED", "the frame's memory is gone");
        let keep = lock(&frame.memory).take().ok_or_else(gone)?;
        let w = &mut self.writer()?.writer;
        let seq = if unreachable {
            match &keep {
                Keep::Loan(l) => match w.commit_loan(l, size, &meta).map_err(ring_error)? {
                    Some(seq) => seq,
                    // Of a ring replaced since: copied in.
                    None => w.write(&meta, &keep.to_vec(size)).map_err(ring_error)?,
                },
                Keep::Own(v) => w.write(&meta, v).map_err(ring_error)?,
            }
        } else {
            // Still reachable: a snapshot goes in, and the memory stays the finalizer's.
            let seq = w.write(&meta, &keep.to_vec(size)).map_err(ring_error);
            *lock(&frame.memory) = Some(keep);
            seq?
        };
        let epoch = w.epoch();
        Ok(self.handle(epoch, seq))
    }

    /// Removes the ring. Frames being filled keep their memory until dropped.
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        self.open = None;
    }

    #[napi(getter, catch_unwind)]
    pub fn closed(&self) -> bool {
        self.open.is_none()
    }
}

/// A frame's memory while it is filled.
enum Keep {
    Loan(Loan),
    Own(Vec<u8>),
}

impl Keep {
    /// A copy of the first `size` bytes.
    fn to_vec(&self, size: usize) -> Vec<u8> {
        let mut v = match self {
            Keep::Loan(l) => l.to_vec(),
            Keep::Own(v) => v.clone(),
        };
        v.truncate(size);
        v
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Filling {
    Open,
    /// Committed or dropped.
    Done,
}

/// A frame being filled (`index.js` wraps it as `WriteFrame`).
#[napi]
pub struct NativeWriteFrame {
    /// Shared with the Buffer's finalizer: the slot stays lent while either holds it.
    memory: Arc<Mutex<Option<Keep>>>,
    /// The Buffer over the memory, detached at the commit or drop.
    pixels: buffers::Pixels,
    stamps: (Option<u64>, Option<u64>),
    state: Filling,
}

impl NativeWriteFrame {
    fn check_open(&self) -> Result<()> {
        if self.state == Filling::Done {
            return Err(error(
                "ERR_SHMRING_INVALID_ARG",
                "the frame was committed or dropped already",
            ));
        }
        Ok(())
    }
}

#[napi]
impl NativeWriteFrame {
    /// The frame's memory as a writable Buffer; made once, detached at the commit.
    #[napi(ts_return_type = "Buffer", catch_unwind)]
    pub fn pixels<'env>(&mut self, env: &'env Env) -> Result<Unknown<'env>> {
        self.check_open()?;
        // SAFETY: a lent slot is written by this Buffer alone until the commit (the
        // writer neither copies into nor lends a lent slot), and stays mapped while
        // the loan lives; an own buffer is never reallocated. The Buffer keeps the
        // memory alive, and is detached before the commit lets it go.
        unsafe { self.pixels.make(env, Box::new(Arc::clone(&self.memory))) }
    }

    /// Gives the memory back without committing, after detaching the Buffer
    /// `pixels()` made (when JavaScript transferred it, the memory goes when its last
    /// holder is collected). Dropping twice does nothing.
    #[napi(catch_unwind)]
    pub fn drop_frame(&mut self) -> Result<()> {
        if self.state == Filling::Done {
            return Ok(());
        }
        let unreachable = self.pixels.detach()?;
        self.state = Filling::Done;
        if unreachable {
            drop(lock(&self.memory).take());
        }
        Ok(())
    }
}
