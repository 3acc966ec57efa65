'use strict'
// shmring for Node.js: frames of a shmring ring as zero-copy Buffers that are never torn.
//
// The native addon (src/, built as shmring.node) does the ring's work; this file gives
// it a JavaScript face: option objects, number or BigInt times, errors with a `code` and
// the ring's name, and frames whose `pixels` are detached when they are released.

const native = require('./shmring.node')

const CODE = /^(ERR_SHMRING_[A-Z_]+): ([\s\S]*)$/

// What a frame is, filled by the addon in one call (see NativeFrame::fields): epoch,
// seq, pts, dts, duration, capture time; then seq, width, height, format, flags,
// missed, zero-copy, planes, and each plane's offset and stride.
const BIG = new BigUint64Array(6)
const NUMBERS = new Float64Array(16)
const FORMATS = native.formatNames()

/** An error of a ring: `code` says which (ERR_SHMRING_*), `ring` names the ring. */
class ShmringError extends Error {
  constructor(code, message, ring) {
    super(message)
    this.name = 'ShmringError'
    this.code = code
    this.ring = ring
  }
}

/** Runs `fn`, turning the addon's `CODE: message` errors into ShmringErrors. */
function call(ring, fn) {
  try {
    return fn()
  } catch (e) {
    throw translate(e, ring)
  }
}

function translate(e, ring) {
  const m = e && typeof e.message === 'string' && CODE.exec(e.message)
  if (!m) return e
  const err = new ShmringError(m[1], m[2], ring)
  return err
}

function invalid(ring, message) {
  return new ShmringError('ERR_SHMRING_INVALID_ARG', message, ring)
}

function optionsOf(ring, options) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object') {
    throw invalid(ring, `options: expected an object, got ${typeof options}`)
  }
  return options
}

function timeoutOf(ring, options) {
  const { timeout } = optionsOf(ring, options)
  if (timeout === undefined || timeout === null) return undefined
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
    throw invalid(ring, `timeout ${String(timeout)}: expected ms, 0 or more, or Infinity`)
  }
  return timeout
}

function stringOf(ring, what, value, optional) {
  if (optional && (value === undefined || value === null)) return undefined
  if (typeof value !== 'string') {
    throw invalid(ring, `${what}: expected a string, got ${typeof value}`)
  }
  return value
}

/** A time in ns: a BigInt, or a safe integer Number. */
function timeOf(ring, what, value) {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'bigint') return value
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value)
  throw invalid(ring, `${what} ${String(value)}: expected ns as a BigInt or a safe integer`)
}

/**
 * A frame read from a ring. `pixels` is a Buffer straight over the ring's slot while the
 * frame holds its lease (`zeroCopy`), else over a copy. It is read-only memory of the
 * ring: copy it (`Buffer.from(f.pixels)`) to change it. `release()` ends the lease and
 * detaches `pixels` (and every view of it): length 0 from then on.
 */
class Frame {
  #native
  #pixels
  constructor(nativeFrame, ring) {
    this.#native = nativeFrame
    nativeFrame.fields(BIG, NUMBERS)
    const none = 0xffffffffffffffffn
    this.ring = ring
    this.seq = NUMBERS[0]
    this.handle = `${ring}:${BIG[0].toString(16).padStart(16, '0')}:${BIG[1]}`
    this.pts = BIG[2] === none ? null : BIG[2]
    this.dts = BIG[3] === none ? null : BIG[3]
    this.duration = BIG[4] === none ? null : BIG[4]
    this.capturedAt = BIG[5]
    this.width = NUMBERS[1]
    this.height = NUMBERS[2]
    this.format = FORMATS[NUMBERS[3]] || 'unknown'
    this.flags = NUMBERS[4]
    this.missed = NUMBERS[5]
    this.zeroCopy = NUMBERS[6] === 1
    this.planes = []
    for (let p = 0; p < NUMBERS[7]; p++) {
      this.planes.push({ offset: NUMBERS[8 + 2 * p], stride: NUMBERS[9 + 2 * p] })
    }
    this.#pixels = call(ring, () => nativeFrame.pixels())
  }

  /** The frame's bytes (a getter: the Buffer cannot be replaced). */
  get pixels() {
    return this.#pixels
  }

