/**
 * Crash-test worker: opens a Store on the given dirs and loops forever doing random store work —
 * publishes (random sizes up to a few MiB, some streamed slowly), shares, unpublishes, expiry —
 * printing one line on stdout after each operation completes. The crash test SIGKILLs it at random
 * points and checks what a new Store finds on disk.
 *
 *   node --import tsx test/crash/store-worker.ts STATE_DIR CONFIG_DIR SEED METADATA(xattr|sidecar)
 *
 * Lines (stdout is a pipe, written synchronously on Linux: a printed line happened):
 *   READY <items>
 *   PUB <hash> <size> <shareLimit> <maxAge>
 *   SHARE <hash> <bytes> <deleted 0|1>
 *   UNPUB <hash>
 *   EXPIRE <count>
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ItemExistsError } from '../../lib/core/errors.js';
import { Store } from '../../lib/store/store.js';

const [stateDir, configDir, seedArg, metadata] = process.argv.slice(2);
if (!stateDir || !configDir || !seedArg) {
  process.stderr.write('usage: store-worker STATE_DIR CONFIG_DIR SEED [xattr|sidecar]\n');
  process.exit(2);
}

/** mulberry32: a small seeded PRNG, so a run is reproducible up to the kill */
let s = Number(seedArg) >>> 0;
function rand(): number {
  s = (s + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

/** the worker's clock runs ahead by `skew` ms, advanced by expire steps, so short max-ages expire */
let skew = 0;
const store = new Store({
  stateDir,
  configDir,
  metadata: metadata === 'sidecar' ? 'sidecar' : 'xattr',
  now: () => Date.now() + skew,
});

function out(line: string): void {
  process.stdout.write(line + '\n');
}

function size(): number {
  const r = rand();
  if (r < 0.5) return Math.floor(rand() * 64 * 1024);
  if (r < 0.85) return Math.floor(rand() * 1024 * 1024);
  return Math.floor(rand() * 4 * 1024 * 1024);
}

/** random bytes in 64 KiB chunks; `slow` yields to the timer queue between chunks */
function source(total: number, slow: boolean): Readable {
  async function* gen() {
    let left = total;
    while (left > 0) {
      const n = Math.min(left, 64 * 1024);
      left -= n;
      yield randomBytes(n);
      if (slow) await sleep(2);
    }
  }
  return Readable.from(gen());
}

async function step(): Promise<void> {
  const r = rand();
  const items = store.list();
  const published = items.filter((i) => !i.static);
  if (r < 0.4 || items.length === 0) {
    const n = size();
    const shareLimit = 1 + Math.floor(rand() * 4);
    const maxAge = pick([2, 86400, 86400]);
    const name = `item-${Math.floor(rand() * 1e9)}${pick(['.bin', '.cab', '', '.xml.gz'])}`;
    const info = await store.publish(source(n, rand() < 0.3), { basename: name, shareLimit, maxAge, cmdline: 'crash-worker' });
    out(`PUB ${info.hash} ${info.size} ${shareLimit} ${maxAge}`);
  } else if (r < 0.75) {
    const item = pick(items);
    if (!store.reserveShare(item.hash)) return;
    const bytes = item.size;
    await store.recordShare(item.hash, `10.0.0.${1 + Math.floor(rand() * 200)}`, bytes);
    out(`SHARE ${item.hash} ${bytes} ${store.get(item.hash) ? 0 : 1}`);
  } else if (r < 0.87) {
    if (published.length === 0) return;
    const item = pick(published);
    await store.unpublish(item.hash);
    out(`UNPUB ${item.hash}`);
  } else {
    skew += Math.floor(rand() * 3000);
    const gone = await store.expire();
    out(`EXPIRE ${gone.length}`);
  }
}

await store.load();
out(`READY ${store.list().length}`);
for (;;) {
  try {
    await step();
  } catch (err) {
    // two empty (or equal) random items: a duplicate publish is refused, which is fine
    if (err instanceof ItemExistsError) continue;
    process.stderr.write(`worker: ${(err as Error).stack}\n`);
    process.exit(1);
  }
}
