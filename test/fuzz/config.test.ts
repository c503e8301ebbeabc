/**
 * Fuzz of passim.conf parsing (SPEC §3, §5; issue 4): any text gives either a fully valid
 * DaemonConfig or a ConfigError naming the file (and line when known) — never another exception,
 * never a partially applied config. A config rendered from a random valid DaemonConfig parses back
 * to the same values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { DEFAULT_CONFIG, parseDaemonConfig, type DaemonConfig } from '../../lib/core/config.js';
import { ConfigError } from '../../lib/core/errors.js';
import { bump, checkCounted, newTally, RUNS } from './helpers.js';

const FILE = '/etc/passim/passim.conf';
const DEFAULT_SNAPSHOT = JSON.stringify(DEFAULT_CONFIG);

/** Everything a parsed config must satisfy; throws with the offending field. */
function assertValidConfig(c: DaemonConfig): void {
  const keys = Object.keys(DEFAULT_CONFIG).sort();
  assert.deepEqual(Object.keys(c).sort(), keys, 'config has exactly the known fields');
  assert.ok(Number.isInteger(c.port) && c.port >= 1 && c.port <= 65535, `port ${c.port}`);
  assert.equal(typeof c.ipv6, 'boolean');
  assert.ok(c.path === undefined || (typeof c.path === 'string' && c.path.startsWith('/')), `path ${c.path}`);
  // a NUL would make every later fs call on the path throw a TypeError (not a ConfigError)
  assert.ok(c.path === undefined || !c.path.includes('\u0000'), `path with NUL accepted: ${JSON.stringify(c.path)}`);
  assert.ok(Number.isSafeInteger(c.maxItemSize) && c.maxItemSize >= 1, `maxItemSize ${c.maxItemSize}`);
  assert.ok(typeof c.carbonCost === 'number' && Number.isFinite(c.carbonCost) && c.carbonCost >= 0, `carbonCost ${c.carbonCost}`);
  assert.ok(Number.isInteger(c.cooldown) && c.cooldown >= 0, `cooldown ${c.cooldown}`);
  assert.ok(Array.isArray(c.bind) && c.bind.every((a) => typeof a === 'string' && isIP(a) !== 0), `bind ${c.bind}`);
  assert.equal(typeof c.localhostOnly, 'boolean');
  assert.ok(Number.isInteger(c.maxUploads) && c.maxUploads >= 1, `maxUploads ${c.maxUploads}`);
  assert.ok(Number.isInteger(c.maxUploadsPerPeer) && c.maxUploadsPerPeer >= 1, `maxUploadsPerPeer ${c.maxUploadsPerPeer}`);
  assert.ok(Array.isArray(c.interfaces) && c.interfaces.every((i) => typeof i === 'string' && /^[A-Za-z0-9_.:@-]{1,15}$/.test(i)), `interfaces ${c.interfaces}`);
  assert.equal(typeof c.metered, 'boolean');
  assert.notEqual(c.bind, DEFAULT_CONFIG.bind, 'bind is a fresh array, not the default one');
  assert.notEqual(c.interfaces, DEFAULT_CONFIG.interfaces, 'interfaces is a fresh array');
}

/** Parses; returns 'ok' or 'error' after checking the outcome is one of the two allowed ones. */
function parseChecked(text: string): 'ok' | 'error' {
  let outcome: 'ok' | 'error';
  try {
    const { config, warnings } = parseDaemonConfig(text, FILE);
    assertValidConfig(config);
    assert.ok(Array.isArray(warnings) && warnings.every((w) => typeof w === 'string' && w.startsWith(FILE)), 'warnings name the file');
    assert.ok(warnings.every((w) => w.length < 600 && !w.includes('\n')), 'warnings are one bounded line');
    outcome = 'ok';
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    if (!(err instanceof ConfigError)) throw new Error(`not a ConfigError: ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`, { cause: err });
    assert.equal(err.file, FILE);
    assert.ok(err.message.startsWith(`${FILE}${err.line ? `:${err.line}` : ''}: `), `message names file and line: ${err.message}`);
    if (err.line !== undefined) {
      const lines = text.split('\n').length;
      assert.ok(Number.isInteger(err.line) && err.line >= 1 && err.line <= lines, `line ${err.line} within 1..${lines}`);
    }
    assert.ok(!err.message.includes('\n'), 'one-line message');
    assert.ok(err.message.length < 600, `message is bounded (${err.message.length} chars)`);
    outcome = 'error';
  }
  assert.equal(JSON.stringify(DEFAULT_CONFIG), DEFAULT_SNAPSHOT, 'defaults untouched');
  return outcome;
}

