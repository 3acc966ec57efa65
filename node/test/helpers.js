'use strict'
// Shared helpers: a private ring directory per test, frame patterns that identify their
// frame, child processes that write or read a ring, and a gc that runs finalizers.

const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const v8 = require('node:v8')
const vm = require('node:vm')

v8.setFlagsFromString('--expose_gc')
const rawGc = vm.runInNewContext('gc')

/** A ring directory of the test's own (0700, in /dev/shm), removed at the end. */
function ringDir(t) {
  const dir = fs.mkdtempSync('/dev/shm/shmring-node-test-')
  fs.chmodSync(dir, 0o700)
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Frame `seq`'s bytes: its sequence in the first 4, then bytes of both sequence and place. */
function pattern(seq, size) {
  const b = Buffer.alloc(size)
  b.writeUInt32LE(seq >>> 0, 0)
  for (let i = 4; i < size; i++) b[i] = (i * 31 + seq * 7) & 0xff
  return b
}

/** The frame `b` holds, or throws if a byte does not fit that frame's pattern. */
function check(b) {
  const seq = b.readUInt32LE(0)
  for (let i = 4; i < b.length; i++) {
    if (b[i] !== ((i * 31 + seq * 7) & 0xff)) {
      throw new Error(`frame ${seq}: byte ${i} is ${b[i]}, a torn or foreign frame`)
    }
  }
  return seq
}

/** Collects garbage and lets the finalizers Node defers run. */
async function gc() {
  for (let i = 0; i < 4; i++) {
    rawGc()
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** Runs `node -e code` with `args` (process.argv[1...]); resolves { code, signal, out, err }. */
function node(code, args = [], options = {}) {
  const child = spawn(process.execPath, ['-e', code, '--', ...args.map(String)], {
    cwd: path.resolve(__dirname, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  const done = new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, out, err }))
  })
  return { child, done }
}

/** A child process writing `count` pattern frames to `ring` every `everyMs` (then EOS by close). */
function writer(dir, ring, { count = 1000000, everyMs = 5, width = 64, height = 48 } = {}) {
  return node(
    `
    const { Writer } = require('.')
    const [dir, ring, count, everyMs, width, height] = process.argv.slice(1)
    const { pattern } = require('./test/helpers.js')
    const w = new Writer(ring, { width: +width, height: +height, format: 'GRAY8', fps: 30, dir, slots: 8 })
    console.log('ready')
    let n = 0
    const t = setInterval(() => {
      n++
      w.write(pattern(n, w.frameSize))
      if (n >= +count) { clearInterval(t); w.close() }
    }, +everyMs)
    `,
    [dir, ring, count, everyMs, width, height],
  )
}

/** Resolves when `child` has printed `word`. */
function printed(child, word) {
  return new Promise((resolve, reject) => {
    let seen = ''
    child.stdout.on('data', (d) => {
      seen += d
      if (seen.includes(word)) resolve()
    })
    child.on('close', () => reject(new Error(`exited before printing ${word}: ${seen}`)))
  })
}

module.exports = { ringDir, pattern, check, gc, node, writer, printed }
