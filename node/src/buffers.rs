//! Buffers over memory of the ring: made external, and detached when the memory's
//! lease (a reader's) or loan (the writer's) ends.
//!
//! This is the only file of the addon with `unsafe`: Node-API calls that napi-rs wraps
//! in ways that do not fit, and writes into typed arrays JavaScript passes. Its `BufferSlice::from_external` refuses, in debug builds,
//! a pointer that an earlier buffer still had (a slot comes back at the same address
//! once a frame released before is not yet collected); it keeps no reference to detach
//! the buffer by.
//!
//! Detaching is what makes a released frame safe by construction: every view of the
//! buffer (`subarray`, `new Uint8Array(b.buffer)`) then has length 0, so no code can
//! read a slot after its lease ends, nor write a slot after its frame is committed. The
//! buffer to detach is the one made, held by a reference: never one JavaScript hands
//! back. When that one was detached by JavaScript already (its `ArrayBuffer`
//! transferred), the memory may still be reachable through the `ArrayBuffer` it went
//! to: `detach` says so, and the memory is left to the finalizer, which runs only when
//! the last `ArrayBuffer` over it dies.

use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::*;
use napi::sys;

use crate::error;

/// What keeps the memory of a buffer valid until the buffer is collected: dropped by
/// its finalizer.
pub(crate) type Keep = Box<dyn Send>;

unsafe extern "C" fn finalize(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the `Box<Keep>` leaked by `external` for this buffer alone, and
    // Node calls the finalizer once.
    drop(unsafe { Box::from_raw(hint.cast::<Keep>()) });
}

fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(error(
            "ERR_SHMRING_NODE",
            format!("{what} failed (napi status {status})"),
        ))
    }
}

/// A Buffer made by `external`, held by a strong reference until it is detached.
pub(crate) struct Attached {
    env: sys::napi_env,
    reference: sys::napi_ref,
    ptr: *const u8,
}

// SAFETY: an `Attached` is made, used and dropped on the JS thread only: by `pixels()`,
// `release()`/`commit()` and the finalizer of the object holding it, which Node runs
// there. The frames holding one cross threads (from a reader's thread to the JS thread)
// before they have one.
unsafe impl Send for Attached {}

impl Attached {
    /// Detaches the buffer. True when no JavaScript can reach the memory any more (this
    /// detached it, or it is an empty buffer of its own); false when its `ArrayBuffer`
    /// was detached (transferred) already: then leave the memory to the finalizer.
    pub(crate) fn detach(self) -> Result<bool> {
        let (env, this) = (self.env, &self);
        let mut value = ptr::null_mut();
        // SAFETY: a reference of this env, not deleted yet (Drop deletes it).
        check(
            unsafe { sys::napi_get_reference_value(env, this.reference, &mut value) },
            "napi_get_reference_value",
        )?;
        let mut array_buffer = ptr::null_mut();
        // SAFETY: `value` is the live Buffer the strong reference holds; "buffer" is a
        // NUL-terminated name.
        check(
            unsafe {
                sys::napi_get_named_property(env, value, c"buffer".as_ptr(), &mut array_buffer)
            },
            "reading Buffer.buffer",
        )?;
        let mut detached = false;
        // SAFETY: as above; out-parameters only.
        check(
            unsafe { sys::napi_is_detached_arraybuffer(env, array_buffer, &mut detached) },
            "napi_is_detached_arraybuffer",
        )?;
        if detached {
            return Ok(false);
        }
        let (mut data, mut len) = (ptr::null_mut(), 0usize);
        // SAFETY: as above.
        check(
            unsafe { sys::napi_get_arraybuffer_info(env, array_buffer, &mut data, &mut len) },
            "napi_get_arraybuffer_info",
        )?;
        if len == 0 {
            // An empty buffer of its own: no memory of ours in it.
            return Ok(true);
        }
        if data.cast_const().cast::<u8>() != this.ptr {
            return Err(error(
                "ERR_SHMRING_NODE",
                "the Buffer's memory is not the frame's: left attached",
            ));
        }
        // SAFETY: as above; an external ArrayBuffer is detachable.
        check(
            unsafe { sys::napi_detach_arraybuffer(env, array_buffer) },
            "napi_detach_arraybuffer",
        )?;
        Ok(true)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: the reference was made in this env and is deleted once, here; Node
        // lets a finalizer delete references.
        unsafe { sys::napi_delete_reference(self.env, self.reference) };
    }
}

/// The Buffer over a frame's memory (`ptr..ptr+len`): made once, detached once.
pub(crate) struct Pixels {
    ptr: usize,
    len: usize,
    made: bool,
    attached: Option<Attached>,
}