  /** Ends the lease; `pixels` is detached from then on. Releasing twice does nothing. */
  release() {
    call(this.ring, () => this.#native.release())
  }

  /** Whether the frame still holds its bytes (not released). */
  get held() {
    return this.#native.held
  }

  /** A copy of the bytes, which stays after `release()`. */
  copy() {
    if (!this.#native.held) {
      throw new ShmringError('ERR_SHMRING_RELEASED', 'the frame was released', this.ring)
    }
    return Buffer.from(this.pixels)
  }

  [Symbol.dispose]() {
    this.release()
  }
}

function frameOf(nativeFrame, ring) {
  return nativeFrame ? new Frame(nativeFrame, ring) : null
}

/** The arguments of a Reader, checked: [ring, dir, zeroCopy]. */
function readerArgs(ring, options) {
  ring = stringOf(undefined, 'ring', ring)
  const { dir, zeroCopy } = optionsOf(ring, options)
  if (zeroCopy !== undefined && typeof zeroCopy !== 'boolean') {
    throw invalid(ring, 'zeroCopy: expected a boolean')
  }
  return [ring, stringOf(ring, 'dir', dir, true), zeroCopy]
}

/** Passed as the options by `Reader.open`, with the native reader it opened. */
const OPENED = Symbol('opened')

/**
 * Reads one ring. `latest()` returns the newest frame not returned yet (skipping what a
 * slow reader missed), `next()` every frame in order, `get(handle)` exactly one. When
 * its writer dies or is replaced, the reader takes the next writer's frames.
 */
class Reader {
  #native
  constructor(ring, options, opened) {
    if (options === OPENED) {
      // From Reader.open, its arguments checked and its ring opened: nothing to run.
      this.ring = ring
      this.#native = opened
      return
    }
    const args = readerArgs(ring, options)
    this.ring = args[0]
    this.#native = call(ring, () => new native.NativeReader(...args))
  }

  /**
   * As `new Reader(ring, options)`, with the ring mapped off the event loop (on
   * libuv's pool): opening makes the page tables of the whole ring, 3 ms for 1080p.
   */
  static async open(ring, options) {
    const args = readerArgs(ring, options)
    let nat
    try {
      nat = await call(args[0], () => native.openReader(...args))
    } catch (e) {
      throw translate(e, args[0])
    }
    return new this(args[0], OPENED, nat)
  }