// ------------------------------------------------------------------------------ generators

const KEYS = ['Port', 'IPv6', 'Path', 'MaxItemSize', 'CarbonCost', 'Cooldown', 'Bind', 'LocalhostOnly', 'MaxUploads', 'MaxUploadsPerPeer', 'Interfaces', 'Metered'];
const EDGE_VALUES = [
  '', ' ', '0', '1', '-1', '+1', '65535', '65536', '27500', '1e3', '0x10', '1.5', '.5', '5.', 'NaN', 'Infinity', '-0',
  '9007199254740991', '9007199254740992', '99999999999999999999999999', '1'.repeat(400), 'true', 'false', 'TRUE', 'yes', 'no',
  'on', 'off', '2', '/var/lib/passim', '/var/lib/\u0000passim', '/tmp/\u0001x\u007f', 'relative/path', '/', '//', '/a\\sb', '\\', '\\x', '\\s\\n\\t\\r\\\\\\;', '1e308', '1e309',
  '0.026367', '1E-5', '127.0.0.1', '::1', '127.0.0.1;::1', '127.0.0.1,,;', '300.1.1.1', 'eth0', 'eth0;wlan0', 'a'.repeat(16),
  'eth 0', 'lo;', ';;', '\u0000', 'x\u0000y', '１２３', '٣', '\u00a0', 'é', '\ud800', '\udfff', '😀', '\ufeff1',
];
const GROUPS = ['daemon', 'Daemon', 'passim', 'other', 'daemon ', ' daemon', 'daemon]', '', 'dæmon', 'd\u0000', 'daemon][x'];

const value = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...EDGE_VALUES) },
  { weight: 2, arbitrary: fc.integer({ min: -10, max: 200000 }).map(String) },
  { weight: 1, arbitrary: fc.double({ noNaN: false }).map(String) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...EDGE_VALUES), fc.constantFrom(' ', '\t', '\r', '  ')).map(([v, s]) => s + v + s) },
);

const line = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...KEYS), value).map(([k, v]) => `${k}=${v}`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom(' = ', '= ', ' =', '=='), value).map(([k, eq, v]) => `${k}${eq}${v}`) },
  { weight: 1, arbitrary: fc.constantFrom(...GROUPS).map((g) => `[${g}]`) },
  { weight: 1, arbitrary: fc.constant('[daemon]') },
  { weight: 1, arbitrary: fc.constantFrom('', '   ', '# comment', '#[daemon]', ';comment', '\t', 'Port', '=1', '[', ']', '[]', '[[daemon]]', 'Port[de]=1', 'Unknown=1', 'po rt=1', 'Port\u0000=1') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.tuple(fc.string({ unit: 'grapheme', maxLength: 10 }), fc.string({ unit: 'grapheme', maxLength: 20 })).map(([k, v]) => `${k}=${v}`) },
);

/** valid-looking files: lines joined by LF or CRLF, maybe a BOM, maybe a NUL somewhere */
const structured = fc
  .record({
    lines: fc.array(line, { maxLength: 25 }),
    header: fc.boolean(),
    eol: fc.constantFrom('\n', '\r\n', '\r', '\n\r'),
    bom: fc.boolean(),
    trailingEol: fc.boolean(),
    nulAt: fc.option(fc.nat(), { nil: undefined }),
  })
  .map(({ lines, header, eol, bom, trailingEol, nulAt }) => {
    let text = (bom ? '\ufeff' : '') + (header ? ['[daemon]', ...lines] : lines).join(eol) + (trailingEol ? eol : '');
    if (nulAt !== undefined) {
      const i = text.length ? nulAt % text.length : 0;
      text = text.slice(0, i) + '\u0000' + text.slice(i);
    }
    return text;
  });

/** what readFile(…, 'utf8') hands the parser for arbitrary bytes */
const randomBytes = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('utf8'));

