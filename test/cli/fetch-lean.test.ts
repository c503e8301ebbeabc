/**
 * A plain `passim fetch` loads no CLI parser and, for peers, no HTTP-client library: its own flag
 * reading (lib/cli/fetch-argv.ts) takes only the plain forms that pass every check, and leaves
 * help, usage errors and unusual forms to the full CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseFetchArgv } from '../../lib/cli/fetch-argv.js';
import { checkFetchArgs } from '../../lib/cli/commands/fetch.js';
import { BIN, buildOnce, passim } from './helpers.js';

const TRACER = resolve(import.meta.dirname, '../helpers/module-trace.mjs');
const HASH = 'ab'.repeat(32);

test('a fetch loads no CLI parser, spinner, table or undici', { timeout: 60_000 }, async (t) => {
  await buildOnce();
  const dir = await mkdtemp(join(tmpdir(), 'passim-fetch-lean-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const trace = join(dir, 'trace.txt');
  // nothing to try: exits 3 after going through the whole fetch path (batch, sources, writer)
  const r = await execa(process.execPath, ['--import', TRACER, BIN, 'fetch', 'x.bin', '--sha256', HASH, '--no-peers', '--no-cdn', '--socket', join(dir, 'none.sock'), '-o', join(dir, 'x.bin')], {
    reject: false, stdin: 'ignore', env: { MODULE_TRACE: trace },
  });
  assert.equal(r.exitCode, 3, r.stderr);
  assert.match(r.stderr, /^passim: error: could not fetch x\.bin .*no sources to try/m);
  const loaded = await readFile(trace, 'utf8');
  assert.match(loaded, /dist\/fetch\/batch\.js/, 'the trace sees the fetch path');
  for (const p of ['yargs', 'yargs-parser', 'cliui', 'y18n', 'ora', 'cli-table3', 'undici']) {
    assert.ok(!loaded.includes(`node_modules/${p}/`), `a plain fetch loaded ${p}`);
  }
});

test('fetch --help and bad fetch flags still go through the full CLI', async () => {
  await buildOnce();
  const help = await passim(['fetch', '--help']);
  assert.equal(help.exitCode, 0, help.stderr);
  assert.match(help.stdout, /--sha256-url/);
  const bad = await passim(['fetch', 'x.bin', '--sha256', 'nothex']);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /^passim: error: --sha256 must be 64 hex digits/m);
  assert.match(bad.stderr, /Try "passim fetch --help"/);
  const twice = await passim(['fetch', 'x.bin', '--sha256', HASH, '--timeout', '1', '--timeout', '2']);
  assert.equal(twice.exitCode, 2);
  assert.match(twice.stderr, /timeout given more than once/);
});

test('parseFetchArgv reads the plain forms and declines everything else', () => {
  const parse = (argv: string[]) => parseFetchArgv(argv, checkFetchArgs);
  assert.deepEqual(parse(['--json', 'fetch', 'f.bin', '--sha256', HASH, '--cdn', 'https://a/f.bin', '--cdn=https://b/f.bin', '-o', '-', '--no-publish', '--timeout', '50', '--socket=/s']), {
    json: true, quiet: undefined, verbose: undefined, socket: '/s', target: 'f.bin', from: undefined, sha256: HASH,
    'sha256-url': undefined, 'insecure-checksum-url': undefined, cdn: ['https://a/f.bin', 'https://b/f.bin'], output: '-',
    timeout: 50, peers: true, publish: false, 'max-age': undefined, 'share-limit': undefined, herd: true, 'herd-wait': 60_000,
    domain: undefined, 'dns-server': undefined,
  });
  assert.deepEqual(parse(['fetch', 'f.bin', '--sha256', HASH, '--no-cdn'])?.cdn, [false]);
  assert.equal(parse(['fetch', 'https://cdn.example/f.bin', '--sha256-url', 'https://cdn.example/SUMS'])?.target, 'https://cdn.example/f.bin');
  assert.equal(parse(['fetch', '--from', 'list.txt', '-o', 'dir'])?.from, 'list.txt');
  for (const argv of [
    ['fetch', '--help'], ['fetch', '-h'], ['--version', 'fetch'], ['fetch', 'f.bin', '--sha256', HASH, '--bogus'],
    ['fetch', 'f.bin', 'g.bin', '--sha256', HASH], ['fetch', 'f.bin'], ['fetch', 'f.bin', '--sha256', 'nothex'],
    ['fetch', 'f.bin', '--sha256', HASH, '--timeout', 'abc'], ['fetch', 'f.bin', '--sha256', HASH, '--timeout', '1', '--timeout', '2'],
    ['fetch', 'f.bin', '--sha256', HASH, '--cdn', 'https://a/f', '--no-cdn'], ['fetch', 'f.bin', '--sha256', HASH, '--peers', '--no-peers'],
    ['fetch', 'f.bin', '--sha256', HASH, '-qv'], ['fetch', 'f.bin', '--sha256', HASH, '--', 'x'], ['fetch', 'f.bin', '--sha256', HASH, '-o', ''],
    ['fetch', 'f.bin', '--sha256-url', 'http://cdn.example/SUMS'], ['publish', 'fetch'], ['fetch', '--from', 'l', 'f.bin'],
    ['fetch', 'f.bin', '--sha256', HASH, '--herd-wait', '9999999'],
  ]) {
    assert.equal(parse(argv), undefined, argv.join(' '));
  }
});
