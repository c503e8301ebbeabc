/**
 * The real daemon (bin/passim.js serve) driven by the real CLI and by undici/curl over loopback.
 * mDNS is pinned to lo; multi-host behaviour lives in test/netns/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile, readFile, readdir, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import { startDaemon, passim, makeRoot, type TestDaemon } from '../helpers/daemon.js';

const insecure = new Agent({ connect: { rejectUnauthorized: false } });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function get(d: TestDaemon, path: string) {
  const r = await request(`https://127.0.0.1:${d.port}${path}`, { dispatcher: insecure });
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
}

function env(d: TestDaemon) {
  return { PASSIM_SOCKET: d.socket };
}

async function withDaemon(t: { after(fn: () => Promise<void>): void }, opts: Parameters<typeof startDaemon>[0] = {}) {
  const d = await startDaemon(opts);
  t.after(async () => { await d.stop(); await d.cleanup(); });
  return d;
}

test('publish with the CLI, download by hash over HTTPS, bytes equal', async (t) => {
  const d = await withDaemon(t);
  const data = randomBytes(300_000);
  const file = join(d.root, 'firmware.cab');
  await writeFile(file, data);
  const pub = await passim(['publish', file, '600', '7'], { env: env(d) });
  assert.equal(pub.code, 0, pub.stderr);
  assert.match(pub.stdout, new RegExp(`^${sha(data)}\tfirmware.cab\t`));
  const r = await get(d, `/firmware.cab?sha256=${sha(data)}`);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(data));
  assert.equal(r.headers['content-length'], String(data.length));
  assert.equal(r.headers['content-disposition'], 'attachment; filename="firmware.cab"');
  const dump = await passim(['dump', '--json'], { env: env(d) });
  const parsed = JSON.parse(dump.stdout);
  assert.equal(parsed.items.length, 1);
  assert.equal(parsed.items[0].maxAge, 600);
  assert.equal(parsed.items[0].shareLimit, 7);
  assert.equal(parsed.items[0].shareCount, 0, 'a loopback download never counts a share');
  assert.equal(parsed.status.status, 'running');
});

test('restart keeps items, metadata and savings; the TLS certificate is reused', async (t) => {
  const root = await makeRoot();
  let d = await startDaemon({ root });
  t.after(async () => { await d.stop(); await d.cleanup(); });
  const data = randomBytes(5000);
  await writeFile(join(root, 'meta.xml'), data);
  assert.equal((await passim(['publish', join(root, 'meta.xml'), '--max-age', '1234', '--share-limit', '9', '--next-reboot'], { env: env(d) })).code, 0);
  const before = JSON.parse((await passim(['dump', '--json'], { env: env(d) })).stdout);
  const cert1 = await readFile(join(d.stateDir, 'tls', 'cert.pem'), 'utf8');
  await d.stop();
  d = await startDaemon({ root });
  const after = JSON.parse((await passim(['dump', '--json'], { env: env(d) })).stdout);
  assert.deepEqual(after.items, before.items);
  assert.equal(after.items[0].disabled, true, 'next-reboot item stays disabled without a reboot');
  assert.equal((await get(d, `/meta.xml?sha256=${sha(data)}`)).status, 423);
  assert.equal(await readFile(join(d.stateDir, 'tls', 'cert.pem'), 'utf8'), cert1);
});

test('kill -9 in the middle of a publish: after restart no half item is advertised', async (t) => {
  const root = await makeRoot();
  let d = await startDaemon({ root });
  t.after(async () => { await d.stop(); await d.cleanup(); });
  // stream a publish by hand over the control socket and stop half-way
  const sock = connect(d.socket);
  sock.on('error', () => {}); // the daemon dies under it: ECONNRESET is expected
  await new Promise<void>((res) => sock.once('connect', () => res()));
  const total = 4 * 1024 * 1024;
  sock.write(`POST /items?name=half.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${total}\r\n\r\n`);
  sock.write(randomBytes(total / 2));
  // wait until the daemon has a temp file with bytes in it: that proves the publish is under way
  const dataDir = join(d.stateDir, 'data');
  for (let i = 0; i < 200; i++) {
    const names = await readdir(dataDir).catch(() => [] as string[]);
    const tmp = names.filter((n) => n.startsWith('.'));
    if (tmp.length && (await Promise.all(tmp.map((n) => stat(join(dataDir, n)).then((s) => s.size, () => 0)))).some((s) => s > 0)) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  await d.kill9();
  sock.destroy();
  d = await startDaemon({ root });
  const dump = JSON.parse((await passim(['dump', '--json'], { env: env(d) })).stdout);
  assert.deepEqual(dump.items, []);
  const left = (await readdir(dataDir)).filter((n) => n !== '.meta');
  assert.deepEqual(left, [], 'temp files are cleaned up at start');
});

test('a second daemon on the same state dir fails with a clear message', async (t) => {
  const d = await withDaemon(t);
  const r = await passim(['serve', '--state-dir', d.stateDir, '--config-dir', d.configDir, '--socket', join(d.root, 'other.sock'), '--port', '0', '--interface', 'lo']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /passim: error: another passim daemon \(pid \d+\) is using the state dir/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('a second daemon on the same port fails with a clear message', async (t) => {
  const d = await withDaemon(t);
  const root2 = await makeRoot();
  const r = await passim(['serve', '--state-dir', join(root2, 's'), '--config-dir', join(root2, 'c'), '--socket', join(root2, 'k'), '--port', String(d.port), '--interface', 'lo']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`passim: error: port ${d.port} is already in use`));
});

test('a bad passim.conf stops the daemon with file, line and key; nothing starts', async () => {
  const root = await makeRoot();
  await writeFile(join(root, 'config', 'passim.conf'), '[daemon]\nPort=27500\nCooldown=soon\n');
  const r = await passim(['serve', '--state-dir', join(root, 'state'), '--config-dir', join(root, 'config'), '--socket', join(root, 'sock'), '--interface', 'lo']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), `passim: error: ${join(root, 'config', 'passim.conf')}:3: key "Cooldown": expected a whole number from 0 to 315360000, got "soon"`);
  await assert.rejects(stat(join(root, 'sock')));
});

test('Port= in passim.conf is used, and --port beats it', async (t) => {
  const root = await makeRoot();
  await writeFile(join(root, 'config', 'passim.conf'), '[daemon]\nPort=1\nCarbonCost=1.5\n');
  const d = await startDaemon({ root }); // the helper passes --port 0
  t.after(async () => { await d.stop(); await d.cleanup(); });
  assert.notEqual(d.port, 1);
  const st = JSON.parse((await passim(['dump', '--json'], { env: env(d) })).stdout);
  assert.equal(st.status.port, d.port);
});

test('a static dir added while running is published, served, and survives unpublish on disk', async (t) => {
  const d = await withDaemon(t);
  const dir = join(d.root, 'static');
  await mkdir(dir);
  const data = randomBytes(12345);
  await writeFile(join(dir, 'adblock.txt'), data);
  await mkdir(join(d.configDir, 'passim.d'), { recursive: true });
  await writeFile(join(d.configDir, 'passim.d', 'lists.conf'), `[passim]\nPath=${dir}\n`);
  let items: Array<{ hash: string; static: boolean }> = [];
  for (let i = 0; i < 100 && !items.length; i++) {
    items = JSON.parse((await passim(['dump', '--json'], { env: env(d) })).stdout).items;
    if (!items.length) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(items.length, 1, 'static file picked up without restart');
  assert.equal(items[0].hash, sha(data));
  assert.equal(items[0].static, true);
  assert.ok((await get(d, `/adblock.txt?sha256=${sha(data)}`)).body.equals(data));
  assert.equal((await passim(['unpublish', sha(data)], { env: env(d) })).code, 0);
  assert.ok((await readFile(join(dir, 'adblock.txt'))).equals(data), 'static files are never deleted');
});

test('publish of a file over MaxItemSize is refused and leaves nothing', async (t) => {
  const root = await makeRoot();
  await writeFile(join(root, 'config', 'passim.conf'), '[daemon]\nMaxItemSize=1000\n');
  const d = await startDaemon({ root });
  t.after(async () => { await d.stop(); await d.cleanup(); });
  await writeFile(join(root, 'big.bin'), randomBytes(5000));
  const r = await passim(['publish', join(root, 'big.bin')], { env: env(d) });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^passim: error: item is larger than the maximum item size of 1000 bytes$/m);
  assert.deepEqual(JSON.parse((await passim(['dump', '--json'], { env: env(d) })).stdout).items, []);
});

test('the index page lists items from loopback', async (t) => {
  const d = await withDaemon(t);
  await writeFile(join(d.root, 'repomd.xml'), 'hello');
  assert.equal((await passim(['publish', join(d.root, 'repomd.xml')], { env: env(d) })).code, 0);
  const r = await get(d, '/');
  assert.equal(r.status, 200);
  assert.match(r.body.toString(), /repomd\.xml/);
});

test('SIGTERM stops the daemon with exit 0 and removes its socket and lock', async () => {
  const d = await startDaemon();
  await d.stop();
  assert.equal(d.proc.exitCode, 0);
  await assert.rejects(stat(d.socket));
  await assert.rejects(stat(join(d.stateDir, 'passim.lock')));
  await d.cleanup();
});

test('a flag given twice is a usage error for serve too (it used to reach the daemon as an array)', async () => {
  const r = await passim(['serve', '--config', 'a.conf', '--config', 'b.conf', '--no-dbus']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^passim: error: config given more than once\n/);
});
