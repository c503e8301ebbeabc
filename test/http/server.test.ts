import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fixture, get, sha256, randomContent, type Fixture } from './helpers.js';
import type { ItemInfo } from '../../lib/store/types.js';
import { requires } from '../helpers/requires.js';

const run = promisify(execFile);

// one server shared by the loopback-side tests (no cooldown or share state involved)
let f: Fixture;
let item: ItemInfo;
let bytes: Buffer;
const peerCalls: Array<[string, string]> = [];
const OTHER = 'cd'.repeat(32);

before(async () => {
  f = await fixture({
    findPeer: async (hash, basename) => {
      peerCalls.push([hash, basename]);
      if (hash === OTHER) return { address: '192.0.2.7', port: 27500 };
      if (hash === 'ef'.repeat(32)) return { address: 'fe80::1%eth0', port: 27501 };
      return undefined;
    },
  });
  bytes = Buffer.concat([Buffer.from('<?xml version="1.0"?>\n'), randomContent(100_000)]);
  item = await f.publish(bytes, { basename: 'firmware.xml.gz', maxAge: 3600, shareLimit: 5 });
});

after(async () => {
  await f.close();
});

test('200 with the exact bytes and upstream headers', async () => {
  const r = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash}`);
  assert.equal(r.status, 200);
  assert.equal(sha256(r.body), item.hash);
  assert.ok(r.body.equals(bytes));
  assert.equal(r.headers['content-type'], 'application/gzip');
  assert.equal(r.headers['content-length'], String(bytes.length));
  assert.equal(r.headers['content-disposition'], 'attachment; filename="firmware.xml.gz"');
  assert.equal(r.headers['accept-ranges'], 'bytes');
});

test('curl -k fetches the same bytes', { skip: requires('curl') }, async () => {
  const { stdout } = await run('curl', ['-sk', '--fail', '--max-time', '20', `${f.base}/firmware.xml.gz?sha256=${item.hash}`], {
    encoding: 'buffer', maxBuffer: 10 * 1024 * 1024,
  });
  assert.ok((stdout as Buffer).equals(bytes));
});

test('upper-case hash → 200', async () => {
  const r = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash.toUpperCase()}`);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(bytes));
});

test('non-GET → 403 with the upstream error page', async () => {
  const r = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash}`, { method: 'POST' });
  assert.equal(r.status, 403);
  assert.match(r.body.toString(), /^<html><head><title>403 Forbidden<\/title><\/head><body>.*<\/body><\/html>$/);
  assert.match(String(r.headers['content-type']), /^text\/html/);
});

test('HEAD → 403', async () => {
  const r = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash}`, { method: 'HEAD' });
  assert.equal(r.status, 403);
});

const badQueries: Array<[string, string, number]> = [
  ['no query', '/firmware.xml.gz', 400],
  ['duplicate sha256', `/firmware.xml.gz?sha256=${'ab'.repeat(32)}&sha256=${'ab'.repeat(32)}`, 400],
  ['bad localhost= value', `/firmware.xml.gz?sha256=${'ab'.repeat(32)}&localhost=yes`, 400],
  ['no sha256', '/firmware.xml.gz?md5=abc', 400],
  ['malformed hash', '/firmware.xml.gz?sha256=1234', 406],
  ['hash of 64 non-hex characters', `/firmware.xml.gz?sha256=${'g'.repeat(64)}`, 406],
];
for (const [what, path, status] of badQueries) {
  test(`${what} → ${status}`, async () => {
    const r = await get(f.local, `${f.base}${path}`);
    assert.equal(r.status, status);
    assert.ok(r.body.toString().startsWith(`<html><head><title>${status} `));
  });
}

test('next-reboot item → 423', async () => {
  const b = randomContent(1000);
  const it = await f.publish(b, { basename: 'fw.cab', nextReboot: true });
  assert.equal(it.disabled, true);
  const r = await get(f.local, `${f.base}/fw.cab?sha256=${it.hash}`);
  assert.equal(r.status, 423);
});

test('GET / from loopback → 200 index listing the items', async () => {
  const r = await get(f.local, `${f.base}/`);
  assert.equal(r.status, 200);
  const html = r.body.toString();
  assert.ok(html.includes('firmware.xml.gz'));
  assert.ok(html.includes(item.hash));
  assert.match(String(r.headers['content-type']), /^text\/html/);
});