impl Pixels {
    pub(crate) fn new(ptr: *const u8, len: usize) -> Self {
        Pixels {
            ptr: ptr as usize,
            len,
            made: false,
            attached: None,
        }
    }

    /// The Buffer, made now (a second call is an error); `keep` is dropped when it is
    /// collected.
    ///
    /// # Safety
    /// As for `external`, over this memory.
    pub(crate) unsafe fn make<'env>(
        &mut self,
        env: &'env Env,
        keep: Keep,
    ) -> Result<Unknown<'env>> {
        if self.made {
            return Err(error(
                "ERR_SHMRING_INVALID_ARG",
                "the frame's pixels were made already",
            ));
        }
        self.made = true;
        // SAFETY: the caller's contract.
        let (buffer, attached) = unsafe { external(env, self.ptr as *mut u8, self.len, keep)? };
        self.attached = Some(attached);
        Ok(buffer)
    }

    /// Detaches the Buffer made, if any (see `Attached::detach`): true when no
    /// JavaScript can reach the memory any more.
    pub(crate) fn detach(&mut self) -> Result<bool> {
        match self.attached.take() {
            Some(a) => a.detach(),
            None => Ok(true),
        }
    }
}

/// A `Buffer` over `len` bytes at `ptr`, without a copy, and the reference to detach it
/// by. `keep` is dropped when the buffer is collected. V8 is not told of the bytes
/// (`napi_adjust_external_memory`): 3 MB a frame made it collect garbage every few
/// frames, for milliseconds each, although `release()` gives the bytes back at once.
///
/// # Safety
/// `ptr..ptr+len` must stay valid memory for as long as `keep` lives, and nothing but
/// this buffer may write it while the buffer is attached (a leased slot is written by
/// no one; a lent slot by this buffer alone).
pub(crate) unsafe fn external(
    env: &Env,
    ptr: *mut u8,
    len: usize,
    keep: Keep,
) -> Result<(Unknown<'_>, Attached)> {
    let raw = env.raw();
    let mut value = ptr::null_mut();
    if len == 0 || ptr.is_null() {
        // Node-API takes no empty external buffer: an empty buffer of its own.
        drop(keep);
        // SAFETY: `value` is an out-parameter Node fills.
        check(
            unsafe { sys::napi_create_buffer(raw, 0, ptr::null_mut(), &mut value) },
            "napi_create_buffer",
        )?;
    } else {
        let hint = Box::into_raw(Box::new(keep));
        // SAFETY: the caller's contract for the memory; `hint` is freed by `finalize`,
        // or here when Node refuses the buffer.
        let status = unsafe {
            sys::napi_create_external_buffer(
                raw,
                len,
                ptr.cast(),
                Some(finalize),
                hint.cast(),
                &mut value,
            )
        };
        if status != sys::Status::napi_ok {
            // SAFETY: Node did not take the hint.
            drop(unsafe { Box::from_raw(hint) });
            check(status, "napi_create_external_buffer")?;
        }
    }
    let mut reference = ptr::null_mut();
    // SAFETY: `value` is the live Buffer just made; a strong reference (count 1).
    check(
        unsafe { sys::napi_create_reference(raw, value, 1, &mut reference) },
        "napi_create_reference",
    )?;
    let attached = Attached {
        env: raw,
        reference,
        ptr,
    };
    // SAFETY: a value Node just made, in this env.
    Ok((unsafe { Unknown::from_raw_unchecked(raw, value) }, attached))
}

/// Copies `values` into the start of `array`; an error when it is shorter.
pub(crate) fn fill_u64(array: &mut BigUint64Array, values: &[u64]) -> Result<()> {
    // SAFETY: a typed array JavaScript passed to this call, which holds the only Rust
    // view of it; no JavaScript runs until the call returns.
    let slice = unsafe { array.as_mut() };
    slice
        .get_mut(..values.len())
        .ok_or_else(|| error("ERR_SHMRING_INVALID_ARG", "a BigUint64Array too short"))?
        .copy_from_slice(values);
    Ok(())
}

/// Copies `values` into the start of `array`; an error when it is shorter.
pub(crate) fn fill_f64(array: &mut Float64Array, values: &[f64]) -> Result<()> {
    // SAFETY: as for `fill_u64`.
    let slice = unsafe { array.as_mut() };
    slice
        .get_mut(..values.len())
        .ok_or_else(|| error("ERR_SHMRING_INVALID_ARG", "a Float64Array too short"))?
        .copy_from_slice(values);
    Ok(())
}
