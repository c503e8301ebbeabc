import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRequest, splitTarget, basenameFromPath, type CheckContext, type Outcome } from '../../lib/http/request-checks.js';
import type { ItemInfo } from '../../lib/store/types.js';
import { Cooldown } from '../../lib/http/cooldown.js';
import { parseRange, contentDisposition } from '../../lib/http/serve-item.js';
import { contentTypeFor } from '../../lib/http/mime.js';
import { errorPage } from '../../lib/http/error-page.js';
import { indexPage } from '../../lib/http/index-page.js';
import { humanBytes } from '../../lib/core/human-units.js';
import { isLoopbackAddress, normaliseAddress, urlHost } from '../../lib/http/addresses.js';

const H = 'ab'.repeat(32);

function item(over: Partial<ItemInfo> = {}): ItemInfo {
  return {
    hash: H, basename: 'f.xml.gz', path: '/nonexistent', size: 3, maxAge: 86400, shareLimit: 5, shareCount: 0,
    created: 0, nextReboot: false, disabled: false, static: false, ...over,
  };
}

function ctx(held: ItemInfo | undefined, cooling = false): CheckContext & { cooldownCalls: string[] } {
  const cooldownCalls: string[] = [];
  return {
    cooldownCalls,
    cooldownHit: (peer, hash) => {
      cooldownCalls.push(`${peer} ${hash}`);
      return cooling;
    },
    lookup: (hash) => (held && held.hash === hash ? held : undefined),
  };
}

const local = { peer: '127.0.0.1', loopback: true };
const remote = { peer: '10.0.0.9', loopback: false };

function status(o: Outcome): number | string {
  return o.kind === 'error' ? o.status : o.kind;
}

test('the order of checks is upstream\'s', () => {
  const c = ctx(item());
  // method first, even for an otherwise bad target
  assert.equal(status(checkRequest({ method: 'POST', url: '/', ...local }, c)), 403);
  assert.equal(status(checkRequest({ method: 'HEAD', url: `/x?sha256=${H}`, ...local }, c)), 403);
  // index / assets are loopback only
  assert.equal(status(checkRequest({ method: 'GET', url: '/', ...local }, c)), 'index');
  assert.equal(status(checkRequest({ method: 'GET', url: '/', ...remote }, c)), 403);
  assert.equal(status(checkRequest({ method: 'GET', url: '/style.css', ...local }, c)), 'asset');
  assert.equal(status(checkRequest({ method: 'GET', url: '/favicon.ico', ...remote }, c)), 403);
  // query problems: no query before duplicate before localhost before missing sha256 before format
  assert.equal(status(checkRequest({ method: 'GET', url: '/x', ...local }, c)), 400);
  assert.equal(status(checkRequest({ method: 'GET', url: '/x?', ...local }, c)), 400);
  assert.equal(status(checkRequest({ method: 'GET', url: '/x?sha256=zz&sha256=yy&localhost=maybe', ...local }, c)), 400);
  assert.equal(status(checkRequest({ method: 'GET', url: '/x?sha256=zz&localhost=maybe', ...local }, c)), 400);
  assert.equal(status(checkRequest({ method: 'GET', url: '/x?foo=bar', ...local }, c)), 400);
  assert.equal(status(checkRequest({ method: 'GET', url: '/x?sha256=zz', ...local }, c)), 406);
  assert.equal(status(checkRequest({ method: 'GET', url: `/x?sha256=${H}0`, ...local }, c)), 406);
  assert.equal(c.cooldownCalls.length, 0, 'nothing before the hash check starts a cooldown');
});

test('a well-formed request: served, disabled, or redirected/refused', () => {
  assert.equal(status(checkRequest({ method: 'GET', url: `/f.xml.gz?sha256=${H}`, ...local }, ctx(item()))), 'serve');
  assert.equal(status(checkRequest({ method: 'GET', url: `/f.xml.gz?sha256=${H.toUpperCase()}`, ...remote }, ctx(item()))), 'serve');
  assert.equal(status(checkRequest({ method: 'GET', url: `/f?sha256=${H}`, ...remote }, ctx(item({ disabled: true })))), 423);
  assert.equal(status(checkRequest({ method: 'GET', url: `/f?sha256=${H}`, ...remote }, ctx(undefined))), 403);
  const r = checkRequest({ method: 'GET', url: `/dir/f%20x.xml?sha256=${H}`, ...local }, ctx(undefined));
  assert.deepEqual(r, { kind: 'redirect', hash: H, basename: 'f x.xml' });
  // localhost=false skips the local store: loopback → redirect, peer → 403
  assert.equal(status(checkRequest({ method: 'GET', url: `/f?sha256=${H}&localhost=false`, ...local }, ctx(item()))), 'redirect');
  assert.equal(status(checkRequest({ method: 'GET', url: `/f?sha256=${H}&localhost=false`, ...remote }, ctx(item()))), 403);
  assert.equal(status(checkRequest({ method: 'GET', url: `/f?sha256=${H}&localhost=true`, ...local }, ctx(item()))), 'serve');
});