  /** The newest frame not returned yet; waits up to `timeout` ms (default 0: a poll). */
  latest(options) {
    const t = timeoutOf(this.ring, options)
    return frameOf(call(this.ring, () => this.#native.latest(t)), this.ring)
  }

  /** The next frame in order (`missed` counts frames lost); as `latest`. */
  next(options) {
    const t = timeoutOf(this.ring, options)
    return frameOf(call(this.ring, () => this.#native.next(t)), this.ring)
  }

  /** As `latest`, waiting off the event loop (default: for ever). */
  async latestAsync(options) {
    const t = timeoutOf(this.ring, options)
    try {
      return frameOf(await call(this.ring, () => this.#native.latestAsync(t)), this.ring)
    } catch (e) {
      throw translate(e, this.ring)
    }
  }

  /** As `next`, waiting off the event loop (default: for ever). */
  async nextAsync(options) {
    const t = timeoutOf(this.ring, options)
    try {
      return frameOf(await call(this.ring, () => this.#native.nextAsync(t)), this.ring)
    } catch (e) {
      throw translate(e, this.ring)
    }
  }

  /** Exactly the frame `handle` names (a copy), without waiting. */
  get(handle) {
    const h = stringOf(this.ring, 'handle', handle)
    return frameOf(call(this.ring, () => this.#native.get(h)), this.ring)
  }

  /** The frame captured closest to `capturedAt` (ns) by `rule` (a copy). */
  at(capturedAt, rule = 'nearest') {
    const t = timeOf(this.ring, 'capturedAt', capturedAt)
    if (t === undefined) throw invalid(this.ring, 'capturedAt: expected ns')
    const r = stringOf(this.ring, 'rule', rule)
    return frameOf(call(this.ring, () => this.#native.at(t, r)), this.ring)
  }

  /** What the ring says of itself: width, height, format, fps, caps, slots, ... */
  info() {
    return call(this.ring, () => this.#native.info())
  }

  /** Frames as they come (`mode` 'latest' or 'next'), until the stream ends. */
  async *frames({ mode = 'latest' } = {}) {
    if (mode !== 'latest' && mode !== 'next') {
      throw invalid(this.ring, `mode ${String(mode)}: expected 'latest' or 'next'`)
    }
    for (;;) {
      let f
      try {
        f = mode === 'latest' ? await this.latestAsync() : await this.nextAsync()
      } catch (e) {
        if (e.code === 'ERR_SHMRING_EOS' || e.code === 'ERR_SHMRING_CLOSED') return
        throw e
      }
      if (f) yield f
    }
  }

  /** Stops reading: a pending async read rejects with ERR_SHMRING_CLOSED. */
  close() {
    this.#native.close()
  }

  get closed() {
    return this.#native.closed
  }

  [Symbol.dispose]() {
    this.close()
  }
}

/**
 * A frame being filled in place: `pixels` is a slot of the ring lent to this process
 * (or a buffer of its own when none is free). `commit()` publishes it and detaches
 * `pixels`, so nothing written afterwards reaches the ring.
 */
class WriteFrame {
  #native
  #writer
  #pixels
  constructor(writer, nativeFrame, ring) {
    this.#writer = writer
    this.#native = nativeFrame
    this.ring = ring
    this.#pixels = call(ring, () => nativeFrame.pixels())
    this.handle = null
  }

  /** The slot to fill (a getter: the Buffer cannot be replaced). */
  get pixels() {
    return this.#pixels
  }

  /** Publishes the frame; its handle. */
  commit() {
    this.handle = call(this.ring, () => this.#writer.commit(this.#native))
    return this.handle
  }

  /** Gives the slot back without publishing. */
  drop() {
    call(this.ring, () => this.#native.dropFrame())
  }
}

/** Writes one ring of `width` x `height` frames of `format` at `fps`. */
class Writer {
  #native
  constructor(ring, options) {
    this.ring = stringOf(undefined, 'ring', ring)
    const o = optionsOf(ring, options)
    for (const k of ['width', 'height', 'fps']) {
      if (typeof o[k] !== 'number') throw invalid(ring, `${k}: expected a number, got ${typeof o[k]}`)
    }
    for (const k of ['slots', 'leaseSlots', 'poolSlots']) {
      if (o[k] !== undefined && typeof o[k] !== 'number') {
        throw invalid(ring, `${k}: expected a number, got ${typeof o[k]}`)
      }
    }
    const opts = {
      width: o.width,
      height: o.height,
      format: stringOf(ring, 'format', o.format),
      fps: o.fps,
      slots: o.slots,
      leaseSlots: o.leaseSlots,
      poolSlots: o.poolSlots,
      dir: stringOf(ring, 'dir', o.dir, true),
    }
    this.#native = call(ring, () => new native.NativeWriter(ring, opts))
    this.frameSize = this.#native.frameSize
  }

  /** Copies `pixels` (a Buffer or Uint8Array of `frameSize` bytes) in; its handle. */
  write(pixels, options) {
    if (!(pixels instanceof Uint8Array)) {
      throw invalid(this.ring, `pixels: expected a Buffer or Uint8Array, got ${typeof pixels}`)
    }
    const { pts, capturedAt } = optionsOf(this.ring, options)
    const p = timeOf(this.ring, 'pts', pts)
    const c = timeOf(this.ring, 'capturedAt', capturedAt)
    return call(this.ring, () => this.#native.write(pixels, p, c))
  }

  /** A frame to fill in place, then `commit()`. */
  frame(options) {
    const { pts, capturedAt } = optionsOf(this.ring, options)
    const p = timeOf(this.ring, 'pts', pts)
    const c = timeOf(this.ring, 'capturedAt', capturedAt)
    const f = call(this.ring, () => this.#native.frame(p, c))
    return new WriteFrame(this.#native, f, this.ring)
  }

  /** Removes the ring; later calls throw ERR_SHMRING_CLOSED. */
  close() {
    this.#native.close()
  }

  get closed() {
    return this.#native.closed
  }

  [Symbol.dispose]() {
    this.close()
  }
}

module.exports = { Reader, Writer, Frame, WriteFrame, ShmringError }
