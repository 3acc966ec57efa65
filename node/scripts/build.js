#!/usr/bin/env node
// Builds the addon with cargo (release) and puts it beside index.js as shmring.node.
// Run by `npm install`; `SHMRING_NODE_PROFILE=debug` builds unoptimised.
'use strict'
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const here = path.resolve(__dirname, '..')
const profile = process.env.SHMRING_NODE_PROFILE === 'debug' ? 'debug' : 'release'
const target = process.env.CARGO_TARGET_DIR || path.join(here, '..', 'target', 'node')
const args = ['build', '--locked', '--manifest-path', path.join(here, 'Cargo.toml')]
if (profile === 'release') args.push('--release')
execFileSync('cargo', args, {
  stdio: 'inherit',
  env: { ...process.env, CARGO_TARGET_DIR: target },
})
const built = path.join(target, profile, 'libshmring_node.so')
const dest = path.join(here, 'shmring.node')
// A new file, not a rewrite in place: a process that has the old one loaded keeps it.
fs.copyFileSync(built, dest + '.tmp')
fs.renameSync(dest + '.tmp', dest)
console.log(`shmring: built ${path.relative(process.cwd(), dest)} (${profile})`)
