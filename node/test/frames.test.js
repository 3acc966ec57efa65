'use strict'
// Frames: zero-copy, never torn, detached at release, leases ended by GC, async waits
// off the event loop, across real processes and a writer that restarts.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const { Reader, Writer } = require('..')
const { ringDir, pattern, check, gc, writer, printed } = require('./helpers.js')

const W = 64
const H = 48

test('a frame written is read with its times, handle and geometry, zero-copy', (t) => {
  const dir = ringDir(t)
  const w = new Writer('cam', { width: W, height: H, format: 'I420', fps: 30, dir })
  const r = new Reader('cam', { dir })
  assert.equal(w.frameSize, (W * H * 3) / 2)
  const handle = w.write(pattern(1, w.frameSize), { pts: 5n, capturedAt: 1234567890123456789n })
  const f = r.latest({ timeout: 1000 })
  assert.ok(f)
  assert.equal(check(f.pixels), 1)
  assert.equal(f.handle, handle)
  assert.equal(f.seq, 1)
  assert.equal(f.pts, 5n)
  assert.equal(f.capturedAt, 1234567890123456789n)
  assert.equal(f.duration, 33333333n)
  assert.deepEqual([f.width, f.height, f.format], [W, H, 'I420'])
  assert.deepEqual(f.planes.map((p) => p.offset), [0, W * H, W * H + (W / 2) * (H / 2)])
  assert.equal(f.zeroCopy, true)
  f.release()
  const g = r.get(handle)
  assert.equal(check(g.pixels), 1)
  assert.equal(g.zeroCopy, false)
  assert.equal(r.at(1234567890123456789n, 'at-or-before').seq, 1)
  w.write(pattern(2, w.frameSize))
  const n = r.latest()
  assert.equal(n.pts, null)
  n.release()
  r.close()
  w.close()
})