/** duplicate groups and keys on purpose */
const duplicates = fc
  .tuple(fc.constantFrom(...KEYS), value, value, fc.boolean())
  .map(([k, a, b, dupGroup]) => (dupGroup ? `[daemon]\n${k}=${a}\n[daemon]\n${k}=${b}\n` : `[daemon]\n${k}=${a}\n${k}=${b}\n`));

/** huge lines: a long value, a long key, a long group name, a long run of escapes */
const huge = fc
  .tuple(fc.constantFrom('value', 'key', 'group', 'escapes', 'comment', 'digits', 'dupgroup', 'dupkey', 'badkey'), fc.integer({ min: 1000, max: 200_000 }))
  .map(([kind, n]) => {
    switch (kind) {
      case 'value': return `[daemon]\nPath=/${'a'.repeat(n)}\n`;
      case 'key': return `[daemon]\n${'K'.repeat(n)}=1\n`;
      case 'group': return `[${'g'.repeat(n)}]\n`;
      case 'escapes': return `[daemon]\nPath=/${'\\s'.repeat(n / 2)}\\q\n`;
      case 'dupgroup': return `[${'g'.repeat(n)}]\n[${'g'.repeat(n)}]\n`;
      case 'dupkey': return `[daemon]\n${'K'.repeat(n)}=1\n${'K'.repeat(n)}=2\n`;
      case 'badkey': return `[daemon]\n${'K'.repeat(n)}\\=1\n`;
      case 'comment': return `# ${'c'.repeat(n)}\n[daemon]\nPort=1\n`;
      default: return `[daemon]\nPort=${'9'.repeat(n)}\n`;
    }
  });

/** one [daemon] group, each key at most once, values mostly plausible, some edge cases */
const VALID_VALUES: Record<string, string[]> = {
  Port: ['1', '27500', '65535', ' 443 ', '08080'],
  IPv6: ['true', 'false', 'TRUE', 'no', '1'],
  Path: ['/var/lib/passim/data', '/', '/a b', '/é/😀', '/x\\sy'],
  MaxItemSize: ['1', '104857600', '9007199254740991'],
  CarbonCost: ['0', '0.026367', '1e-3', '12.5E+2'],
  Cooldown: ['0', '3600', '315360000'],
  Bind: ['', '127.0.0.1', '::1;127.0.0.1', '0.0.0.0,::'],
  LocalhostOnly: ['true', 'false'],
  MaxUploads: ['1', '16', '100000'],
  MaxUploadsPerPeer: ['1', '2'],
  Interfaces: ['', 'eth0', 'eth0;wlan0', 'br-lan.10'],
  Metered: ['yes', 'false'],
};
const nearlyValid = fc
  .tuple(fc.subarray(KEYS, { minLength: 1 }), fc.array(fc.nat(), { minLength: KEYS.length, maxLength: KEYS.length }), fc.nat(), fc.option(value, { nil: undefined }), fc.constantFrom('\n', '\r\n'))
  .map(([keys, picks, which, edge, eol]) =>
    // all plausible values, except (maybe) one key that gets an edge-case value
    ['[daemon]', ...keys.map((k, i) => `${k}=${edge !== undefined && which % keys.length === i ? edge : VALID_VALUES[k][picks[i] % VALID_VALUES[k].length]}`)].join(eol) + eol);

const anyText = fc.oneof(
  { weight: 6, arbitrary: structured },
  { weight: 4, arbitrary: nearlyValid },
  { weight: 2, arbitrary: randomBytes },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: duplicates },
  { weight: 1, arbitrary: huge },
);

// ------------------------------------------------------------------------------ tests

test('passim.conf: random and edge-case texts → a valid config or a ConfigError naming the file', (t) => {
  const tally = newTally();
  checkCounted(t, 'passim.conf random texts', [anyText], (text) => bump(tally, parseChecked(text)), RUNS, tally);
  // the generator must exercise both outcomes substantially, or the property proves little
  assert.ok((tally.outcomes.ok ?? 0) > RUNS / 20, `enough valid configs (${tally.outcomes.ok})`);
  assert.ok((tally.outcomes.error ?? 0) > RUNS / 20, `enough rejected configs (${tally.outcomes.error})`);
});

/** Renders a value the way a GLib key file needs it: backslash and leading whitespace escaped. */
function escapeValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\r/g, '\\r').replace(/^ /, '\\s');
}

