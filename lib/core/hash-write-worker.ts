/**
 * The worker half of hash-writer.ts: hashes (sha256) and writes to a file the batches the main
 * thread receives, so that TLS decryption and HTTP parsing (main thread) overlap with hashing and
 * writing (this thread) on two cores. One download at a time; the worker is reused afterwards.
 *
 * The batches live in one page-aligned shared memory (workerData.slots: MAX_BATCHES slots of
 * BATCH_SIZE bytes) that the main thread fills and this thread hashes and writes; messages carry
 * slot numbers, not bytes.
 *
 * Protocol (main → worker):
 *   { t: 'begin', fd, direct, syncEvery, directSyncEvery }  a new download into `fd` (owned by
 *                                  main; never closed here)
 *   { t: 'data', slot, len }       the next `len` bytes are in slot `slot`
 *   { t: 'end', fsync }            no more data: fsync (unless false), then answer 'done'
 *   { t: 'stop' }                  give up: answer 'stopped' once nothing of ours touches `fd`
 * (worker → main):
 *   { t: 'buf', slot }             the slot is hashed and written: free for reuse
 *   { t: 'done', sha256, size, direct }  after 'end': every byte written and fsynced (direct: how
 *                                  many bytes went around the page cache)
 *   { t: 'stopped' }               after 'stop'
 *   { t: 'error', message, code }  a write or sync failed; later data is dropped until 'stop'
 *
 * Writing: with `direct` (the caller fsyncs the file anyway), the file is opened a second time
 * with O_DIRECT (through /proc/self/fd) and whole blocks go straight from the slots to the disk.
 * The page-cache copy and the later write-back of a buffered write are the largest CPU cost of a
 * big download (measured: a third of the receiving process's CPU at 1 GiB, and the write-back
 * through fsync ran at a fifth of the disk's speed); an fsynced file has no use for them. The last
 * partial block goes through `fd`, and any O_DIRECT refusal (a filesystem without it, no /proc,
 * EINVAL) turns direct writing off for the rest of the download. Without `direct`, writes go
 * through the page cache. Either way an fdatasync starts in the background every `syncEvery`
 * (buffered) or `directSyncEvery` (O_DIRECT) bytes, so the final fsync has little left to do: the
 * write-back, or the disk's flush of its write cache (a fifth of a second per 256 MiB here).
 *
 * Each slot is hashed at once and written by libuv's pool (two writes in flight), so hashing
 * the next slot overlaps the write of the last.
 *
 * The worker runs from source (`new Worker(WORKER_SOURCE, { eval: true })`, CommonJS, node
 * built-ins only) rather than from a file: the same code then runs from dist/, from an installed
 * package and under tsx in the tests (Node 20 does not apply `--import` loaders to a worker's
 * entry file).
 */

export type ToWorker =
  | { t: 'begin'; fd: number; direct: boolean; syncEvery: number; directSyncEvery: number }
  | { t: 'data'; slot: number; len: number }
  | { t: 'end'; fsync: boolean }
  | { t: 'stop' };

export type FromWorker =
  | { t: 'buf'; slot: number }
  | { t: 'done'; sha256: string; size: number; direct: number }
  | { t: 'stopped' }
  | { t: 'error'; message: string; code?: string };

