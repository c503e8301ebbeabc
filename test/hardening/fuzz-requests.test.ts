/**
 * Fuzz of the request decision path (checkRequest → splitTarget / basenameFromPath) against a
 * real Store, with a fixed seed:
 *
 *  1. structured targets whose meaning is known by construction (query keys and values in raw and
 *     percent-encoded forms, duplicated / empty / odd keys, hashes in mixed case, paths with `..`,
 *     `%2f`, NUL, unicode, very long names, absolute-form, fragments) → the outcome equals an
 *     oracle written from SPEC §4 / upstream's order of checks;
 *  2. unstructured garbage targets → invariants only.
 *
 * Invariants for every case: never throws; the outcome is one of the allowed kinds and statuses;
 * when an item is served it is the store's own record for the requested hash, whose file lies in
 * the data dir and is named `<hash>-<basename>` — never a path derived from the request.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, sep, dirname, basename as pathBasename } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { Store } from '../../lib/store/store.js';
import { checkRequest, splitTarget, basenameFromPath, type Outcome } from '../../lib/http/request-checks.js';
import type { ItemInfo } from '../../lib/store/types.js';
import { SEED, content, sha256 } from './helpers.js';

const RUNS = 12_000;

let dir: string;
let dataDir: string;
let store: Store;
/** published, enabled */
let held: ItemInfo[] = [];
let disabled: ItemInfo;
let canaryHash: string;
const absentHash = 'ab'.repeat(32);

const ODD_NAMES = [
  'firmware.xml.gz',
  'ünïcødé ☃.bin',
  'a b%20c.txt',
  'x%2fy',
  '..a',
  'a..',
  '...',
  '-dash',
  'semi;colon,=.json',
  'quote"name\'.txt',
  '#hash?q&x=1.txt',
  'emoji😀.iso',
  'back\\slash',
  'é'.repeat(95), // 190 UTF-8 bytes: the longest allowed
];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passim-fuzz-req-'));
  dataDir = join(dir, 'data');
  store = new Store({ stateDir: dir, dataDir, bootTime: () => 'btime 1' });
  await store.load();
  for (const [i, name] of ODD_NAMES.entries()) {
    held.push(await store.publish(Readable.from([content(100 + i, i + 1)]), { basename: name, shareLimit: 5 }));
  }
  disabled = await store.publish(Readable.from([content(77, 99)]), { basename: 'next-reboot.cab', nextReboot: true });
  assert.equal(disabled.disabled, true);
  const canary = Buffer.from('CANARY: outside the store\n');
  canaryHash = sha256(canary);
  await writeFile(join(dir, 'canary.secret'), canary);
  held = held.map((h) => store.get(h.hash)!);
});

after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------- generators

const mixCase = (hash: string) =>
  fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }).map((m) => [...hash].map((c, i) => (m[i] ? c.toUpperCase() : c)).join(''));