test('Reader.open opens off the event loop and reads as the constructor does', async (t) => {
  const dir = ringDir(t)
  const w = new Writer('cam', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  w.write(pattern(1, w.frameSize))
  const pending = Reader.open('cam', { dir })
  assert.ok(pending instanceof Promise)
  const r = await pending
  assert.ok(r instanceof Reader)
  assert.equal(r.ring, 'cam')
  const f = r.latest({ timeout: 1000 })
  assert.equal(check(f.pixels), 1)
  assert.equal(f.zeroCopy, true)
  f.release()
  w.write(pattern(2, w.frameSize))
  const g = await r.nextAsync({ timeout: 1000 })
  assert.equal(check(g.pixels), 2)
  g.release()
  const copies = await Reader.open('cam', { dir, zeroCopy: false })
  assert.equal(copies.latest().zeroCopy, false)
  copies.close()
  // The options are taken when it is called: a change while it opens does not count.
  const options = { dir }
  const opening = Reader.open('cam', options)
  options.zeroCopy = 'yes'
  options.dir = 5
  const taken = await opening
  assert.equal(check(taken.latest({ timeout: 1000 }).pixels), 2)
  taken.close()
  class Mine extends Reader {}
  const mine = await Mine.open('cam', { dir })
  assert.ok(mine instanceof Mine)
  mine.close()
  // The constructor after it opens a ring of its own, not one Reader.open left behind.
  const again = new Reader('cam', { dir })
  assert.equal(check(again.latest().pixels), 2)
  again.close()
  r.close()
  w.close()
})

test('release detaches pixels and every view of them', (t) => {
  const dir = ringDir(t)
  const w = new Writer('cam', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  const r = new Reader('cam', { dir })
  w.write(pattern(1, w.frameSize))
  const f = r.latest({ timeout: 1000 })
  const view = f.pixels.subarray(10, 20)
  const u8 = new Uint8Array(f.pixels.buffer)
  const copy = f.copy()
  assert.equal(view.length, 10)
  f.release()
  assert.equal(f.pixels.length, 0)
  assert.equal(view.length, 0)
  assert.equal(u8.length, 0)
  assert.equal(f.pixels.buffer.byteLength, 0)
  assert.equal(f.held, false)
  assert.equal(check(copy), 1)
  f.release() // twice: nothing
  assert.throws(() => f.copy(), { code: 'ERR_SHMRING_RELEASED' })
  r.close()
  w.close()
})

test('a frame fills its slot in place and the commit detaches it', (t) => {
  const dir = ringDir(t)
  const w = new Writer('cam', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  const r = new Reader('cam', { dir })
  const slot = w.frame({ pts: 7n })
  pattern(3, w.frameSize).copy(slot.pixels)
  const kept = slot.pixels
  const handle = slot.commit()
  assert.equal(kept.length, 0, 'the slot is detached at the commit')
  const f = r.latest({ timeout: 1000 })
  assert.equal(f.handle, handle)
  assert.equal(check(f.pixels), 3)
  assert.equal(f.pts, 7n)
  f.release()
  assert.throws(() => slot.commit(), { code: 'ERR_SHMRING_INVALID_ARG' })
  const dropped = w.frame()
  dropped.drop()
  assert.equal(dropped.pixels.length, 0)
  assert.equal(r.latest(), null, 'a dropped frame is not published')
  r.close()
  w.close()
})

test('the lease budget holds, and frames collected give their leases back', async (t) => {
  const dir = ringDir(t)
  const w = new Writer('cam', { width: W, height: H, format: 'GRAY8', fps: 30, dir, slots: 4, leaseSlots: 2 })
  const r = new Reader('cam', { dir })
  let held = []
  for (let n = 1; n <= 6; n++) {
    w.write(pattern(n, w.frameSize))
    const f = r.latest({ timeout: 1000 })
    assert.equal(check(f.pixels), n)
    held.push(f)
  }
  // Every frame held is intact, however many the writer wrote since.
  for (let n = 7; n <= 40; n++) w.write(pattern(n, w.frameSize))
  held.forEach((f, i) => assert.equal(check(f.pixels), i + 1))
  assert.ok(held.some((f) => !f.zeroCopy), 'beyond the budget, frames are copies')
  const leased = held.filter((f) => f.zeroCopy).length
  assert.ok(leased >= 1 && leased <= 3, `${leased} leased`)
  // Dropped without release: collected, the leases come back.
  held = null
  await gc()
  const again = []
  for (let n = 41; n <= 42; n++) {
    w.write(pattern(n, w.frameSize))
    again.push(r.latest({ timeout: 1000 }))
  }
  assert.ok(again.every((f) => f.zeroCopy), 'the collected frames gave their leases back')
  again.forEach((f) => f.release())
  r.close()
  w.close()
})

test('a Buffer kept after its frame is collected keeps the lease and its bytes', async (t) => {
  const dir = ringDir(t)
  const w = new Writer('cam', { width: W, height: H, format: 'GRAY8', fps: 30, dir, slots: 4 })
  const r = new Reader('cam', { dir })
  w.write(pattern(1, w.frameSize))
  let pixels = r.latest({ timeout: 1000 }).pixels
  await gc()
  for (let n = 2; n <= 30; n++) w.write(pattern(n, w.frameSize))
  assert.equal(check(pixels), 1)
  pixels = null
  await gc()
  r.close()
  w.close()
})

test('async waits leave the event loop free, and close ends them', async (t) => {
  const dir = ringDir(t)
  const w = new Writer('cam', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  const r = new Reader('cam', { dir })
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const pending = r.latestAsync({ timeout: 400 })
  assert.throws(() => r.latest(), { code: 'ERR_SHMRING_BUSY' })
  const started = Date.now()
  assert.equal(await pending, null, 'no frame: null at the timeout')
  assert.ok(Date.now() - started >= 350)
  assert.ok(ticks >= 20, `the event loop ran while waiting (${ticks} ticks)`)
  const coming = r.nextAsync()
  setTimeout(() => w.write(pattern(9, w.frameSize)), 50)
  const f = await coming
  assert.equal(check(f.pixels), 9)
  f.release()
  const never = r.latestAsync()
  setTimeout(() => r.close(), 50)
  await assert.rejects(never, { code: 'ERR_SHMRING_CLOSED', ring: 'cam' })
  clearInterval(timer)
  w.close()
})

test('get and info answer at once beside a pending async read', async (t) => {
  const dir = ringDir(t)
  const w = new Writer('cam', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  const r = new Reader('cam', { dir })
  const handle = w.write(pattern(1, w.frameSize))
  r.latest().release()
  const pending = r.latestAsync({ timeout: 1000 })
  let slowest = 0
  for (let i = 0; i < 50; i++) {
    const t0 = process.hrtime.bigint()
    r.get(handle).release()
    r.info()
    slowest = Math.max(slowest, Number(process.hrtime.bigint() - t0) / 1e6)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  // A wait holds no lock: 50 ms would mean a get waited for the reader's thread.
  assert.ok(slowest < 50, `slowest get ${slowest} ms`)
  w.write(pattern(2, w.frameSize))
  assert.equal(check((await pending).pixels), 2)
  r.close()
  w.close()
})

test('frames from another process arrive whole, in order with next()', async (t) => {
  const dir = ringDir(t)
  const { child, done } = writer(dir, 'cam', { count: 300, everyMs: 2 })
  await printed(child, 'ready')
  const r = new Reader('cam', { dir })
  let first = 0
  let last = 0
  let got = 0
  let lost = 0
  while (last < 300) {
    const f = await r.nextAsync({ timeout: 5000 })
    assert.ok(f, `frame after ${last} within 5 s`)
    const seq = check(f.pixels)
    assert.equal(seq, f.seq)
    assert.ok(seq > last)
    first ||= seq
    lost += first === seq ? 0 : f.missed
    last = seq
    got++
    f.release()
  }
  assert.equal((await done).code, 0)
  assert.equal(got + lost, 300 - first + 1, 'every frame from the first is read or counted lost')
  r.close()
})

test('a writer killed and started again is followed', async (t) => {
  const dir = ringDir(t)
  const first = writer(dir, 'cam', { everyMs: 5 })
  await printed(first.child, 'ready')
  const r = new Reader('cam', { dir })
  const f = await r.latestAsync({ timeout: 2000 })
  const epoch = f.handle.split(':')[1]
  f.release()
  first.child.kill('SIGKILL')
  await first.done
  const second = writer(dir, 'cam', { everyMs: 5 })
  t.after(() => second.child.kill('SIGKILL'))
  await printed(second.child, 'ready')
  let g = null
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    g = await r.latestAsync({ timeout: 1000 })
    if (g && g.handle.split(':')[1] !== epoch) break
    g?.release()
  }
  assert.ok(g, 'a frame of the new writer')
  assert.notEqual(g.handle.split(':')[1], epoch)
  check(g.pixels)
  g.release()
  r.close()
})

test('examples/node/motion.js scores a ring and prints fps and latency', async (t) => {
  const dir = ringDir(t)
  const w = new Writer('cam1', { width: 320, height: 240, format: 'I420', fps: 30, dir })
  let n = 0
  const timer = setInterval(() => w.write(pattern(++n, w.frameSize)), 33)
  const example = require('node:path').resolve(__dirname, '../../examples/node/motion.js')
  const r = await new Promise((resolve) => {
    execFile(process.execPath, [example, 'cam1', '2.5'], { env: { ...process.env, SHMRING_DIR: dir } }, (e, out, err) =>
      resolve({ code: e ? e.code : 0, out, err }),
    )
  })
  clearInterval(timer)
  w.close()
  assert.equal(r.code, 0, r.err)
  const lines = r.out.trim().split('\n')
  assert.ok(lines.length >= 2, r.out)
  for (const line of lines) {
    const m = /^cam1: ([\d.]+) fps, motion ([\d.]+), latency from capture ([\d.]+) ms$/.exec(line)
    assert.ok(m, line)
    assert.ok(Number(m[1]) > 10 && Number(m[1]) < 50, line)
    assert.ok(Number(m[2]) > 0, `patterns differ frame to frame: ${line}`)
  }
})