test('cooldown: only non-loopback peers, checked before the store, 403 even for items held', () => {
  const c = ctx(item({ disabled: true }), true);
  assert.equal(status(checkRequest({ method: 'GET', url: `/f?sha256=${H.toUpperCase()}`, ...remote }, c)), 403);
  assert.deepEqual(c.cooldownCalls, [`10.0.0.9 ${H}`], 'the normalised hash is the key');
  const l = ctx(item(), true);
  assert.equal(status(checkRequest({ method: 'GET', url: `/f?sha256=${H}`, ...local }, l)), 'serve');
  assert.equal(l.cooldownCalls.length, 0);
});

test('request targets are split robustly', () => {
  assert.deepEqual(splitTarget('/a/b?x=1#frag'), { path: '/a/b', query: 'x=1' });
  assert.deepEqual(splitTarget('https://host:1/a?sha256=1'), { path: '/a', query: 'sha256=1' });
  assert.deepEqual(splitTarget('/a'), { path: '/a', query: undefined });
  assert.equal(basenameFromPath('/x/%E2%82%AC.txt'), '€.txt');
  assert.equal(basenameFromPath('/bad%E2'), 'bad%E2');
});

test('cooldown windows: start on first request, refuse within, expire, forget, bounded', () => {
  let t = 1_000_000;
  const cd = new Cooldown({ seconds: 10, now: () => t, maxEntries: 3 });
  assert.equal(cd.hit('p', H), false);
  assert.equal(cd.hit('p', H), true);
  assert.equal(cd.hit('q', H), false, 'per peer');
  t += 9_999;
  assert.equal(cd.hit('p', H), true, 'a refused request does not extend the window');
  t += 1;
  assert.equal(cd.hit('p', H), false, 'expired');
  cd.forget('p', H);
  assert.equal(cd.hit('p', H), false);
  for (let i = 0; i < 10; i++) cd.hit(`peer${i}`, H);
  assert.ok(cd.size <= 3, `size ${cd.size}`);
  assert.equal(new Cooldown({ seconds: 0 }).hit('p', H) || new Cooldown({ seconds: 0 }).hit('p', H), false);
});

test('Range parsing', () => {
  assert.deepEqual(parseRange(undefined, 10), { kind: 'full' });
  assert.deepEqual(parseRange('bytes=2-4', 10), { kind: 'partial', start: 2, end: 4 });
  assert.deepEqual(parseRange('bytes=2-', 10), { kind: 'partial', start: 2, end: 9 });
  assert.deepEqual(parseRange('bytes=-3', 10), { kind: 'partial', start: 7, end: 9 });
  assert.deepEqual(parseRange('bytes=-30', 10), { kind: 'partial', start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=5-100', 10), { kind: 'partial', start: 5, end: 9 });
  assert.deepEqual(parseRange('bytes=10-', 10), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=-0', 10), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=4-2', 10), { kind: 'full' });
  assert.deepEqual(parseRange('bytes=0-1,3-4', 10), { kind: 'full' });
  assert.deepEqual(parseRange('items=0-1', 10), { kind: 'full' });
});

test('mime types, error page, content-disposition, addresses', () => {
  assert.equal(contentTypeFor('firmware.xml.gz'), 'application/gzip');
  assert.equal(contentTypeFor('a.XML'), 'application/xml');
  assert.equal(contentTypeFor('f.cab'), 'application/vnd.ms-cab-compressed');
  assert.equal(contentTypeFor('f.zst'), 'application/zstd');
  assert.equal(contentTypeFor('README.TXT'), 'text/plain', 'no charset: the bytes are never decoded');
  assert.equal(contentTypeFor('index.htm'), 'text/html');
  assert.equal(contentTypeFor('noext'), 'application/octet-stream');
  assert.equal(contentTypeFor('.hidden'), 'application/octet-stream');
  assert.equal(errorPage(406, 'bad <hash>'), '<html><head><title>406 Not Acceptable</title></head><body>bad &lt;hash&gt;</body></html>');
  assert.equal(contentDisposition('a "b".txt'), 'attachment; filename="a%20%22b%22.txt"');
  assert.equal(normaliseAddress('::ffff:10.1.2.3'), '10.1.2.3');
  for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopbackAddress(a), a);
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', 'fe80::1', '128.0.0.1', '']) assert.ok(!isLoopbackAddress(a), a);
  assert.equal(urlHost('fe80::1%eth0'), '[fe80::1%25eth0]');
  assert.equal(urlHost('10.0.0.1'), '10.0.0.1');
});

test('index page escapes names and shows the numbers', () => {
  const html = indexPage({
    version: '9.9.9',
    savings: { downloadSaving: 3 * 1024 * 1024, carbonSaving: 0.0001 },
    items: [item({ basename: '<script>x</script>.txt', size: 1536, shareCount: 2, created: 0, maxAge: 7200 })],
    now: 3600_000,
  });
  assert.ok(!html.includes('<script>'));
  assert.ok(html.includes('&lt;script&gt;x&lt;/script&gt;.txt'));
  assert.ok(html.includes('9.9.9'));
  assert.ok(html.includes('3.0 MiB'));
  assert.ok(html.includes('1h00m / 2h00m'), 'ages as dump shows them');
  assert.ok(html.includes('2 / 5'));
  assert.ok(html.includes(H));
  assert.ok(!/<link|<script|src=/.test(html), 'no external assets, no script');
  assert.equal(humanBytes(1536), '1.5 KiB');
  assert.equal(humanBytes(10), '10 B');
});
