// Types of the `shmring` package (index.js). Checked against the tests by `npm test`.

/// <reference types="node" />

/** The code of a ShmringError. */
export type ShmringErrorCode =
  | 'ERR_SHMRING_NOT_FOUND'
  | 'ERR_SHMRING_PERMISSION'
  | 'ERR_SHMRING_CORRUPT'
  | 'ERR_SHMRING_BAD_NAME'
  | 'ERR_SHMRING_BAD_HANDLE'
  | 'ERR_SHMRING_HANDLE_GONE'
  | 'ERR_SHMRING_NOT_YET_WRITTEN'
  | 'ERR_SHMRING_IN_USE'
  | 'ERR_SHMRING_INVALID_ARG'
  | 'ERR_SHMRING_SLOTS_HELD'
  | 'ERR_SHMRING_CLOSED'
  | 'ERR_SHMRING_BUSY'
  | 'ERR_SHMRING_RELEASED'
  | 'ERR_SHMRING_EOS'
  | 'ERR_SHMRING_WRITER_GONE'
  | 'ERR_SHMRING_IO'
  | 'ERR_SHMRING_NODE'

/** An error of a ring: `code` says which, `ring` names the ring. */
export class ShmringError extends Error {
  readonly code: ShmringErrorCode
  readonly ring: string | undefined
}

/** A time in ns: a BigInt, or a safe integer Number. */
export type Nanoseconds = bigint | number

export interface ReaderOptions {
  /** Ring directory; default `$SHMRING_DIR` or `/dev/shm/shmring-<uid>`. */
  dir?: string
  /** Lease slots in place (default true); false copies every frame. */
  zeroCopy?: boolean
}

export interface WaitOptions {
  /** ms to wait; sync calls default to 0 (a poll), async ones to Infinity. */
  timeout?: number
}

export interface Plane {
  /** Where the plane starts in `pixels`. */
  offset: number
  /** Bytes from one row to the next. */
  stride: number
}

/** A frame read from a ring. */
export class Frame {
  /** The frame's bytes: over the ring's slot while leased (read-only memory), else a copy. Length 0 after `release()`. */
  readonly pixels: Buffer
  readonly ring: string
  /** The frame's sequence in its ring (1, 2, ...). */
  readonly seq: number
  /** `ring:epoch:seq`, for `Reader.get`. */
  readonly handle: string
  readonly pts: bigint | null
  readonly dts: bigint | null
  readonly duration: bigint | null
  /** Wall-clock capture time, ns since the Unix epoch. */
  readonly capturedAt: bigint
  readonly width: number
  readonly height: number
  /** A GStreamer format name: I420, NV12, BGRx, ... */
  readonly format: string
  readonly planes: Plane[]
  /** GStreamer buffer flags. */
  readonly flags: number
  /** Frames skipped (`latest`) or lost (`next`) before this one. */
  readonly missed: number
  /** Whether `pixels` is the ring's slot itself (leased), not a copy. */
  readonly zeroCopy: boolean
  /** Whether the frame still holds its bytes. */
  readonly held: boolean
  /** Ends the lease; `pixels` and every view of it are detached from then on. */
  release(): void
  /** A copy of the bytes, which stays after `release()`. */
  copy(): Buffer
  [Symbol.dispose](): void
}

export interface RingInfo {
  ring: string
  path: string
  width?: number
  height?: number
  format?: string
  fps?: number
  caps?: string
  slots: number
  writerPid: number
  writerState: 'live' | 'eos' | 'closed' | 'replaced' | 'dead'
  epoch: string
}

export type AtRule = 'nearest' | 'at-or-before' | 'at-or-after'

/** Reads one ring, following its writer when it is restarted or replaced. */
export class Reader {
  constructor(ring: string, options?: ReaderOptions)
  /** As the constructor, with the ring mapped off the event loop (on libuv's pool). */
  static open(ring: string, options?: ReaderOptions): Promise<Reader>
  readonly ring: string
  readonly closed: boolean
  /** The newest frame not returned yet; null when none came in time. */
  latest(options?: WaitOptions): Frame | null
  /** The next frame in order; null when none came in time. */
  next(options?: WaitOptions): Frame | null
  /** As `latest`, waiting off the event loop. */
  latestAsync(options?: WaitOptions): Promise<Frame | null>
  /** As `next`, waiting off the event loop. */
  nextAsync(options?: WaitOptions): Promise<Frame | null>
  /** Exactly the frame `handle` names (a copy). */
  get(handle: string): Frame
  /** The frame captured closest to `capturedAt` by `rule` (a copy). */
  at(capturedAt: Nanoseconds, rule?: AtRule): Frame
  info(): RingInfo
  /** Frames as they come, until the writer's stream ends or the reader is closed. */
  frames(options?: { mode?: 'latest' | 'next' }): AsyncGenerator<Frame, void, undefined>
  close(): void
  [Symbol.dispose](): void
}

export interface WriterOptions {
  width: number
  height: number
  /** A GStreamer format name: I420, NV12, YV12, NV21, GRAY8, GRAY16_LE, RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR. */
  format: string
  fps: number
  /** Ring slots; default half a second. */
  slots?: number
  /** Spare slots readers may lease (default 8). */
  leaseSlots?: number
  /** Slots lent to this process to fill in place (default 2). */
  poolSlots?: number
  dir?: string
}

export interface FrameStamps {
  pts?: Nanoseconds
  /** ns since the Unix epoch; default: the time of the commit. */
  capturedAt?: Nanoseconds
}

/** A frame being filled in place. */
export class WriteFrame {
  /** The slot (or a buffer of its own); detached at `commit()` or `drop()`. */
  readonly pixels: Buffer
  readonly ring: string
  /** The handle, once committed. */
  readonly handle: string | null
  commit(): string
  drop(): void
}

/** Writes one ring. */
export class Writer {
  constructor(ring: string, options: WriterOptions)
  readonly ring: string
  /** Bytes of one frame. */
  readonly frameSize: number
  readonly closed: boolean
  /** Copies `pixels` in as the next frame; its handle. */
  write(pixels: Uint8Array, stamps?: FrameStamps): string
  /** A frame to fill in place, then `commit()`. */
  frame(stamps?: FrameStamps): WriteFrame
  close(): void
  [Symbol.dispose](): void
}
