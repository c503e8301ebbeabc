/**
 * Herd suppression (lib/fetch/herd.ts): hosts fetching the same file at once cost the CDN about
 * one request; a claimer that is killed or stalls, or one that takes longer than --herd-wait, does
 * not hold the others; --no-herd goes straight to the CDN. The unit tests (names, tie-break, the
 * responder's answers, the daemon's claim table) run anywhere; the LAN ones need root (CI runs
 * them: netnsSkip throws there rather than skip). HERD_HOSTS=20 runs the burst with 20 hosts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Socket } from 'node:net';
import { execa, type ResultPromise } from 'execa';
import { createLan, netnsSkip, type Lan, type LanHost } from '../helpers/netns.js';
import { requires } from '../helpers/requires.js';
import { BIN, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import {
  advertisedKeyOf, claimKey, claimSubtypeName, fetchingSubtypeName, subtypeKeyOf, subtypeName,
} from '../../lib/discovery/names.js';
import { answerQuery, type Zone } from '../../lib/discovery/answers.js';
import { ClaimTable, ClaimsDisabledError } from '../../lib/control/claims.js';
import { compareInstances, decide, pickWinner } from '../../lib/fetch/herd.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const ROOT = resolve(import.meta.dirname, '../..');

// ------------------------------------------------------------------------------------ unit

describe('names of in-progress claims', () => {
  const h = sha('herd');
  test('`_f`/`_b` + 60 hex: a 62-byte label under the service, not an item subtype', () => {
    const f = fetchingSubtypeName(h.toUpperCase());
    assert.equal(f, `_f${h.slice(0, 60)}._sub._cache._tcp.local`);
    assert.equal(claimSubtypeName(h, 'fetching'), f);
    assert.equal(claimSubtypeName(h, 'bid'), `_b${h.slice(0, 60)}._sub._cache._tcp.local`);
    assert.equal(Buffer.byteLength(f.split('.')[0]!), 62);
    // what upstream-facing code parses as an item never matches a claim, and the other way round
    assert.equal(subtypeKeyOf(f), undefined);
    assert.equal(advertisedKeyOf(f), `f${h.slice(0, 60)}`);
    assert.equal(advertisedKeyOf(f.toUpperCase()), `f${h.slice(0, 60)}`);
    assert.equal(advertisedKeyOf(subtypeName(h)), h.slice(0, 60));
    assert.equal(advertisedKeyOf(`_x${h.slice(0, 60)}._sub._cache._tcp.local`), undefined);
    // the length tells them apart: `_f` + 59 hex is the item subtype of a hash starting with f
    assert.equal(advertisedKeyOf(`_f${h.slice(0, 59)}._sub._cache._tcp.local`), `f${h.slice(0, 59)}`);
    assert.equal(advertisedKeyOf(`_f${h.slice(0, 60)}0._sub._cache._tcp.local`), undefined);
    assert.equal(claimKey(h, 'bid'), `b${h.slice(0, 60)}`);
  });

  test('the responder answers a claim query from its table, with a short TTL, and only that', () => {
    const table = new Set([claimKey(h, 'fetching')]);
    const zone: Zone = { instance: 'Passim-ABCD', host: 'box', port: 27500, addresses: ['10.0.0.5'], hasSubtype: (k) => table.has(k) };
    const f = answerQuery(zone, [{ name: fetchingSubtypeName(h), type: 'PTR' }], []);
    assert.equal(f.multicast.length, 1);
    assert.equal(f.multicast[0]!.data, 'Passim-ABCD._cache._tcp.local');
    assert.equal(f.multicast[0]!.ttl, 120);
    assert.equal(answerQuery(zone, [{ name: subtypeName(h), type: 'PTR' }], []).multicast.length, 0, 'a claim is not an item');
    assert.equal(answerQuery(zone, [{ name: claimSubtypeName(h, 'bid'), type: 'PTR' }], []).multicast.length, 0);
  });
});

describe('tie-break and decision', () => {
  test('the lowest instance name wins, case-insensitively, whatever the order', () => {
    assert.equal(pickWinner(['Passim-C0DE', 'Passim-1A2B', 'Passim-FFFF']), 'Passim-1A2B');
    assert.equal(pickWinner(['passim-b', 'Passim-A']), 'Passim-A');
    assert.equal(pickWinner(['Passim-1A2B #2', 'Passim-1A2B']), 'Passim-1A2B');
    assert.equal(pickWinner([]), undefined);
    const names = ['Passim-9', 'Passim-3', 'Passim-a', 'Passim-B', 'Passim-3 #2'];
    for (let i = 0; i < 20; i++) {
      const shuffled = [...names].sort(() => Math.random() - 0.5);
      assert.equal(pickWinner(shuffled), 'Passim-3');
    }
    assert.ok(compareInstances('Passim-A', 'passim-a') !== 0, 'a total order');
  });

  test('every bidder that saw the same bids picks the same winner; a fetching claim always wins', () => {
    const bids = ['Passim-0002', 'Passim-0001', 'Passim-0003'];
    const outcomes = bids.map((self) => decide({ self, bids, fetching: [] }));
    assert.deepEqual(outcomes, ['wait', 'win', 'wait']);
    assert.equal(decide({ self: 'Passim-0000', bids, fetching: ['Passim-FFFF'] }), 'wait', 'an incumbent beats a lower newcomer');
    assert.equal(decide({ self: 'Passim-0001', bids: ['Passim-0001'], fetching: [] }), 'win', 'alone');
    assert.equal(decide({ self: 'Passim-0001', bids: [], fetching: [], localOthers: 1 }), 'wait', 'another local fetch claimed first');
    assert.equal(decide({ bids: [], fetching: [] }), 'go', 'no daemon, nobody on it');
    assert.equal(decide({ bids: ['Passim-0009'], fetching: [] }), 'wait', 'no daemon, someone bids');
  });
});

describe('the daemon claim table', () => {
  const h = sha('table');
  const events = () => {
    const log: string[] = [];
    const waiters: Array<{ entry: string; resolve: () => void }> = [];
    const push = (entry: string) => {
      log.push(entry);
      for (const w of waiters.filter((x) => x.entry === entry)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    };
    return {
      log,
      /** resolves when `entry` ('+bid', '-fetching', …) is logged next */
      when: (entry: string) => new Promise<void>((resolve) => waiters.push({ entry, resolve })),
      opts: (enabled = () => true) => ({
        advertise: (_: string, k: string) => push(`+${k}`),
        withdraw: (_: string, k: string) => push(`-${k}`),
        enabled,
      }),
    };
  };

  test('a kind is advertised while one live claim has it; renew changes kind; release withdraws', () => {
    const e = events();
    const t = new ClaimTable(e.opts());
    const a = t.create(h, 'bid', 10_000);
    const b = t.create(h, 'bid', 10_000);
    assert.equal(a.others, 0);
    assert.equal(b.others, 1, 'the second local claim sees the first');
    assert.deepEqual(e.log, ['+bid']);
    assert.equal(t.renew(a.id, 10_000, 'fetching')!.kind, 'fetching');
    assert.deepEqual(e.log, ['+bid', '+fetching']);
    assert.ok(t.release(b.id));
    assert.deepEqual(e.log, ['+bid', '+fetching', '-bid']);
    assert.ok(t.release(a.id));
    assert.ok(!t.release(a.id));
    assert.equal(t.renew(a.id, 1000), undefined);
    assert.deepEqual(e.log, ['+bid', '+fetching', '-bid', '-fetching']);
    t.clear();
  });

  test('a lease that is not renewed lapses; a closed connection releases at once', async () => {
    const e = events();
    const t = new ClaimTable(e.opts());
    const lapsed = e.when('-fetching');
    t.create(h, 'fetching', 200);
    // the table's lease timers are unref'd (they never hold a daemon's exit): hold the loop here
    const hold = setInterval(() => {}, 1000);
    await lapsed;
    clearInterval(hold);
    assert.deepEqual(e.log, ['+fetching', '-fetching']);
    assert.equal(t.size, 0);
    const sock = Object.assign(new EventEmitter(), { destroyed: false }) as unknown as Socket;
    t.create(h, 'bid', 60_000, sock);
    assert.equal(t.size, 1);
    sock.emit('close');
    assert.equal(t.size, 0);
    assert.deepEqual(e.log, ['+fetching', '-fetching', '+bid', '-bid']);
  });

  test('no claims while not advertising (metered, localhost-only)', () => {
    const e = events();
    const t = new ClaimTable(e.opts(() => false));
    assert.throws(() => t.create(h, 'bid', 1000), ClaimsDisabledError);
    assert.deepEqual(e.log, []);
  });
});