export const WORKER_SOURCE = String.raw`'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { closeSync, constants, fdatasync, fsyncSync, openSync, readFileSync, write } = require('node:fs');

const port = parentPort;
const { slots, slotSize } = workerData;
/** O_DIRECT wants whole blocks at block offsets: a page covers 512-byte and 4096-byte sector devices alike */
const BLOCK = 4096;
const IN_FLIGHT = 2;
let fd = -1;
let dfd = -1; // the same file opened O_DIRECT, or -1
let hash;
let pos = 0; // bytes hashed (and queued for writing)
let direct = 0; // bytes written with O_DIRECT
let syncEvery = 0;
let directSyncEvery = 0;
let syncedTo = 0;
let failed = false;
let syncing; // the background fdatasync in flight: a promise, or undefined
const queue = []; // { slot, at, len } waiting to be written
let inFlight = 0;
let idle = []; // resolved when nothing is queued or being written

function fail(err) {
  if (failed) return;
  failed = true;
  port.postMessage({ t: 'error', message: (err && err.message) || String(err), code: err && err.code });
}

/** whether fd was opened for writing: reopening it must not grant what its opener did not ask for */
function writable(fd) {
  try {
    const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/fdinfo/' + fd, 'latin1'));
    return flags !== null && (parseInt(flags[1], 8) & 3) !== constants.O_RDONLY; // 3: O_ACCMODE
  } catch {
    return false;
  }
}

function closeDirect() {
  if (dfd < 0) return;
  try { closeSync(dfd); } catch {}
  dfd = -1;
}

/** starts an fdatasync of what is written up to upTo, unless one is still running */
function backgroundSync(upTo) {
  if (syncing || failed) return;
  syncedTo = upTo;
  syncing = new Promise((resolve) => {
    fdatasync(fd, (err) => {
      syncing = undefined;
      if (err) fail(err);
      resolve();
    });
  });
}

/** Writes bytes [off, len) of the slot at file offset at + off; calls done() when all are written or failed. */
function writeFrom(job, off, done) {
  if (failed || off >= job.len) return done();
  const bytes = new Uint8Array(slots, job.slot * slotSize, job.len);
  const blocks = dfd >= 0 ? (job.len - off) - ((job.len - off) % BLOCK) : 0;
  const useDirect = blocks > 0;
  const n = useDirect ? blocks : job.len - off;
  write(useDirect ? dfd : fd, bytes, off, n, job.at + off, (err, wrote) => {
    if (err && useDirect) {
      // O_DIRECT refused (alignment, filesystem): the page cache from here on
      closeDirect();
      return writeFrom(job, off, done);
    }
    if (err) {
      fail(err);
      return done();
    }
    if (useDirect) {
      direct += wrote;
      if (wrote % BLOCK !== 0) closeDirect(); // a short write off a block boundary: buffered for the rest
    }
    if (wrote === 0) {
      fail(Object.assign(new Error('write wrote nothing'), { code: 'EIO' }));
      return done();
    }
    writeFrom(job, off + wrote, done);
  });
}

function pump() {
  while (inFlight < IN_FLIGHT && queue.length > 0) {
    const job = queue.shift();
    inFlight++;
    writeFrom(job, 0, () => {
      inFlight--;
      port.postMessage({ t: 'buf', slot: job.slot });
      const every = dfd >= 0 ? directSyncEvery : syncEvery;
      if (every > 0 && !failed && job.at + job.len - syncedTo >= every) backgroundSync(job.at + job.len);
      pump();
    });
  }
  if (inFlight === 0 && queue.length === 0) for (const r of idle.splice(0)) r();
}

/** resolves once every queued write is done */
function drained() {
  return inFlight === 0 && queue.length === 0 ? Promise.resolve() : new Promise((r) => idle.push(r));
}

async function end(doSync) {
  await drained();
  await syncing;
  closeDirect();
  if (failed) return;
  try {
    if (doSync) fsyncSync(fd);
  } catch (err) {
    fail(err);
    return;
  }
  const sha256 = hash.digest('hex');
  hash = undefined;
  port.postMessage({ t: 'done', sha256, size: pos, direct });
}

async function stop() {
  for (const job of queue.splice(0)) port.postMessage({ t: 'buf', slot: job.slot });
  await drained();
  await syncing;
  closeDirect();
  hash = undefined;
  fd = -1;
  port.postMessage({ t: 'stopped' });
}

port.on('message', (m) => {
  switch (m.t) {
    case 'begin':
      fd = m.fd;
      syncEvery = m.syncEvery;
      directSyncEvery = m.directSyncEvery;
      hash = createHash('sha256');
      pos = 0;
      direct = 0;
      syncedTo = 0;
      failed = false;
      closeDirect();
      if (m.direct && writable(fd)) {
        try {
          dfd = openSync('/proc/self/fd/' + fd, constants.O_WRONLY | constants.O_DIRECT);
        } catch {
          dfd = -1;
        }
      }
      return;
    case 'data':
      if (failed) {
        port.postMessage({ t: 'buf', slot: m.slot });
        return;
      }
      hash.update(new Uint8Array(slots, m.slot * slotSize, m.len));
      queue.push({ slot: m.slot, at: pos, len: m.len });
      pos += m.len;
      pump();
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
