/**
 * The index page in a real browser: a real daemon with three items, loaded by headless Chromium
 * (Debian `chromium`) over HTTPS on loopback. The DOM must list the items (names escaped, full
 * hashes in titles, CSS bars, no script), and a screenshot is saved for a human to look at.
 * Chromium runs with every background network feature off and a fresh profile; the page itself
 * carries a CSP that forbids any other fetch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startDaemon, passim, makeRoot } from '../helpers/daemon.js';
import { requires } from '../helpers/requires.js';

const CHROMIUM = process.env.PASSIM_CHROMIUM ?? 'chromium';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function chromium(profile: string, args: string[]) {
  return execa(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-default-apps', '--disable-extensions', '--no-default-browser-check', '--disable-dev-shm-usage',
    '--no-proxy-server', '--ignore-certificate-errors', '--hide-scrollbars',
    `--user-data-dir=${profile}`, ...args,
  ], { reject: false, timeout: 90_000, stdin: 'ignore', env: { HOME: profile } });
}

test('index page in headless Chromium: items listed, escaped, screenshot saved', { skip: process.env.PASSIM_CHROMIUM ? false : requires('chromium') }, async (t) => {
  const root = await makeRoot();
  // 3 GiB served to peers already (savings are the sum of SHARE sizes in the audit log)
  await mkdir(join(root, 'state', 'log'), { recursive: true });
  await writeFile(join(root, 'state', 'log', 'audit.log'),
    `2024-01-01T00:00:00.000Z SHARE hash=${'cd'.repeat(32)},basename=old.bin,size=${3 * 1024 ** 3},ipaddr=10.0.0.9\n`);
  const d = await startDaemon({ root });
  const profile = await mkdtemp(join(tmpdir(), 'passim-chromium-'));
  t.after(async () => {
    await d.stop();
    await d.cleanup();
    await rm(profile, { recursive: true, force: true });
  });
  const env = { PASSIM_SOCKET: d.socket };
  const items: Array<{ name: string; data: Buffer; args: string[] }> = [
    { name: 'firmware-1.2.3.cab', data: randomBytes(3 * 1024 * 1024 + 17), args: ['--max-age', '2592000', '--share-limit', '30', '--next-reboot'] },
    { name: 'repomd.xml', data: randomBytes(4200), args: ['--max-age', '60', '--share-limit', '50'] },
    { name: '<i>Release<i> & "InRelease".gpg', data: randomBytes(900), args: [] },
  ];
  for (const it of items) {
    const file = join(root, 'upload.bin');
    await writeFile(file, it.data);
    const r = await passim(['publish', file, '--name', it.name, ...it.args], { env });
    assert.equal(r.code, 0, r.stderr);
  }

  const url = `https://127.0.0.1:${d.port}/`;
  const dom = await chromium(profile, ['--virtual-time-budget=2000', '--dump-dom', url]);
  assert.equal(dom.exitCode, 0, `chromium --dump-dom failed: ${dom.stderr}`);
  const html = String(dom.stdout);
  assert.match(html, /<table>/, `no table in the DOM:\n${html.slice(0, 2000)}`);
  // every item is a row, with its full hash in the abbr title and the link
  assert.equal(html.match(/<tr data-hash="/g)?.length, 3, html);
  for (const it of items) {
    const h = sha(it.data);
    assert.ok(html.includes(`title="${h}"`), `full hash of ${it.name} in a title`);
    assert.ok(html.includes(`${h.slice(0, 12)}…`), `short hash of ${it.name}`);
  }
  assert.ok(html.includes('firmware-1.2.3.cab'));
  assert.ok(html.includes('repomd.xml'));
  // the hostile name is text, never markup
  assert.ok(html.includes('&lt;i&gt;Release&lt;i&gt; &amp; "InRelease".gpg'), 'escaped name rendered as text');
  assert.ok(!html.includes('<i>Release'), 'no <i> element from a file name');
  assert.ok(!/<script/i.test(html), 'no script');
  // age and share bars are CSS widths; flags, sizes, savings, version, status
  assert.match(html, /class="bar[^"]*"[^>]*><span style="width:\d+(\.\d)?%"><\/span>/);
  assert.match(html, /0 \/ 30/);
  assert.match(html, /0 \/ 50/);
  assert.match(html, /<span class="flag next-reboot"/);
  assert.match(html, /<span class="flag disabled"/);
  assert.match(html, /3\.0 MiB/);
  assert.match(html, /<dd id="download-saving"[^>]*>3\.0 GiB<\/dd>/);
  assert.match(html, /<dd id="carbon-saving"[^>]*>79\.1 g CO₂e<\/dd>/);
  assert.match(html, /version \d+\.\d+\.\d+/);
  assert.match(html, /<span class="status running">running<\/span>/);
  assert.ok(html.includes(`advertised as <code>${d.name}</code>`));

  const outDir = process.env.PASSIM_TEST_OUTPUT ?? join(tmpdir(), 'passim-test-output');
  await mkdir(outDir, { recursive: true });
  const png = join(outDir, 'index-page.png');
  await rm(png, { force: true });
  const shot = await chromium(profile, ['--window-size=1280,640', `--screenshot=${png}`, url]);
  assert.equal(shot.exitCode, 0, `chromium --screenshot failed: ${shot.stderr}`);
  const bytes = await readFile(png);
  assert.ok(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'a PNG');
  assert.ok((await stat(png)).size > 10_000, 'a screenshot with something on it');
  t.diagnostic(`index page screenshot: ${png}`);
});
