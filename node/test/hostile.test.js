'use strict'
// Bad input from every side: arguments of every type and range, another user's ring, a
// junk or truncated ring file, handles that are gone or foreign, closed objects, and a
// careless reader. Each gets an Error with a code (and the ring's name), never a crash.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { MessageChannel } = require('node:worker_threads')
const { Reader, Writer, ShmringError } = require('..')
const { ringDir, pattern, check, node } = require('./helpers.js')

const W = 64
const H = 48

/** Asserts `fn` throws a ShmringError of `code`. */
function throwsCode(fn, code, ring) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof ShmringError, `${e && e.stack}`)
    assert.equal(e.code, code, e.message)
    if (ring !== undefined) assert.equal(e.ring, ring)
    return true
  })
}

test('writer arguments out of range or of the wrong type are refused, naming what', (t) => {
  const dir = ringDir(t)
  const good = { width: W, height: H, format: 'GRAY8', fps: 30, dir }
  const bad = [
    [{ width: 0 }, /width/],
    [{ width: 16385 }, /width/],
    [{ width: 64.5 }, /width/],
    [{ width: '64' }, /width/],
    [{ width: NaN }, /width/],
    [{ height: -1 }, /height/],
    [{ height: 2 ** 60 }, /height/],
    [{ format: 'NOPE' }, /format/],
    [{ format: 7 }, /format/],
    [{ fps: 0 }, /fps/],
    [{ fps: Infinity }, /fps/],
    [{ fps: NaN }, /fps/],
    [{ slots: 1 }, /slots/],
    [{ slots: 5000 }, /slots/],
    [{ leaseSlots: -1 }, /lease/],
    [{ poolSlots: 65 }, /pool/],
    [{ leaseSlots: 40, poolSlots: 40 }, /together/],
    [{ dir: 5 }, /dir/],
  ]
  for (const [change, what] of bad) {
    assert.throws(() => new Writer('w', { ...good, ...change }), (e) => {
      assert.equal(e.code, 'ERR_SHMRING_INVALID_ARG', `${JSON.stringify(change)}: ${e.message}`)
      assert.match(e.message, what)
      return true
    })
  }
  throwsCode(() => new Writer('w'), 'ERR_SHMRING_INVALID_ARG')
  throwsCode(() => new Writer('w', 'x'), 'ERR_SHMRING_INVALID_ARG')
  for (const name of ['', '../x', 'a/b', '.hidden', 'x'.repeat(300), 'a\0b']) {
    throwsCode(() => new Writer(name, good), 'ERR_SHMRING_BAD_NAME')
    throwsCode(() => new Reader(name, { dir }), 'ERR_SHMRING_BAD_NAME')
  }
  throwsCode(() => new Reader(42), 'ERR_SHMRING_INVALID_ARG')
})

/** Asserts the promise `p` rejects with a ShmringError of `code`. */
async function rejectsCode(p, code, ring) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof ShmringError, `${e && e.stack}`)
    assert.equal(e.code, code, e.message)
    if (ring !== undefined) assert.equal(e.ring, ring)
    return true
  })
}

