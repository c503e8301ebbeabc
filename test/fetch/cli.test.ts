/**
 * The real `passim fetch` (bin/passim.js on the compiled dist/). The CLI cannot be given a browse
 * function, so every run uses --no-peers; the loopback "CDN" is trusted through PASSIM_CDN_CA, and
 * PASSIM_SOCKET points at a socket that does not exist (no daemon is asked or published to).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { honest, liar, makeCert, respond, rmDir, sha256, startServer, status, tempDir, tempFilesIn, type KeyCert, type TestServer } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/passim.js');
const DATA = randomBytes(100_000);
const HASH = sha256(DATA);

let kc: KeyCert;
let good: TestServer;
let bad: TestServer;
let sums: TestServer;
let dir: string;

before(async () => {
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
  } catch {
    // others' in-progress type errors still emit; what matters is that our files compiled
  }
  assert.ok(existsSync(join(ROOT, 'dist/cli/commands/fetch.js')), 'dist is built');
  kc = await makeCert();
  good = await startServer(kc, honest(DATA));
  bad = await startServer(kc, liar(DATA));
  sums = await startServer(kc, (req, sock) => {
    if (!req.path.endsWith('SHA256SUMS')) return status(404)(req, sock);
    const body = `${'a'.repeat(64)}  other.bin\n${HASH}  f.bin\n`;
    respond(sock, 200, { 'Content-Length': body.length }, body);
  });
  dir = tempDir();
});

after(async () => {
  await Promise.all([good, bad, sums].map((s) => s?.close()));
  rmDir(dir);
});

function passim(args: string[], opts: { ca?: boolean; cwd?: string } = {}) {
  return execa('node', [BIN, ...args], {
    cwd: opts.cwd ?? dir,
    reject: false,
    encoding: 'buffer',
    env: {
      PASSIM_SOCKET: join(dir, 'no-daemon.sock'),
      PASSIM_CDN_CA: opts.ca === false ? '' : kc.certFile,
      NODE_EXTRA_CA_CERTS: '',
    },
    timeout: 20_000,
    stripFinalNewline: false,
  }).then((r) => ({ exitCode: r.exitCode, stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr) }));
}

describe('passim fetch (CLI)', () => {
  it('saves NAME from the CDN and prints one line', async () => {
    const r = await passim(['fetch', 'f.bin', '--sha256', HASH, '--cdn', good.url('/f.bin'), '--no-peers']);
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.deepEqual(readFileSync(join(dir, 'f.bin')), DATA);
    assert.match(r.stdout.toString(), /^saved f\.bin \(98 KiB\) from the CDN \(127\.0\.0\.1:\d+\) in \d+ ms\n$/);
    assert.equal(r.stderr.length, 0, 'no progress on a non-TTY stderr');
  });

  it('passim fetch URL takes NAME from the URL and the URL as the CDN', async () => {
    const r = await passim(['fetch', good.url('/dir/url%20name.bin'), '--sha256', HASH, '--no-peers', '--json']);
    assert.equal(r.exitCode, 0, r.stderr.toString());
    const j = JSON.parse(r.stdout.toString());
    assert.equal(j.path, join(dir, 'url name.bin'));
    assert.equal(j.sha256, HASH);
    assert.equal(j.size, DATA.length);
    assert.equal(j.source, 'cdn');
    assert.equal(j.peer, null);
    assert.equal(typeof j.ms, 'number');
    assert.deepEqual(readFileSync(join(dir, 'url name.bin')), DATA);
  });

  it('-o - writes exactly the verified bytes to stdout', async () => {
    const r = await passim(['fetch', 'f.bin', '--sha256', HASH, '--cdn', good.url('/f.bin'), '--no-peers', '-o', '-']);
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.deepEqual(r.stdout, DATA);
    assert.match(r.stderr.toString(), /fetched f\.bin/);
  });

  it('-o - with wrong bytes: exit 4 and nothing on stdout', async () => {
    const r = await passim(['fetch', 'f.bin', '--sha256', HASH, '--cdn', bad.url('/f.bin'), '--no-peers', '-o', '-']);
    assert.equal(r.exitCode, 4);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr.toString(), /^passim: error: .*wrong bytes/);
  });

  it('wrong bytes to a file: exit 4, target unchanged, no temp files', async () => {
    const target = join(dir, 'keep.bin');
    writeFileSync(target, 'previous');
    const r = await passim(['fetch', 'keep.bin', '--sha256', HASH, '--cdn', bad.url('/keep.bin'), '--no-peers']);
    assert.equal(r.exitCode, 4);
    assert.equal(readFileSync(target, 'utf8'), 'previous');
    assert.deepEqual(tempFilesIn(dir), []);
    assert.equal(r.stderr.toString().trim().split('\n').length, 1, 'one line, no stack trace');
  });

  it('--sha256-url reads the hash for NAME from a SHA256SUMS file', async () => {
    const r = await passim(['fetch', good.url('/f.bin'), '--sha256-url', sums.url('/SHA256SUMS'), '--no-peers', '-o', 'sums.bin', '--json']);
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(JSON.parse(r.stdout.toString()).sha256, HASH);
    assert.deepEqual(readFileSync(join(dir, 'sums.bin')), DATA);
  });

  it('an untrusted CDN certificate (no PASSIM_CDN_CA) fails with exit 3 and writes nothing', async () => {
    const r = await passim(['fetch', 'tls.bin', '--sha256', HASH, '--cdn', good.url('/f.bin'), '--no-peers'], { ca: false });
    assert.equal(r.exitCode, 3);
    assert.match(r.stderr.toString(), /TLS/);
    assert.equal(existsSync(join(dir, 'tls.bin')), false);
  });

  it('nothing to try: exit 3', async () => {
    const r = await passim(['fetch', 'none.bin', '--sha256', HASH, '--no-peers', '--no-cdn', '--cdn', good.url('/f.bin')]);
    assert.equal(r.exitCode, 3);
    assert.equal(existsSync(join(dir, 'none.bin')), false);
  });

  const usage: Array<[string, string[]]> = [
    ['no hash', ['fetch', 'x.bin', '--no-peers']],
    ['both hash and hash URL', ['fetch', 'x.bin', '--sha256', HASH, '--sha256-url', 'https://127.0.0.1/S']],
    ['a short hash', ['fetch', 'x.bin', '--sha256', 'abc123']],
    ['a non-hex hash', ['fetch', 'x.bin', '--sha256', 'g'.repeat(64)]],
    ['a bad CDN URL', ['fetch', 'x.bin', '--sha256', HASH, '--cdn', 'ftp://x/y']],
    ['a bad max-age', ['fetch', 'x.bin', '--sha256', HASH, '--max-age', '-1']],
    ['a bad share-limit', ['fetch', 'x.bin', '--sha256', HASH, '--share-limit', 'lots']],
    ['a bad timeout', ['fetch', 'x.bin', '--sha256', HASH, '--timeout', 'soon']],
    ['a name with a slash', ['fetch', '../x.bin', '--sha256', HASH, '--no-peers']],
    ['a URL without a file name', ['fetch', 'https://127.0.0.1/', '--sha256', HASH]],
    ['no target', ['fetch', '--sha256', HASH]],
  ];
  for (const [what, args] of usage) {
    it(`usage error (exit 2): ${what}`, async () => {
      const r = await passim(args);
      assert.equal(r.exitCode, 2, r.stderr.toString());
      assert.match(r.stderr.toString(), /^passim: error: /);
      assert.equal(r.stdout.length, 0);
    });
  }
});