// ------------------------------------------------------------------------------------ LAN

const skip = netnsSkip() || requires('openssl', 'unshare', 'hostname');
const N = Number(process.env.HERD_HOSTS ?? 8);
const CDN_PORT = 8443;

let lan: Lan;
let hosts: LanHost[];
let cdnHost: LanHost;
const daemons: TestDaemon[] = [];
let work: string;
let cdnCert: string;
let cdn: ResultPromise;
const cdnLines: string[] = [];
const cdnWaiters: Array<{ re: RegExp; from: number; resolve: (l: string) => void }> = [];
const files: Record<string, { path: string; hash: string; data: Buffer }> = {};

function cdnUrl(path: string): string {
  return `https://${cdnHost.address}:${CDN_PORT}${path}`;
}

function hits(path: string): number {
  return cdnLines.filter((l) => l === `hit ${path}`).length;
}

/** Resolves at the first CDN output line matching re, from line index `from` on. */
function cdnLine(re: RegExp, from = 0): Promise<string> {
  const seen = cdnLines.slice(from).find((l) => re.test(l));
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => cdnWaiters.push({ re, from, resolve }));
}

interface Fetch {
  proc: ResultPromise;
  /** resolves at the first stderr line matching re */
  stderrLine(re: RegExp): Promise<string>;
  done: Promise<{ code: number; stdout: string; stderr: string; json?: { source: string; sha256: string; waitedMs: number; peer: string | null; ms: number } }>;
}