test('Reader.open refuses what the constructor refuses, as a rejection', async (t) => {
  const dir = ringDir(t)
  for (const name of ['', '../x', 'a/b', '.hidden', 'x'.repeat(300), 'a\0b']) {
    await rejectsCode(Reader.open(name, { dir }), 'ERR_SHMRING_BAD_NAME')
  }
  await rejectsCode(Reader.open(42), 'ERR_SHMRING_INVALID_ARG')
  await rejectsCode(Reader.open('cam', 'x'), 'ERR_SHMRING_INVALID_ARG')
  await rejectsCode(Reader.open('cam', { dir, zeroCopy: 'yes' }), 'ERR_SHMRING_INVALID_ARG')
  await rejectsCode(Reader.open('cam', { dir: 5 }), 'ERR_SHMRING_INVALID_ARG')
  await rejectsCode(Reader.open('absent', { dir }), 'ERR_SHMRING_NOT_FOUND', 'absent')
  fs.writeFileSync(`${dir}/junk.ring`, Buffer.alloc(65536, 0xa5))
  await rejectsCode(Reader.open('junk', { dir }), 'ERR_SHMRING_CORRUPT', 'junk')
  // Many at once, half of them bad: each settles alone, the good ones read.
  const w = new Writer('cam', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  w.write(pattern(1, w.frameSize))
  const opens = Array.from({ length: 40 }, (_, i) => Reader.open(i % 2 ? 'cam' : 'absent', { dir }))
  const settled = await Promise.allSettled(opens)
  settled.forEach((s, i) => {
    if (i % 2) {
      assert.equal(s.status, 'fulfilled')
      assert.equal(check(s.value.latest().pixels), 1)
      s.value.close()
    } else {
      assert.equal(s.status, 'rejected')
      assert.equal(s.reason.code, 'ERR_SHMRING_NOT_FOUND')
    }
  })
  w.close()
})

test('frames and times of the wrong size, type or range are refused', (t) => {
  const dir = ringDir(t)
  const w = new Writer('w', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  const px = Buffer.alloc(w.frameSize)
  throwsCode(() => w.write(Buffer.alloc(3)), 'ERR_SHMRING_INVALID_ARG', 'w')
  throwsCode(() => w.write(Buffer.alloc(w.frameSize + 1)), 'ERR_SHMRING_INVALID_ARG')
  throwsCode(() => w.write('x'.repeat(w.frameSize)), 'ERR_SHMRING_INVALID_ARG')
  throwsCode(() => w.write([1, 2, 3]), 'ERR_SHMRING_INVALID_ARG')
  throwsCode(() => w.write(null), 'ERR_SHMRING_INVALID_ARG')
  for (const t of [-1n, 2n ** 63n, 2n ** 64n, -(2n ** 100n), 1.5, -1, 2 ** 60, NaN, '5', {}, true]) {
    throwsCode(() => w.write(px, { pts: t }), 'ERR_SHMRING_INVALID_ARG')
    throwsCode(() => w.write(px, { capturedAt: t }), 'ERR_SHMRING_INVALID_ARG')
    throwsCode(() => w.frame({ pts: t }), 'ERR_SHMRING_INVALID_ARG')
  }
  throwsCode(() => w.write(px, 5), 'ERR_SHMRING_INVALID_ARG')
  // The edges are kept.
  const r = new Reader('w', { dir })
  w.write(px, { pts: 2n ** 63n - 1n, capturedAt: 0 })
  const f = r.latest()
  assert.deepEqual([f.pts, f.capturedAt], [2n ** 63n - 1n, 0n])
  f.release()
  // A Uint8Array over part of an ArrayBuffer is taken as it is.
  const big = new Uint8Array(w.frameSize + 10)
  big.set(pattern(4, w.frameSize), 10)
  w.write(big.subarray(10))
  assert.equal(check(r.latest().pixels), 4)
  r.close()
  w.close()
})

test('reads, handles and times that cannot be had say why', (t) => {
  const dir = ringDir(t)
  throwsCode(() => new Reader('absent', { dir }), 'ERR_SHMRING_NOT_FOUND', 'absent')
  throwsCode(() => new Reader('x', { dir: '/nonexistent/dir' }), 'ERR_SHMRING_NOT_FOUND')
  fs.writeFileSync(`${dir}/junk.ring`, Buffer.alloc(65536, 0xa5))
  throwsCode(() => new Reader('junk', { dir }), 'ERR_SHMRING_CORRUPT', 'junk')
  fs.writeFileSync(`${dir}/short.ring`, Buffer.alloc(10))
  throwsCode(() => new Reader('short', { dir }), 'ERR_SHMRING_CORRUPT')
  const w = new Writer('e', { width: W, height: H, format: 'GRAY8', fps: 30, dir, slots: 4 })
  throwsCode(() => new Writer('e', { width: W, height: H, format: 'GRAY8', fps: 30, dir }), 'ERR_SHMRING_IN_USE')
  const r = new Reader('e', { dir })
  const first = w.write(pattern(1, w.frameSize))
  for (let n = 2; n < 12; n++) w.write(pattern(n, w.frameSize))
  throwsCode(() => r.get(first), 'ERR_SHMRING_HANDLE_GONE', 'e')
  const [ring, epoch] = first.split(':')
  throwsCode(() => r.get(`${ring}:${epoch}:1000`), 'ERR_SHMRING_NOT_YET_WRITTEN')
  throwsCode(() => r.get(`other:${epoch}:1`), 'ERR_SHMRING_BAD_HANDLE')
  for (const h of ['', 'x', 'e:zz:1', `e:${epoch}:-1`, `e:${epoch}:1:2`, 'e'.repeat(5000), 5, null]) {
    assert.throws(() => r.get(h), (e) => ['ERR_SHMRING_BAD_HANDLE', 'ERR_SHMRING_INVALID_ARG'].includes(e.code))
  }
  throwsCode(() => r.at(-1n), 'ERR_SHMRING_INVALID_ARG')
  throwsCode(() => r.at(2n ** 64n), 'ERR_SHMRING_INVALID_ARG')
  throwsCode(() => r.at(1n, 'sideways'), 'ERR_SHMRING_INVALID_ARG')
  throwsCode(() => r.at(1n, 'at-or-before'), 'ERR_SHMRING_HANDLE_GONE')
  assert.equal(r.at(1n).seq, 8, 'nearest: the oldest frame held')
  throwsCode(() => r.at(2n ** 64n - 1n, 'at-or-after'), 'ERR_SHMRING_NOT_YET_WRITTEN')
  for (const timeout of [-1, NaN, '5', {}, 10n]) {
    throwsCode(() => r.latest({ timeout }), 'ERR_SHMRING_INVALID_ARG')
  }
  assert.equal(r.latest({ timeout: 0 }).seq, 11)
  assert.equal(r.latest({ timeout: 0 }), null, 'a poll')
  assert.rejects(r.latestAsync({ timeout: -5 }), { code: 'ERR_SHMRING_INVALID_ARG' })
  r.close()
  w.close()
  for (const call of [() => r.latest(), () => r.next(), () => r.get(first), () => r.info(), () => r.at(1n)]) {
    throwsCode(call, 'ERR_SHMRING_CLOSED', 'e')
  }
  assert.rejects(r.latestAsync(), { code: 'ERR_SHMRING_CLOSED' })
  throwsCode(() => w.write(pattern(1, w.frameSize)), 'ERR_SHMRING_CLOSED', 'e')
  throwsCode(() => w.frame(), 'ERR_SHMRING_CLOSED')
  r.close() // twice: nothing
  w.close()
})

test('another user cannot open a private ring: ERR_SHMRING_PERMISSION, not a crash', async (t) => {
  const dir = ringDir(t)
  fs.chmodSync(dir, 0o755) // the directory may be looked into; the ring is 0600
  const w = new Writer('private', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  w.write(pattern(1, w.frameSize))
  const { done } = node(
    `
    const { Reader } = require(process.argv[2])
    try { new Reader('private', { dir: process.argv[1] }); console.log('opened') }
    catch (e) { console.log(e.code) }
    `,
    [dir, require.resolve('..')],
    { uid: 65534, gid: 65534, cwd: '/' },
  )
  const r = await done
  assert.equal(r.signal, null, r.err)
  assert.equal(r.out.trim(), 'ERR_SHMRING_PERMISSION', r.err)
  w.close()
})

test('a ring truncated under a leased frame reads zeros, then errors: no SIGBUS', (t) => {
  const dir = ringDir(t)
  const w = new Writer('cut', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  const r = new Reader('cut', { dir })
  w.write(pattern(1, w.frameSize))
  const f = r.latest()
  assert.equal(f.zeroCopy, true)
  fs.truncateSync(`${dir}/cut.ring`, 0)
  let sum = 0
  for (const b of f.pixels) sum += b
  assert.equal(sum, 0, 'the truncated slot reads as zeros')
  f.release()
  assert.throws(() => r.latest(), (e) => ['ERR_SHMRING_CORRUPT', 'ERR_SHMRING_IO'].includes(e.code))
  r.close()
  w.close()
})

test('the memory a frame leases cannot be transferred away from its release', (t) => {
  const dir = ringDir(t)
  const w = new Writer('tx', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  const r = new Reader('tx', { dir })
  w.write(pattern(1, w.frameSize))
  const f = r.latest()
  // Asked to transfer, Node copies an untransferable ArrayBuffer: the frame keeps its own.
  const clone = structuredClone(f.pixels.buffer, { transfer: [f.pixels.buffer] })
  assert.equal(f.pixels.length, w.frameSize)
  assert.equal(check(Buffer.from(clone)), 1)
  const { port1, port2 } = new MessageChannel()
  port1.postMessage(f.pixels.buffer, [f.pixels.buffer])
  port1.close()
  port2.close()
  assert.equal(f.pixels.length, w.frameSize)
  assert.throws(() => {
    f.pixels = Buffer.alloc(1)
  }, TypeError)
  assert.equal(check(f.pixels), 1)
  f.release()
  assert.equal(f.pixels.length, 0)
  assert.equal(check(Buffer.from(clone)), 1, 'the copy outlives the release')
  const slot = w.frame()
  structuredClone(slot.pixels.buffer, { transfer: [slot.pixels.buffer] })
  assert.equal(slot.pixels.length, w.frameSize)
  slot.commit()
  assert.equal(slot.pixels.length, 0)
  r.close()
  w.close()
})

test('a reader writing into a leased frame dies alone: the ring and other readers are unharmed', async (t) => {
  const dir = ringDir(t)
  const w = new Writer('ro', { width: W, height: H, format: 'GRAY8', fps: 30, dir })
  const r = new Reader('ro', { dir })
  w.write(pattern(1, w.frameSize))
  const { done } = node(
    `
    const { Reader } = require('.')
    const f = new Reader('ro', { dir: process.argv[1] }).latest()
    console.log(f.zeroCopy)
    f.pixels.fill(0)
    console.log('wrote')
    `,
    [dir],
  )
  const child = await done
  assert.equal(child.out.trim(), 'true', 'the child held the slot in place')
  assert.equal(child.signal, 'SIGSEGV', 'the slot is read-only memory in a reader')
  const f = r.latest()
  assert.equal(check(f.pixels), 1, 'the frame is as the writer wrote it')
  f.release()
  r.close()
  w.close()
})

test('random arguments of every type to every call: errors with codes, never a crash', (t) => {
  const dir = ringDir(t)
  const w = new Writer('fuzz', { width: W, height: H, format: 'GRAY8', fps: 30, dir, slots: 4 })
  const r = new Reader('fuzz', { dir })
  let seed = 12345
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  const values = [
    undefined, null, 0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, 0n, -1n, 2n ** 63n,
    2n ** 64n, '', 'fuzz', 'x'.repeat(10000), 'fuzz:0000000000000000:1', {}, [], [1], () => 1,
    Symbol('s'), true, Buffer.alloc(0), Buffer.alloc(w.frameSize), new Uint8Array(3),
    new Float64Array(w.frameSize / 8), { timeout: -1 }, { timeout: 1 }, { pts: 5n }, { dir: 5 },
  ]
  const any = () => values[rand(values.length)]
  const calls = [
    () => r.latest(any()),
    () => r.next(any()),
    () => r.get(any()),
    () => r.at(any(), any()),
    () => r.info(),
    () => w.write(any(), any()),
    () => w.frame(any()),
    () => new Reader(any(), any()),
    () => new Writer(any(), any()),
    () => new Writer('fuzz2', { width: any(), height: any(), format: any(), fps: any(), dir }).close(),
  ]
  let errors = 0
  for (let i = 0; i < 3000; i++) {
    try {
      const out = calls[rand(calls.length)]()
      if (out && typeof out.release === 'function') out.release()
      if (out && typeof out.commit === 'function' && rand(2)) out.commit()
      else if (out && typeof out.drop === 'function') out.drop()
      if (out instanceof Reader) out.close()
    } catch (e) {
      errors++
      assert.ok(e instanceof ShmringError, `not a ShmringError: ${e && e.stack}`)
      assert.match(e.code, /^ERR_SHMRING_[A-Z_]+$/)
    }
  }
  assert.ok(errors > 500, `${errors} errors`)
  w.write(pattern(77, w.frameSize))
  assert.equal(check(r.latest({ timeout: 100 }).pixels), 77, 'the ring still works')
  r.close()
  w.close()
})