function render(c: DaemonConfig, eol: string, order: number[]): string {
  const kv: Array<[string, string]> = [
    ['Port', String(c.port)],
    ['IPv6', String(c.ipv6)],
    ['MaxItemSize', String(c.maxItemSize)],
    ['CarbonCost', String(c.carbonCost)],
    ['Cooldown', String(c.cooldown)],
    ['Bind', c.bind.join(';')],
    ['LocalhostOnly', String(c.localhostOnly)],
    ['MaxUploads', String(c.maxUploads)],
    ['MaxUploadsPerPeer', String(c.maxUploadsPerPeer)],
    ['Interfaces', c.interfaces.join(';')],
    ['Metered', String(c.metered)],
    ['Domain', c.domain],
  ];
  if (c.path !== undefined) kv.push(['Path', escapeValue(c.path)]);
  if (c.dnsServer !== undefined) kv.push(['DnsServer', c.dnsServer]);
  if (c.dnsKeyFile !== undefined) kv.push(['DnsKeyFile', escapeValue(c.dnsKeyFile)]);
  const lines = order.map((i) => kv[i % kv.length]).filter((x, i, a) => a.indexOf(x) === i).map(([k, v]) => `${k}=${v}`);
  // every key at least once (the order only shuffles)
  for (const [k, v] of kv) if (!lines.some((l) => l.startsWith(`${k}=`))) lines.push(`${k}=${v}`);
  return ['# rendered', '[daemon]', ...lines].join(eol) + eol;
}

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const ipv6 = fc.ipV6();
const iface = fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,15}$/);
const pathSeg = fc.string({ unit: fc.constantFrom(...Array.from('abcXYZ019 ._-\\é😀#;[]=')), minLength: 1, maxLength: 12 });
const absPathArb = fc.array(pathSeg, { minLength: 0, maxLength: 5 }).map((segs) => '/' + segs.join('/')).filter((p) => p.trim() === p);

const validConfig: fc.Arbitrary<DaemonConfig> = fc.record({
  port: fc.integer({ min: 1, max: 65535 }),
  ipv6: fc.boolean(),
  path: fc.option(absPathArb, { nil: undefined }),
  maxItemSize: fc.oneof(fc.integer({ min: 1, max: 2 ** 31 }), fc.constant(Number.MAX_SAFE_INTEGER)),
  carbonCost: fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)), fc.constant(0.026367)),
  cooldown: fc.integer({ min: 0, max: 10 * 365 * 86400 }),
  bind: fc.array(fc.oneof(ipv4, ipv6), { maxLength: 4 }),
  localhostOnly: fc.boolean(),
  maxUploads: fc.integer({ min: 1, max: 100000 }),
  maxUploadsPerPeer: fc.integer({ min: 1, max: 100000 }),
  interfaces: fc.array(iface, { maxLength: 4 }),
  metered: fc.boolean(),
  domain: fc.oneof(fc.constant(''), fc.array(fc.stringMatching(/^[a-z0-9_]([a-z0-9_-]{0,10}[a-z0-9_])?$/), { minLength: 1, maxLength: 4 })
    .map((labels) => labels.join('.')).filter((d) => d !== 'local' && !d.endsWith('.local'))),
  dnsServer: fc.option(fc.oneof(ipv4, ipv4.chain((a) => fc.integer({ min: 1, max: 65535 }).map((p) => `${a}:${p}`))), { nil: undefined }),
  dnsKeyFile: fc.option(absPathArb, { nil: undefined }),
});

test('passim.conf: a config rendered from a random valid DaemonConfig parses back to the same values', (t) => {
  checkCounted(
    t,
    'passim.conf round trip',
    [validConfig, fc.constantFrom('\n', '\r\n'), fc.array(fc.nat(20), { maxLength: 12 })],
    (c, eol, order) => {
      const text = render(c, eol, order);
      let parsed;
      try {
        parsed = parseDaemonConfig(text, FILE);
      } catch (err) {
        throw new Error(`valid config rejected: ${(err as Error).message}\n${text}`);
      }
      assert.deepEqual(parsed.warnings, []);
      assertValidConfig(parsed.config);
      assert.deepEqual(parsed.config, { ...c });
    },
  );
});
