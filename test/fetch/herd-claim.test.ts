/**
 * Herd claims through a slow daemon (lib/fetch/herd.ts): a claim the daemon makes after the fetch
 * stopped waiting for it must not stand on the LAN as a stray bid.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Herd, type ClaimChannel } from '../../lib/fetch/herd.js';
import type { Browse } from '../../lib/discovery/types.js';

const HASH = 'ab'.repeat(32);

/** A browse that finds nothing: it ends when its window does (or at once when aborted). */
const emptyBrowse: Browse = (_h, opts) => ({
  async *[Symbol.asyncIterator]() {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.min(opts?.timeoutMs ?? 50, 50));
      opts?.signal?.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  },
});

describe('Herd claims', () => {
  it('a bid the daemon makes after the 2 s control timeout is released, and the fetch goes on without it', async () => {
    const released: string[] = [];
    let lateMade!: () => void;
    const made = new Promise<void>((r) => { lateMade = r; });
    const channel: ClaimChannel = {
      // the daemon answers only after the fetch's control timeout (2000 ms)
      claim: () => new Promise((resolve) => setTimeout(() => {
        resolve({ id: 'late-1', others: 0 });
        lateMade();
      }, 2300)),
      renewClaim: async (id) => ({ id, others: 0 }),
      releaseClaim: async (id) => {
        released.push(id);
        return { released: true };
      },
    };
    const herd = new Herd({
      sha256: HASH,
      name: 'f.bin',
      browse: emptyBrowse,
      daemon: { instance: 'Passim-SELF', channel: async () => channel },
      canBid: true,
      windowMs: 20,
      waitMs: 10_000,
    });
    herd.start();
    const sources = [];
    for await (const s of herd.sources(new Set())) sources.push(s);
    // no claim was placed in time and nobody else bid: straight to the CDN (nothing yielded)
    assert.deepEqual(sources, []);
    await made;
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(released, ['late-1'], 'the late claim is released at once');
    await herd.close();
  });
});

/** A browse that hears nothing and stays open for its whole window (as the real one does) unless aborted. */
const silentBrowse: Browse = (_h, opts) => ({
  async *[Symbol.asyncIterator]() {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, opts?.timeoutMs ?? 500);
      opts?.signal?.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  },
});

describe('Herd claims window', () => {
  it('a bid our daemon took but whose echo never comes back ends the window after two windows, not at the 5 s cap', async () => {
    const channel: ClaimChannel = {
      claim: async () => ({ id: 'c1', others: 0 }),
      renewClaim: async (id) => ({ id, others: 0 }),
      releaseClaim: async () => ({ released: true }),
    };
    const events: string[] = [];
    const herd = new Herd({
      sha256: HASH,
      name: 'f.bin',
      browse: silentBrowse, // hears nothing: not even our own bid
      daemon: { instance: 'Passim-SELF', channel: async () => channel },
      canBid: true,
      windowMs: 20, // the claims window is at least 300 ms: ends 600 ms after the ack
      waitMs: 60_000,
      onEvent: (e) => events.push(e.type),
    });
    const t0 = performance.now();
    herd.start();
    for await (const s of herd.sources(new Set())) assert.fail(`nothing to wait for, got ${s.url}`);
    const ms = performance.now() - t0;
    assert.deepEqual(events, ['claim', 'won'], 'alone, it wins');
    assert.ok(ms < 5000, `the window ran to its cap (${Math.round(ms)} ms)`);
    await herd.close();
  });
});

describe('Herd alone on the LAN', () => {
  /** a claim channel answering at once; `others`: claims our daemon already had on the hash */
  const channelWith = (others: number, kinds: string[]): ClaimChannel => ({
    claim: async (_h, kind) => { kinds.push(kind); return { id: 'c1', others }; },
    renewClaim: async (id, _ttl, kind) => { if (kind) kinds.push(kind); return { id, others }; },
    releaseClaim: async () => ({ released: true }),
  });
  /** a browse that never ends by itself (a claims window would hold the fetch until its cap) */
  const asked: string[] = [];
  const hangingBrowse: Browse = (_h, opts) => ({
    async *[Symbol.asyncIterator]() {
      asked.push(opts?.kind ?? 'item');
      await new Promise<void>((resolve) => opts?.signal?.addEventListener('abort', () => resolve(), { once: true }));
    },
  });
  const herdWith = (channel: ClaimChannel) => new Herd({
    sha256: HASH, name: 'f.bin', browse: hangingBrowse, alone: true,
    daemon: { instance: 'Passim-SELF', channel: async () => channel },
    canBid: true, windowMs: 400, waitMs: 60_000, pollMs: 50, maxElections: 1,
  });

  it('decides at once with no claims window: it bids, wins and turns the bid into a fetching claim', async () => {
    asked.length = 0;
    const kinds: string[] = [];
    const herd = herdWith(channelWith(0, kinds));
    herd.start();
    const sources = [];
    for await (const s of herd.sources(new Set())) sources.push(s);
    assert.deepEqual(sources, [], 'straight to the CDN');
    await herd.close();
    assert.deepEqual(kinds, ['bid', 'fetching']);
    assert.deepEqual(asked, [], 'no browse for bids or fetching claims');
  });

  it('still waits when another local fetch holds a claim on the hash', async () => {
    const herd = herdWith(channelWith(1, []));
    herd.start();
    const it = herd.sources(new Set())[Symbol.asyncIterator]();
    const first = await Promise.race([it.next().then(() => 'decided'), new Promise((r) => setTimeout(() => r('waiting'), 200))]);
    assert.equal(first, 'waiting');
    await herd.close();
  });
});