test('loopback, not held, no peer → 404', async () => {
  const h = '12'.repeat(32);
  const r = await get(f.local, `${f.base}/missing.txt?sha256=${h}`);
  assert.equal(r.status, 404);
  assert.deepEqual(peerCalls.at(-1), [h, 'missing.txt']);
});

test('loopback, not held, a peer has it → 302 to the peer', async () => {
  const r = await get(f.local, `${f.base}/other.xml?sha256=${OTHER.toUpperCase()}`);
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, `https://192.0.2.7:27500/other.xml?sha256=${OTHER}`);
});

test('302 to an IPv6 peer puts the address in brackets', async () => {
  const h = 'ef'.repeat(32);
  const r = await get(f.local, `${f.base}/a%20b.bin?sha256=${h}`);
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, `https://[fe80::1%25eth0]:27501/a%20b.bin?sha256=${h}`);
});

test('?localhost=false skips the local store', async () => {
  peerCalls.length = 0;
  const r = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash}&localhost=false`);
  assert.equal(r.status, 404);
  assert.deepEqual(peerCalls, [[item.hash, 'firmware.xml.gz']]);
  const t = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash}&localhost=true`);
  assert.equal(t.status, 200);
});

test('Range → 206 with the slice; past the end → 416', async () => {
  const r = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash}`, { headers: { range: 'bytes=10-19' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-range'], `bytes 10-19/${bytes.length}`);
  assert.equal(r.headers['content-length'], '10');
  assert.ok(r.body.equals(bytes.subarray(10, 20)));
  const tail = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash}`, { headers: { range: 'bytes=-5' } });
  assert.equal(tail.status, 206);
  assert.ok(tail.body.equals(bytes.subarray(bytes.length - 5)));
  const bad = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash}`, { headers: { range: `bytes=${bytes.length}-` } });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers['content-range'], `bytes */${bytes.length}`);
});

// what upstream's passimd sends for these names (GIO's shared-mime-info guess, seen with curl against
// it: `Content-Type: text/plain` for a .txt): the bytes are never decoded, so no charset is claimed
for (const [basename, type] of [
  ['notes.txt', 'text/plain'], ['page.html', 'text/html'], ['data.csv', 'text/csv'], ['key.asc', 'text/plain'],
  ['repomd.xml', 'application/xml'], ['fw.cab', 'application/vnd.ms-cab-compressed'], ['src.tgz', 'application/x-compressed-tar'],
  ['pkg.deb', 'application/vnd.debian.binary-package'], ['blob', 'application/octet-stream'],
] as const) {
  test(`a served ${basename} has upstream's Content-Type ${type}`, async () => {
    // text for the typed names; binary without an extension (GIO would call text with none text/plain)
    const b = basename === 'blob' ? Buffer.from([0, 1, 2, 0xff, 0, 0x80]) : Buffer.from(`plain ascii text for ${basename}\n`);
    const it = await f.publish(b, { basename });
    const r = await get(f.local, `${f.base}/${basename}?sha256=${it.hash}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], type);
    assert.ok(r.body.equals(b));
  });
}

test('loopback downloads never count a share', async () => {
  const b = randomContent(500);
  const it = await f.publish(b, { basename: 'limited.txt', shareLimit: 1 });
  for (let i = 0; i < 3; i++) {
    const r = await get(f.local, `${f.base}/limited.txt?sha256=${it.hash}`);
    assert.equal(r.status, 200);
  }
  assert.equal(f.store.get(it.hash)?.shareCount, 0);
});

test('style.css and favicon.ico from loopback', async () => {
  const css = await get(f.local, `${f.base}/style.css`);
  assert.equal(css.status, 200);
  assert.match(String(css.headers['content-type']), /^text\/css/);
  assert.equal((await get(f.local, `${f.base}/favicon.ico`)).status, 204);
});

test('oversized request headers are refused (431) and the server keeps serving', async () => {
  const r = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash}`, { headers: { 'x-junk': 'a'.repeat(20_000) } }).catch((e: Error) => e);
  if (!(r instanceof Error)) assert.equal(r.status, 431);
  const ok = await get(f.local, `${f.base}/firmware.xml.gz?sha256=${item.hash}`);
  assert.equal(ok.status, 200);
});
