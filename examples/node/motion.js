#!/usr/bin/env node
'use strict'
// A motion score per frame of a camera ring, from Node: the mean change of luma (every
// 4th pixel of every 4th row) against the previous frame, read in place from the ring.
// Prints, every second, the frames per second, the motion score and the latency from
// capture.
//
//   node examples/node/motion.js [ring] [seconds]     (default: cam1 of the demo, for ever)
//
// Run beside the demo (scripts/demo.sh), or any shmringsink. The reader follows the
// ring's writer when it restarts. Stops with Ctrl-C, or after `seconds`.

const path = require('node:path')
const { performance } = require('node:perf_hooks')
const { Reader } = require(path.join(__dirname, '..', '..', 'node'))

const ring = process.argv[2] || 'cam1'
const seconds = Number(process.argv[3] || Infinity)
/** Wall-clock ns now, to the microsecond (Date.now() counts whole ms). */
const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e3)) * 1000n
const LUMA_FIRST = new Set(['I420', 'YV12', 'NV12', 'NV21', 'GRAY8'])

/** The luma samples of `f` kept for the next comparison (a copy of a few thousand bytes). */
function lumaSamples(f) {
  const { width, height, planes } = f
  const stride = planes[0].stride
  const out = new Uint8Array(Math.ceil(width / 4) * Math.ceil(height / 4))
  let i = 0
  for (let y = 0; y < height; y += 4) {
    const row = planes[0].offset + y * stride
    for (let x = 0; x < width; x += 4) out[i++] = f.pixels[row + x]
  }
  return out
}

async function main() {
  const reader = new Reader(ring)
  process.on('SIGINT', () => reader.close())
  const end = Date.now() + seconds * 1000
  let previous = null
  let frames = 0
  let motion = 0
  let latencyMs = 0
  let since = Date.now()
  while (Date.now() < end && !reader.closed) {
    let f
    try {
      f = await reader.latestAsync({ timeout: 1000 })
    } catch (e) {
      if (e.code === 'ERR_SHMRING_CLOSED' || e.code === 'ERR_SHMRING_EOS') break
      throw e
    }
    if (!f) continue
    try {
      if (!LUMA_FIRST.has(f.format)) throw new Error(`${ring}: format ${f.format} has no luma plane first`)
      const luma = lumaSamples(f)
      if (previous && previous.length === luma.length) {
        let sum = 0
        for (let i = 0; i < luma.length; i++) sum += Math.abs(luma[i] - previous[i])
        motion += sum / luma.length
      }
      previous = luma
      latencyMs += Number(nowNs() - f.capturedAt) / 1e6
      frames++
    } finally {
      f.release() // the slot goes back to the writer at once
    }
    const now = Date.now()
    if (now - since >= 1000) {
      const s = (now - since) / 1000
      console.log(
        `${ring}: ${(frames / s).toFixed(1)} fps, motion ${(motion / Math.max(1, frames)).toFixed(2)}, ` +
          `latency from capture ${(latencyMs / Math.max(1, frames)).toFixed(1)} ms`,
      )
      frames = 0
      motion = 0
      latencyMs = 0
      since = now
    }
  }
  reader.close()
}

main().catch((e) => {
  console.error(e.message)
  process.exit(1)
})