/** percent-encodes some characters of s */
const partlyEncoded = (s: string) =>
  fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((m) =>
    [...s].map((c, i) => (m[i] ? `%${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c)).join(''),
  );

type Sem = 'sha256' | 'localhost' | 'other';
interface Param {
  raw: string;
  key: Sem;
  /** the decoded value */
  value: string;
}

const otherKey = fc.oneof(
  fc.constantFrom('SHA256', 'Sha256', 'sha256%00', 'sha256%20', 'sha256+', 'sha25', 'sha2566', 'LOCALHOST', 'localhost%00', '', '%', '%zz', 'ß', 'sha256[]', '%E2%98%83'),
  fc.stringMatching(/^[a-z]{1,8}$/),
);
const sha256Key = fc.constantFrom('sha256', 'sha%32%356', '%73ha256', '%73%68%61%32%35%36');
const localhostKey = fc.constantFrom('localhost', 'local%68ost', '%6Cocalhost');

interface HashValue {
  raw: string;
  decoded: string;
}
const hashValue: fc.Arbitrary<HashValue> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...ODD_NAMES.keys()).chain((i) => mixCase(heldHashes()[i])).map((h) => ({ raw: h, decoded: h })) },
  { weight: 2, arbitrary: fc.constantFrom(...ODD_NAMES.keys()).chain((i) => partlyEncoded(heldHashes()[i])).map((raw) => ({ raw, decoded: decodeURIComponent(raw) })) },
  { weight: 1, arbitrary: fc.constant(0).chain(() => mixCase(disabled.hash)).map((h) => ({ raw: h, decoded: h })) },
  { weight: 1, arbitrary: fc.constant(0).chain(() => mixCase(canaryHash)).map((h) => ({ raw: h, decoded: h })) },
  { weight: 1, arbitrary: mixCase(absentHash).map((h) => ({ raw: h, decoded: h })) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(...ODD_NAMES.keys()).chain((i) => {
      const h = heldHashes()[i];
      return fc.constantFrom(
        { raw: h.slice(1), decoded: h.slice(1) },
        { raw: `${h}0`, decoded: `${h}0` },
        { raw: `${h}%00`, decoded: `${h}\0` },
        { raw: `${h}+`, decoded: `${h} ` },
        { raw: `+${h}`, decoded: ` ${h}` },
        { raw: `${h.slice(0, 32)}%2f${h.slice(32)}`, decoded: `${h.slice(0, 32)}/${h.slice(32)}` },
        { raw: `${h.slice(0, 63)}g`, decoded: `${h.slice(0, 63)}g` },
        { raw: `${h}=`, decoded: `${h}=` },
        { raw: `${h.slice(0, 63)}%EF%BC%90`, decoded: `${h.slice(0, 63)}\uFF10` }, // full-width 0
        { raw: '', decoded: '' },
        { raw: '%', decoded: '%' },
      );
    }),
  },
);
function heldHashes(): string[] {
  return held.map((h) => h.hash);
}

const localhostValue = fc.constantFrom(
  { raw: 'true', decoded: 'true' },
  { raw: 'false', decoded: 'false' },
  { raw: 'fals%65', decoded: 'false' },
  { raw: '%74rue', decoded: 'true' },
  { raw: 'TRUE', decoded: 'TRUE' },
  { raw: 'False', decoded: 'False' },
  { raw: '', decoded: '' },
  { raw: '1', decoded: '1' },
  { raw: 'false+', decoded: 'false ' },
  { raw: 'false%00', decoded: 'false\0' },
);

/** characters that carry no query syntax (no & # % + =) */
const plainChar = fc.constantFrom(...'abcXYZ019._-~/?:@!$\'()*,;é☃😀'.split(/(?:)/u));
const plainValue = fc.array(plainChar, { maxLength: 12 }).map((a) => a.join(''));

const hashParam: fc.Arbitrary<Param> = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(sha256Key, hashValue).map(([k, v]) => ({ raw: `${k}=${v.raw}`, key: 'sha256' as Sem, value: v.decoded })) },
  { weight: 1, arbitrary: sha256Key.map((k) => ({ raw: k, key: 'sha256' as Sem, value: '' })) }, // no "="
);
const otherParam: fc.Arbitrary<Param> = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(localhostKey, localhostValue).map(([k, v]) => ({ raw: `${k}=${v.raw}`, key: 'localhost' as Sem, value: v.decoded })) },
  { weight: 3, arbitrary: fc.tuple(otherKey, plainValue).map(([k, v]) => ({ raw: `${k}=${v}`, key: 'other' as Sem, value: v })) },
  { weight: 1, arbitrary: otherKey.filter((k) => k !== '').map((k) => ({ raw: k, key: 'other' as Sem, value: '' })) },
);
/** mostly exactly one sha256 (so the later checks are reached), sometimes none or several */
const params: fc.Arbitrary<Param[]> = fc
  .tuple(
    fc.array(otherParam, { maxLength: 3 }),
    fc.oneof({ weight: 6, arbitrary: fc.array(hashParam, { minLength: 1, maxLength: 1 }) }, { weight: 1, arbitrary: fc.array(hashParam, { maxLength: 3 }) }),
    fc.array(fc.nat(), { minLength: 6, maxLength: 6 }),
  )
  .map(([others, hashes, order]) => {
    const all = [...others, ...hashes];
    // a deterministic shuffle driven by the generated numbers
    for (let i = all.length - 1; i > 0; i--) {
      const j = order[i % order.length] % (i + 1);
      [all[i], all[j]] = [all[j], all[i]];
    }
    return all;
  });

/** path segments: traversal, encoded slashes, NUL, unicode, long names, store names */
const segment = fc.oneof(
  fc.constantFrom('..', '.', '', '%2e%2e', '%2E%2E', '%2f', '%2F', '..%2f..%2f', '%00', '\0', '%', '%zz', '%ED%A0%80', '\uD800', '\\..\\..', 'canary.secret',
    '..%2fcanary.secret', '%2e%2e%2fcanary.secret', 'data', 'log', 'audit.log', '.passim-tmp-0', '%c0%ae%c0%ae'),
  fc.constantFrom(...ODD_NAMES).map((n) => n.replace(/[?#]/g, '_')),
  fc.constantFrom(...ODD_NAMES).map((n) => encodeURIComponent(n)),
  fc.integer({ min: 200, max: 5000 }).map((n) => 'a'.repeat(n)),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => s.replace(/[?#/]/g, '')),
  fc.string({ unit: 'binary', maxLength: 20 }).map((s) => s.replace(/[?#/]/g, '')),
);

interface Case {
  method: string;
  pathKind: 'segments' | 'root' | 'favicon' | 'style' | 'absolute' | 'empty';
  path: string;
  query: Param[] | undefined;
  seps: string[];
  fragment: string | undefined;
  loopback: boolean;
  cooling: boolean;
}

const structured: fc.Arbitrary<Case> = fc
  .record({
    method: fc.oneof(
      { weight: 8, arbitrary: fc.constant('GET') },
      { weight: 2, arbitrary: fc.constantFrom('HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'get', 'Get', 'GET ', 'CONNECT', 'TRACE', 'PATCH', '', 'G\0ET') },
    ),
    pathKind: fc.oneof(
      { weight: 12, arbitrary: fc.constant('segments' as const) },
      { weight: 1, arbitrary: fc.constantFrom('root' as const, 'favicon' as const, 'style' as const, 'absolute' as const, 'empty' as const) },
    ),
    segs: fc.array(segment, { minLength: 1, maxLength: 5 }),
    query: fc.option(params, { freq: 8, nil: undefined }),
    seps: fc.array(fc.constantFrom('&', '&', '&', '&&', '&&&'), { minLength: 6, maxLength: 6 }),
    lead: fc.constantFrom('', '', '', '&'),
    fragment: fc.option(fc.string({ maxLength: 10 }).map((s) => s), { freq: 5, nil: undefined }),
    loopback: fc.boolean(),
    cooling: fc.boolean(),
  })
  .map((r) => {
    let path: string;
    switch (r.pathKind) {
      case 'root': path = '/'; break;
      case 'favicon': path = '/favicon.ico'; break;
      case 'style': path = '/style.css'; break;
      case 'empty': path = ''; break;
      default: path = `/${r.segs.join('/')}`;
    }
    return { method: r.method, pathKind: r.pathKind, path, query: r.query, seps: [r.lead, ...r.seps], fragment: r.fragment, loopback: r.loopback, cooling: r.cooling };
  });

function target(c: Case): string {
  let t = c.pathKind === 'absolute' ? `https://evil.example:27500${c.path}` : c.path;
  if (c.query !== undefined) t += `?${c.seps[0]}${c.query.map((p, i) => p.raw + (i < c.query!.length - 1 ? c.seps[i + 1] : '')).join('')}`;
  if (c.fragment !== undefined) t += `#${c.fragment}`;
  return t;
}

type Expected = { kind: 'error'; status: number } | { kind: 'index' } | { kind: 'asset' } | { kind: 'serve'; hash: string } | { kind: 'redirect'; hash: string };

/** SPEC §4 / upstream's order of checks, from the case's known meaning (no URL parsing) */
function oracle(c: Case): Expected {
  if (c.method !== 'GET') return { kind: 'error', status: 403 };
  const path = c.pathKind === 'absolute' ? (c.path === '' ? '/' : c.path) : c.path;
  if (path === '/') return c.loopback ? { kind: 'index' } : { kind: 'error', status: 403 };
  if (path === '/favicon.ico' || path === '/style.css') return c.loopback ? { kind: 'asset' } : { kind: 'error', status: 403 };
  const raw = c.query === undefined ? undefined : target({ ...c, pathKind: 'segments', path: '', fragment: undefined }).slice(1);
  if (raw === undefined || raw === '') return { kind: 'error', status: 400 };
  const params = c.query!;
  const hashes = params.filter((p) => p.key === 'sha256');
  if (hashes.length > 1) return { kind: 'error', status: 400 };
  const lh = params.filter((p) => p.key === 'localhost');
  if (lh.length > 1) return { kind: 'error', status: 400 };
  if (lh.length === 1 && lh[0].value !== 'true' && lh[0].value !== 'false') return { kind: 'error', status: 400 };
  if (hashes.length === 0) return { kind: 'error', status: 400 };
  if (!/^[0-9a-fA-F]{64}$/.test(hashes[0].value)) return { kind: 'error', status: 406 };
  const hash = hashes[0].value.toLowerCase();
  if (!c.loopback && c.cooling) return { kind: 'error', status: 403 };
  const allowLocal = !(lh.length === 1 && lh[0].value === 'false');
  if (allowLocal) {
    if (hash === disabled.hash) return { kind: 'error', status: 423 };
    if (heldHashes().includes(hash)) return { kind: 'serve', hash };
  }
  if (!c.loopback) return { kind: 'error', status: 403 };
  return { kind: 'redirect', hash };
}

// ------------------------------------------------------------------------------------ invariants

const ERROR_STATUSES = new Set([400, 403, 406, 423]);
const fileHash = new Map<string, string>();

interface Run {
  outcome: Outcome;
  cooldownCalls: Array<[string, string]>;
}

function run(method: string, url: string, loopback: boolean, cooling: boolean): Run {
  const cooldownCalls: Array<[string, string]> = [];
  const outcome = checkRequest(
    { method, url, peer: loopback ? '127.0.0.1' : '192.0.2.7', loopback },
    {
      cooldownHit: (p, h) => {
        cooldownCalls.push([p, h]);
        return cooling;
      },
      lookup: (h) => store.get(h),
    },
  );
  return { outcome, cooldownCalls };
}

async function checkInvariants(url: string, loopback: boolean, r: Run): Promise<void> {
  const o = r.outcome;
  // splitTarget / basenameFromPath on their own never throw, and split cleanly
  const st = splitTarget(url);
  assert.ok(!st.path.includes('?') && !st.path.includes('#'), 'path has no query or fragment');
  assert.ok(st.query === undefined || !st.query.includes('#'), 'query has no fragment');
  assert.equal(typeof basenameFromPath(st.path), 'string');
  // the cooldown is asked at most once, only for peers, and only with a normalised hash
  assert.ok(r.cooldownCalls.length <= 1);
  for (const [, h] of r.cooldownCalls) {
    assert.ok(!loopback, 'no cooldown for loopback');
    assert.match(h, /^[0-9a-f]{64}$/);
  }
  switch (o.kind) {
    case 'error':
      assert.ok(ERROR_STATUSES.has(o.status), `status ${o.status}`);
      assert.equal(typeof o.reason, 'string');
      break;
    case 'index':
    case 'asset':
      assert.ok(loopback, `${o.kind} only for loopback`);
      break;
    case 'redirect':
      assert.ok(loopback, 'redirect only for loopback');
      assert.match(o.hash, /^[0-9a-f]{64}$/);
      break;
    case 'serve': {
      const item = o.item;
      const own = store.get(item.hash);
      assert.ok(own, 'served item is in the store');
      assert.equal(item.path, own.path, 'the store\'s own path');
      assert.equal(dirname(item.path), dataDir, 'the file is directly in the data dir');
      assert.equal(pathBasename(item.path), `${item.hash}-${item.basename}`);
      assert.ok(resolve(item.path).startsWith(dataDir + sep));
      assert.equal(item.disabled, false);
      // the hash served is the one asked for (case-insensitively), from the query, not the path
      const asked = new URLSearchParams(st.query ?? '').getAll('sha256');
      assert.deepEqual(asked.map((h) => h.toLowerCase()), [item.hash]);
      // and the bytes at that path are that item's
      let h = fileHash.get(item.path);
      if (!h) {
        h = sha256(await readFile(item.path));
        fileHash.set(item.path, h);
      }
      assert.equal(h, item.hash);
      assert.notEqual(item.hash, canaryHash);
      break;
    }
    default:
      assert.fail(`unknown outcome ${JSON.stringify(o)}`);
  }
}

function same(o: Outcome, e: Expected): boolean {
  if (o.kind !== e.kind) return false;
  if (o.kind === 'error' && e.kind === 'error') return o.status === e.status;
  if (o.kind === 'serve' && e.kind === 'serve') return o.item.hash === e.hash;
  if (o.kind === 'redirect' && e.kind === 'redirect') return o.hash === e.hash;
  return true;
}

function tally(counts: Map<string, number>, o: Outcome): void {
  const k = o.kind === 'error' ? String(o.status) : o.kind;
  counts.set(k, (counts.get(k) ?? 0) + 1);
}
const show = (m: Map<string, number>) => [...m].sort().map(([k, v]) => `${k}:${v}`).join(' ');

test(`structured request targets (${RUNS} cases): outcome = oracle, invariants hold`, async (t) => {
  let cases = 0;
  let failures = 0;
  const counts = new Map<string, number>();
  try {
    await fc.assert(
      fc.asyncProperty(structured, async (c) => {
        cases++;
        const url = target(c);
        let r: Run;
        try {
          r = run(c.method, url, c.loopback, c.cooling);
          const want = oracle(c);
          if (!same(r.outcome, want)) {
            assert.fail(`${JSON.stringify(url)} (${c.method}, loopback=${c.loopback}, cooling=${c.cooling}): got ${JSON.stringify(r.outcome)}, want ${JSON.stringify(want)}`);
          }
          await checkInvariants(url, c.loopback, r);
        } catch (e) {
          failures++;
          throw e;
        }
        tally(counts, r.outcome);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  } finally {
    t.diagnostic(`structured targets: ${cases} cases, ${failures} failures; outcomes ${show(counts)}`);
  }
  // the generator reached every branch
  for (const k of ['serve', 'redirect', 'index', 'asset', '400', '403', '406', '423']) assert.ok((counts.get(k) ?? 0) > 20, `branch ${k} reached (${counts.get(k) ?? 0})`);
});

/** raw garbage: any code points, syntax characters, escapes and store names glued together */
const garbage: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc.constantFrom('/', '?', '#', '&', '=', '%', '%2f', '%00', '\0', '..', 'sha256=', 'localhost=', 'sha256', '\r\n', ' ', '+', '\uDFFF', 'http://', '*', ';'),
      fc.constantFrom(...ODD_NAMES.keys()).chain((i) => mixCase(heldHashes()[i])),
      fc.integer({ min: 1000, max: 20000 }).map((n) => '%2e'.repeat(n / 3)),
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(''));
/** garbage around a well-formed `?sha256=<hash>`, so garbage also reaches the serving branch */
const garbageTargets: fc.Arbitrary<string> = fc.oneof(
  garbage,
  fc
    .tuple(garbage, fc.constantFrom(...ODD_NAMES.keys()).chain((i) => mixCase(heldHashes()[i])), fc.oneof(fc.constant(''), garbage.map((g) => `&${g}`), garbage))
    .map(([a, h, b]) => `/${a.replace(/[?#]/g, '')}?sha256=${h}${b}`),
);

test(`garbage request targets (${RUNS} cases): never throw, invariants hold`, async (t) => {
  let cases = 0;
  let failures = 0;
  const counts = new Map<string, number>();
  try {
    await fc.assert(
      fc.asyncProperty(garbageTargets, fc.oneof({ weight: 9, arbitrary: fc.constant('GET') }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) }), fc.boolean(), fc.boolean(), async (url, method, loopback, cooling) => {
        cases++;
        let r: Run;
        try {
          r = run(method, url, loopback, cooling);
          await checkInvariants(url, loopback, r);
        } catch (e) {
          failures++;
          throw e;
        }
        tally(counts, r.outcome);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  } finally {
    t.diagnostic(`garbage targets: ${cases} cases, ${failures} failures; outcomes ${show(counts)}`);
  }
  assert.ok((counts.get('serve') ?? 0) > 0, 'some garbage still served an item');
});
