#!/usr/bin/env node
'use strict'
// Reading a camera ring from Node, three ways, in the same run, against the same writer:
//   zero-copy   Reader.latest() and one byte read from pixels (this package)
//   copy        Reader.latest() and Buffer.from(pixels): a copying read
//   js-seqlock  a plain JavaScript seqlock reader over the same mapping, as Node addons
//               of other shared-memory rings do it: the newest slot's commit word, a
//               copy of its payload, the commit word again.
// Each is woken by a reader of this package that sleeps on the ring ("wait only" is that
// alone), then timed with the frame ready: "read" is the hot call (latest(), the byte or
// the copy, release()). Also the process CPU per frame over the run, waits included,
// and the latency from the writer's commit to the read's return. A writer process
// commits I420 frames at 30 fps.
//
// node bench/bench.js [--seconds S] [--sizes 1080p,4k] [--quick]

const path = require('node:path')
const fs = require('node:fs')
const { spawn } = require('node:child_process')
const { performance } = require('node:perf_hooks')
const { Reader, Writer } = require('..')
const native = require('../shmring.node')

const SIZES = { '1080p': [1920, 1080], '4k': [3840, 2160] }

function args() {
  const a = process.argv.slice(2)
  const o = { seconds: 5, sizes: ['1080p', '4k'] }
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--seconds') o.seconds = Number(a[++i])
    else if (a[i] === '--sizes') o.sizes = a[++i].split(',')
    else if (a[i] === '--quick') o.seconds = 1
    else if (a[i] === '--help') {
      console.log('node bench/bench.js [--seconds S] [--sizes 1080p,4k] [--quick]')
      process.exit(0)
    } else {
      console.error(`unknown argument ${a[i]}`)
      process.exit(2)
    }
  }
  if (!(o.seconds > 0) || o.sizes.some((s) => !SIZES[s])) {
    console.error('--seconds must be more than 0, --sizes of 1080p and 4k')
    process.exit(2)
  }
  return o
}

