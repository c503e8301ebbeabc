/**
 * The worker half of hash-writer.ts: hashes (sha256) and writes to a file the batches the main
 * thread receives, so that TLS decryption and HTTP parsing (main thread) overlap with hashing and
 * writing (this thread) on two cores. One download at a time; the worker is reused afterwards.
 *
 * Protocol (main → worker):
 *   { t: 'begin', fd, syncEvery }  a new download into `fd` (owned by main; never closed here)
 *   { t: 'data', buf, len }        the next `len` bytes, `buf` an ArrayBuffer transferred to us
 *   { t: 'end', fsync }            no more data: fsync (unless false), then answer 'done'
 *   { t: 'stop' }                  give up: answer 'stopped' once nothing of ours touches `fd`
 * (worker → main):
 *   { t: 'buf', buf }              a batch buffer handed back (transferred) for reuse
 *   { t: 'done', sha256, size }    after 'end': every byte written and fsynced
 *   { t: 'stopped' }               after 'stop'
 *   { t: 'error', message, code }  a write or sync failed; later data is dropped until 'stop'
 *
 * Every `syncEvery` bytes an fdatasync starts in the background (libuv's pool), so the kernel
 * writes the file back while the download goes on and the final fsync has little left to do.
 *
 * The worker runs from source (`new Worker(WORKER_SOURCE, { eval: true })`, CommonJS, node
 * built-ins only) rather than from a file: the same code then runs from dist/, from an installed
 * package and under tsx in the tests (Node 20 does not apply `--import` loaders to a worker's
 * entry file).
 */

export type ToWorker =
  | { t: 'begin'; fd: number; syncEvery: number }
  | { t: 'data'; buf: ArrayBuffer; len: number }
  | { t: 'end'; fsync: boolean }
  | { t: 'stop' };

export type FromWorker =
  | { t: 'buf'; buf: ArrayBuffer }
  | { t: 'done'; sha256: string; size: number }
  | { t: 'stopped' }
  | { t: 'error'; message: string; code?: string };

export const WORKER_SOURCE = String.raw`'use strict';
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { fdatasync, fsyncSync, writeSync } = require('node:fs');

const port = parentPort;
let fd = -1;
let hash;
let pos = 0;
let syncEvery = 0;
let syncedTo = 0;
let failed = false;
let syncing; // the background fdatasync in flight: a promise, or undefined

function fail(err) {
  if (failed) return;
  failed = true;
  port.postMessage({ t: 'error', message: (err && err.message) || String(err), code: err && err.code });
}

function backgroundSync() {
  if (syncing || failed) return;
  syncedTo = pos;
  syncing = new Promise((resolve) => {
    fdatasync(fd, (err) => {
      syncing = undefined;
      if (err) fail(err);
      resolve();
    });
  });
}

function write(buf, len) {
  const bytes = new Uint8Array(buf, 0, len);
  hash.update(bytes);
  let off = 0;
  while (off < len) off += writeSync(fd, bytes, off, len - off, pos + off);
  pos += len;
  if (syncEvery > 0 && pos - syncedTo >= syncEvery) backgroundSync();
}

async function end(doSync) {
  await syncing;
  if (failed) return;
  try {
    if (doSync) fsyncSync(fd);
  } catch (err) {
    fail(err);
    return;
  }
  const sha256 = hash.digest('hex');
  hash = undefined;
  port.postMessage({ t: 'done', sha256, size: pos });
}

async function stop() {
  await syncing;
  hash = undefined;
  fd = -1;
  port.postMessage({ t: 'stopped' });
}

port.on('message', (m) => {
  switch (m.t) {
    case 'begin':
      fd = m.fd;
      syncEvery = m.syncEvery;
      hash = createHash('sha256');
      pos = 0;
      syncedTo = 0;
      failed = false;
      return;
    case 'data':
      if (!failed) {
        try {
          write(m.buf, m.len);
        } catch (err) {
          fail(err);
        }
      }
      port.postMessage({ t: 'buf', buf: m.buf }, [m.buf]);
      return;
    case 'end':
      void end(m.fsync !== false);
      return;
    case 'stop':
      void stop();
      return;
  }
});
`;