/** Starts `passim fetch` on host i (with its daemon), verbose so herd events show on stderr. */
function startFetch(i: number, file: string, path: string, ...extra: string[]): Fetch {
  const f = files[file]!;
  const out = join(work, `out-${i}-${file}-${Math.random().toString(16).slice(2)}`);
  const args = [BIN, 'fetch', file, '--sha256', f.hash, '--cdn', cdnUrl(path), '-o', out, '--json', '--verbose',
    '--socket', daemons[i]!.socket, ...extra];
  const proc = hosts[i]!.spawn('node', args, { env: { PASSIM_CDN_CA: cdnCert }, buffer: false, stdin: 'ignore' });
  let stdout = '';
  let stderr = '';
  const lineWaiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  proc.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  createInterface({ input: proc.stderr! }).on('line', (l) => {
    stderr += `${l}\n`;
    for (const w of [...lineWaiters]) if (w.re.test(l)) { lineWaiters.splice(lineWaiters.indexOf(w), 1); w.resolve(l); }
  });
  const done = proc.then(async (r) => {
    const code = r.exitCode ?? -1;
    let json;
    if (code === 0) {
      json = JSON.parse(stdout);
      assert.equal(sha(await readFile(out)), f.hash, `host ${i} wrote the right bytes`);
    }
    return { code, stdout, stderr, json };
  });
  return {
    proc,
    done,
    stderrLine: (re) => {
      const seen = stderr.split('\n').find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => lineWaiters.push({ re, resolve }));
    },
  };
}

/**
 * The namespaces share the machine's host name: give each daemon its own (a UTS namespace), or
 * eight daemons spend seconds renaming `vm.local` → `vm-2.local` … on start.
 */