/** Wall-clock ns now, to the microsecond. */
function nowNs() {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

/** A writer process committing frames of `w` x `h` I420 at 30 fps to `ring`. */
function startWriter(dir, ring, w, h) {
  const code = `
    const { Writer } = require('.')
    const [dir, ring, w, h] = process.argv.slice(1)
    const wr = new Writer(ring, { width: +w, height: +h, format: 'I420', fps: 30, dir })
    const px = Buffer.alloc(wr.frameSize, 128)
    console.log('ready')
    setInterval(() => { px[0]++; wr.write(px) }, 1000 / 30)
  `
  const child = spawn(process.execPath, ['-e', code, '--', dir, ring, w, h], {
    cwd: path.resolve(__dirname, '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve(child))
    child.once('exit', (c) => reject(new Error(`writer exited (${c})`)))
  })
}

/** The plain JavaScript seqlock reader of the ring file `file` (docs/ring-format.md). */
function seqlockReader(file) {
  const map = native.mapRingForBench(file)
  const u64 = (off) => map.readBigUInt64LE(off)
  const slots = map.readUInt32LE(24)
  const payloadOffset = Number(u64(40))
  const stride = Number(u64(48))
  const out = Buffer.alloc(stride)
  let last = 0n
  return {
    /** The newest frame's bytes, copied and checked; null when none is new or it tore. */
    read() {
      const head = u64(88)
      if (head === last) return null
      const d = 4096 + Number(head % BigInt(slots)) * 256
      const commit = u64(d)
      if (commit !== ((head << 1n) | 1n)) return null
      const index = map.readUInt32LE(d + 8)
      const len = Number(u64(d + 16))
      const capturedAt = u64(d + 48)
      const at = payloadOffset + index * stride
      map.copy(out, 0, at, at + len)
      if (u64(d) !== commit) return null // torn: the writer took the slot meanwhile
      last = head
      return { bytes: out.subarray(0, len), capturedAt }
    },
  }
}

async function run(mode, dir, ring, seconds) {
  // Every mode is woken the same way, by a reader of its own that sleeps on the ring
  // and lets its frame go at once; then the read is timed with the frame ready (hot).
  const bell = new Reader(ring, { dir })
  const r = new Reader(ring, { dir })
  const js = mode === 'js-seqlock' ? seqlockReader(path.join(dir, `${ring}.ring`)) : null
  const calls = []
  const latencies = []
  let frames = 0
  let sink = 0
  const cpu0 = process.cpuUsage()
  const end = performance.now() + seconds * 1000
  while (performance.now() < end) {
    const ring = bell.latest({ timeout: 200 })
    if (!ring) continue
    ring.release()
    const t0 = performance.now()
    let capturedAt
    if (mode === 'wait only') {
      capturedAt = ring.capturedAt
    } else if (js) {
      const f = js.read()
      if (!f) continue
      sink += f.bytes[f.bytes.length - 1]
      capturedAt = f.capturedAt
    } else {
      const f = r.latest()
      if (!f) continue
      if (mode === 'copy') {
        const copy = Buffer.from(f.pixels)
        sink += copy[copy.length - 1]
      } else {
        sink += f.pixels[f.pixels.length - 1]
      }
      f.release()
      capturedAt = f.capturedAt
    }
    const t1 = performance.now()
    calls.push((t1 - t0) * 1000)
    latencies.push(Number(nowNs() - capturedAt) / 1e6)
    frames++
  }
  const cpu = process.cpuUsage(cpu0)
  r.close()
  bell.close()
  calls.sort((a, b) => a - b)
  latencies.sort((a, b) => a - b)
  return {
    mode,
    frames,
    callP50: quantile(calls, 0.5),
    callP99: quantile(calls, 0.99),
    cpuPerFrame: frames ? (cpu.user + cpu.system) / frames : NaN,
    latP50: quantile(latencies, 0.5),
    latP99: quantile(latencies, 0.99),
    sink,
  }
}

/**
 * The zero-copy read back to back, hot: a writer in this process commits a frame, and
 * the read of it (latest(), a byte, release()) is timed; `n` times.
 */
function hotLoop(dir, size, n) {
  const [w, h] = SIZES[size]
  const writer = new Writer(`hot-${size}`, { width: w, height: h, format: 'I420', fps: 30, dir })
  const r = new Reader(`hot-${size}`, { dir })
  const px = Buffer.alloc(writer.frameSize, 7)
  const times = []
  let sink = 0
  for (let i = 0; i < n; i++) {
    writer.write(px)
    const t0 = performance.now()
    const f = r.latest()
    sink += f.pixels[f.pixels.length - 1]
    f.release()
    times.push((performance.now() - t0) * 1000)
  }
  r.close()
  writer.close()
  times.sort((a, b) => a - b)
  return { mode: 'zero-copy, hot loop', frames: n, callP50: quantile(times, 0.5), callP99: quantile(times, 0.99), sink }
}

function fmt(x, digits = 1) {
  return Number.isFinite(x) ? x.toFixed(digits) : '-'
}

async function main() {
  const o = args()
  const dir = fs.mkdtempSync('/dev/shm/shmring-node-bench-')
  fs.chmodSync(dir, 0o700)
  const rows = []
  try {
    for (const size of o.sizes) {
      const [w, h] = SIZES[size]
      const ring = `bench-${size}`
      const writer = await startWriter(dir, ring, w, h)
      try {
        for (const mode of ['wait only', 'zero-copy', 'copy', 'js-seqlock']) {
          rows.push({ size, ...(await run(mode, dir, ring, o.seconds)) })
        }
        rows.push({ size, ...hotLoop(dir, size, o.seconds >= 5 ? 2000 : 300) })
      } finally {
        writer.kill('SIGKILL')
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  console.log(`shmring Node reads, ${o.seconds} s per mode, writer at 30 fps (I420)`)
  console.log('"read CPU": CPU per frame beyond "wait only"; its ratio to the copying read\'s.')
  console.log('| size | read | frames | read p50 µs | read p99 µs | CPU per frame µs | read CPU µs | read CPU vs copy | latency p50 ms | latency p99 ms |')
  console.log('|---|---|---|---|---|---|---|---|---|---|')
  for (const row of rows) {
    const of = (mode) => rows.find((x) => x.size === row.size && x.mode === mode)
    const wait = of('wait only').cpuPerFrame
    const readCpu = row.mode === 'wait only' || row.cpuPerFrame === undefined ? NaN : Math.max(0, row.cpuPerFrame - wait)
    const ratio = readCpu / Math.max(1, of('copy').cpuPerFrame - wait)
    console.log(
      `| ${row.size} | ${row.mode} | ${row.frames} | ${fmt(row.callP50)} | ${fmt(row.callP99)} | ${fmt(row.cpuPerFrame, 0)} | ${fmt(readCpu, 0)} | ${fmt(ratio, 3)} | ${fmt(row.latP50, 2)} | ${fmt(row.latP99, 2)} |`,
    )
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