function withHostName(h: LanHost, name: string): LanHost {
  return { ...h, spawn: (cmd, args = [], o = {}) => h.spawn('unshare', ['--uts', 'sh', '-c', `hostname ${name} && exec "$0" "$@"`, cmd, ...args], o) };
}

describe('on a LAN of network namespaces', { skip }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'passim-herd-'));
    lan = await createLan(N + 1, { net: 95 });
    hosts = lan.hosts.slice(0, N);
    cdnHost = lan.hosts[N]!;
    daemons.push(...(await Promise.all(hosts.map((h, i) => startDaemon({ host: withHostName(h, `herd${i}`), readyTimeout: 60_000 })))));
    const key = join(work, 'cdn.key');
    cdnCert = join(work, 'cdn.pem');
    await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', `/CN=${cdnHost.address}`, '-addext', `subjectAltName=IP:${cdnHost.address}`, '-keyout', key, '-out', cdnCert]);
    for (const [name, size] of [['burst.bin', 3_000_000], ['killed.bin', 2_000_000], ['stalled.bin', 1_500_000], ['slow.bin', 2_000_000]] as const) {
      const data = randomBytes(size);
      const path = join(work, name);
      await writeFile(path, data);
      files[name] = { path, hash: sha(data), data };
    }
    const routes = {
      '/burst.bin': { file: files['burst.bin']!.path },
      // 250 kB/s: the first fetch is still downloading when it is killed (the others use /fast/…)
      '/killed.bin': { file: files['killed.bin']!.path, bytesPerSec: 250_000 },
      '/fast/killed.bin': { file: files['killed.bin']!.path },
      // the first request gets 64 KiB and then nothing
      '/stalled.bin': { file: files['stalled.bin']!.path, stall: { first: 1, afterBytes: 65536 } },
      // 200 kB/s: 10 s for the claimer, longer than the waiter's --herd-wait
      '/slow.bin': { file: files['slow.bin']!.path, bytesPerSec: 200_000 },
      '/fast/slow.bin': { file: files['slow.bin']!.path },
    };
    cdn = cdnHost.spawn(process.execPath, ['--import', 'tsx', 'test/helpers/https-file-server.ts', JSON.stringify({ port: CDN_PORT, cert: cdnCert, key, routes })],
      { cwd: ROOT, buffer: false, stdin: 'ignore' });
    createInterface({ input: cdn.stdout! }).on('line', (l) => {
      cdnLines.push(l);
      for (const w of [...cdnWaiters]) {
        if (w.re.test(l) && cdnLines.length - 1 >= w.from) { cdnWaiters.splice(cdnWaiters.indexOf(w), 1); w.resolve(l); }
      }
    });
    await Promise.race([cdnLine(/^ready /), cdn.then(() => { throw new Error('CDN server exited'); })]);
  });

  after(async () => {
    await Promise.all(daemons.map(async (d) => { await d.stop(); await d.cleanup(); }));
    await lan?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  test(`${N} hosts fetch the same file at the same moment: all get it, the CDN sees at most 2 requests`, async (t) => {
    const runs = hosts.map((_, i) => startFetch(i, 'burst.bin', '/burst.bin'));
    const results = await Promise.all(runs.map((r) => r.done));
    for (const [i, r] of results.entries()) assert.equal(r.code, 0, `host ${i}: ${r.stderr}`);
    const sources = results.map((r) => r.json!.source);
    const n = hits('/burst.bin');
    t.diagnostic(`CDN hits: ${n} for ${N} hosts; waited ms: ${results.map((r) => r.json!.waitedMs).join(' ')}`);
    assert.ok(n >= 1 && n <= 2, `CDN hits: ${n}; sources ${sources.join(',')}`);
    assert.equal(sources.filter((s) => s === 'cdn').length, n, 'only the hosts that went to the CDN report it');
    assert.equal(sources.filter((s) => s === 'peer').length, N - n);
    assert.ok(results.some((r) => r.json!.waitedMs > 0), 'someone waited');
  });

  test('the claimer is killed mid-download: a waiter takes over, everyone gets the file', async () => {
    const mark = cdnLines.length;
    const first = startFetch(0, 'killed.bin', '/killed.bin', '--herd-wait', '20000');
    await cdnLine(/^hit \/killed\.bin$/, mark);
    const waiters = [1, 2, 3, 4].map((i) => startFetch(i, 'killed.bin', '/fast/killed.bin', '--herd-wait', '20000'));
    // each sees host 0 fetching and waits for it
    await Promise.all(waiters.map((w) => w.stderrLine(/^passim: waiting for /)));
    assert.equal(hits('/killed.bin'), 1, 'nobody but the claimer went to the CDN');
    const t0 = performance.now();
    first.proc.kill('SIGKILL');
    const results = await Promise.all(waiters.map((w) => w.done));
    const took = performance.now() - t0;
    for (const [i, r] of results.entries()) assert.equal(r.code, 0, `waiter ${i + 1}: ${r.stderr}`);
    assert.ok(took < 20_000, `the waiters were not held until --herd-wait (${Math.round(took)} ms)`);
    assert.equal(hits('/killed.bin'), 1);
    const n = hits('/fast/killed.bin');
    assert.ok(n >= 1 && n <= 2, `one waiter took over (CDN hits ${n}, sources ${results.map((r) => r.json!.source)})`);
    assert.equal(results.filter((r) => r.json!.source === 'cdn').length, n);
    for (const r of results) assert.ok(r.json!.waitedMs > 0);
  });

  test('the claimer stalls: its claim lapses, a waiter takes over well within --herd-wait', async () => {
    const mark = cdnLines.length;
    // default --herd-wait (60 s): the claim lease is 5 s of no progress
    const first = startFetch(5, 'stalled.bin', '/stalled.bin');
    await cdnLine(/^stalled \/stalled\.bin$/, mark);
    const t0 = performance.now();
    const waiters = [6, 7].map((i) => startFetch(i, 'stalled.bin', '/stalled.bin', '--herd-wait', '25000'));
    await Promise.all(waiters.map((w) => w.stderrLine(/^passim: waiting for /)));
    const results = await Promise.all(waiters.map((w) => w.done));
    const took = performance.now() - t0;
    for (const [i, r] of results.entries()) assert.equal(r.code, 0, `waiter ${i + 6}: ${r.stderr}`);
    assert.ok(took < 15_000, `about one lease (5 s) after the stall, not --herd-wait (took ${Math.round(took)} ms)`);
    assert.match(await first.stderrLine(/download stalled/), /letting other hosts take over/);
    const n = hits('/stalled.bin');
    assert.ok(n >= 2 && n <= 3, `CDN hits ${n}`);
    first.proc.kill('SIGKILL');
    await first.done;
  });

  test('a slow claimer holds a waiter at most --herd-wait; --no-herd does not wait at all', async () => {
    const mark = cdnLines.length;
    const first = startFetch(0, 'slow.bin', '/slow.bin');
    await cdnLine(/^hit \/slow\.bin$/, mark);
    const waiter = startFetch(1, 'slow.bin', '/fast/slow.bin', '--herd-wait', '2000');
    // (not publishing: the waiter must not find it on host 2 meanwhile)
    const impatient = startFetch(2, 'slow.bin', '/fast/slow.bin', '--no-herd', '--no-publish');
    const [w, i] = await Promise.all([waiter.done, impatient.done]);
    assert.equal(i.code, 0, i.stderr);
    assert.equal(i.json!.source, 'cdn');
    assert.equal(i.json!.waitedMs, 0);
    assert.doesNotMatch(i.stderr, /waiting for/);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stderr, /^passim: waiting for /m);
    assert.match(w.stderr, /no longer waiting: .*--herd-wait/);
    assert.equal(w.json!.source, 'cdn');
    assert.ok(w.json!.waitedMs >= 1900 && w.json!.waitedMs < 6000, `waited ${w.json!.waitedMs} ms`);
    assert.equal(hits('/fast/slow.bin'), 2);
    first.proc.kill('SIGKILL');
    await first.done;
  });
});
