/**
 * Several real `passim serve` daemons on a LAN of network namespaces (test/helpers/netns.ts):
 * publish on one host, fetch on another, lying peers, CDN fallback, share-limit goodbyes, the
 * loopback redirect fwupd uses, name conflicts and shutdown goodbyes. Root only; CI runs it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile, readFile, readdir, mkdtemp, rm, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { createLan, netnsSkip, type Lan, type LanHost } from '../helpers/netns.js';
import { requires } from '../helpers/requires.js';
import { startDaemon, passim, makeRoot, type TestDaemon } from '../helpers/daemon.js';
import { MdnsHost, type HostEvent } from '../helpers/mdns-host-client.js';
import { subtypeName } from '../../lib/discovery/names.js';
import { eventually } from '../helpers/eventually.js';

const skip = netnsSkip() || requires('openssl');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ROOT = resolve(import.meta.dirname, '../..');

let lan: Lan;
let A: LanHost, B: LanHost, C: LanHost, D: LanHost, E: LanHost;
const daemons = new Map<LanHost, TestDaemon>();
let work: string;
let capture: MdnsHost;
let cdn: ResultPromise;
let cdnCert: string;
const CDN_PORT = 8443;

async function put(name: string, data: Buffer): Promise<string> {
  const p = join(await mkdtemp(join(work, 'src-')), name);
  await writeFile(p, data);
  return p;
}

async function publishOn(h: LanHost, file: string, ...extra: string[]) {
  const r = await passim(['publish', file, ...extra], { host: h, env: { PASSIM_SOCKET: daemons.get(h)!.socket } });
  assert.equal(r.code, 0, r.stderr);
}

async function dumpOn(h: LanHost) {
  const r = await passim(['dump', '--json', '--socket', daemons.get(h)!.socket], { host: h });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: { name: string }; items: Array<{ hash: string; shareCount: number }> };
}

async function dumpOn2(h: LanHost, d: TestDaemon) {
  const r = await passim(['dump', '--json', '--socket', d.socket], { host: h });
  return JSON.parse(r.stdout) as { status: { name: string } };
}

async function fetchOn(h: LanHost, name: string, hash: string, out: string, ...extra: string[]) {
  const env: Record<string, string> = { PASSIM_CDN_CA: cdnCert };
  const d = daemons.get(h);
  const args = ['fetch', name, '--sha256', hash, '-o', out, '--json', ...extra];
  if (d) args.push('--socket', d.socket);
  else args.push('--socket', join(work, 'no-daemon.sock'));
  const r = await passim(args, { host: h, env });
  return { ...r, json: r.code === 0 ? JSON.parse(r.stdout) : undefined };
}

function isGoodbyeFor(e: HostEvent, from: string, name: string): boolean {
  return e.from === from && !!e.packet?.answers?.some((a) => a.name.toLowerCase() === name.toLowerCase() && a.ttl === 0);
}

async function noTempFiles(dir: string) {
  const names = await readdir(dir);
  assert.deepEqual(names.filter((n) => n.includes('.passim') || n.endsWith('.tmp')), [], `temp files left in ${dir}`);
}

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'passim-lan-'));
  lan = await createLan(5);
  [A, B, C, D, E] = lan.hosts as [LanHost, LanHost, LanHost, LanHost, LanHost];
  // the liar answers every request (no cooldown) so it really gets tried
  const liarRoot = await makeRoot();
  await writeFile(join(liarRoot, 'config', 'passim.conf'), '[daemon]\nCooldown=0\n');
  const started = await Promise.all([
    startDaemon({ host: A }), startDaemon({ host: B }), startDaemon({ host: C }), startDaemon({ host: E, root: liarRoot }),
  ]);
  [A, B, C, E].forEach((h, i) => daemons.set(h, started[i]!));
  // D: a packet capture and the stand-in CDN with a certificate for its address
  capture = await MdnsHost.start(D);
  await capture.call('capture');
  const key = join(work, 'cdn.key');
  cdnCert = join(work, 'cdn.pem');
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${D.address}`, '-addext', `subjectAltName=IP:${D.address}`, '-keyout', key, '-out', cdnCert]);
  const good = await put('cdn.bin', randomBytes(1_500_000));
  const bad = await put('bad.bin', randomBytes(1_500_000));
  await writeFile(join(work, 'cdn-good-path'), good);
  cdn = D.spawn(process.execPath, ['--import', 'tsx', 'test/helpers/https-file-server.ts', JSON.stringify({
    port: CDN_PORT, cert: cdnCert, key,
    routes: { '/files/cdn.bin': { file: good }, '/files/bad.bin': { file: bad }, '/files/loop': { location: '/files/loop' } },
  })], { cwd: ROOT, buffer: false, stdin: 'ignore' });
  await new Promise<void>((res, rej) => {
    createInterface({ input: cdn.stdout! }).on('line', (l) => { if (l.startsWith('ready')) res(); });
    cdn.then(() => rej(new Error('CDN server exited')));
  });
});

after(async () => {
  if (skip) return;
  await capture?.close();
  await Promise.all([...daemons.values()].map(async (d) => { await d.stop(); await d.cleanup(); }));
  await lan?.destroy();
  await rm(work, { recursive: true, force: true });
});

test('publish on A, fetch on B: from the peer, A counts the share, B then serves it to C', { skip }, async () => {
  const data = randomBytes(2 * 1024 * 1024 + 3);
  const hash = sha(data);
  await publishOn(A, await put('pkg.bin', data));
  const outB = join(work, 'b-pkg.bin');
  const r = await fetchOn(B, 'pkg.bin', hash, outB);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.source, 'peer');
  assert.match(r.json.peer, new RegExp(`^${A.address.replace(/\./g, '\\.')}\\b`));
  assert.equal(r.json.sha256, hash);
  assert.ok((await readFile(outB)).equals(data));
  const shared = await eventually('A records the share', async () => {
    const it = (await dumpOn(A)).items.find((i) => i.hash === hash);
    return it && it.shareCount === 1 ? it : undefined;
  });
  assert.equal(shared.shareCount, 1);
  assert.ok((await dumpOn(B)).items.some((i) => i.hash === hash), 'fetch published to the local daemon on B');
  // with A gone, C finds the copy on B
  assert.equal((await passim(['unpublish', hash, '--socket', daemons.get(A)!.socket], { host: A })).code, 0);
  const outC = join(work, 'c-pkg.bin');
  const r2 = await fetchOn(C, 'pkg.bin', hash, outC, '--no-cdn');
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r2.json.source, 'peer');
  assert.match(r2.json.peer, new RegExp(`^${B.address.replace(/\./g, '\\.')}\\b`));
  assert.ok((await readFile(outC)).equals(data));
});

test('a lying peer is skipped: alone it gives exit 4 and no file; with an honest peer the right file', { skip }, async () => {
  const data = randomBytes(700_000);
  const hash = sha(data);
  await publishOn(E, await put('lie.bin', data));
  // corrupt E's stored copy in place (same size): E now serves wrong bytes under the right hash
  const stored = join(daemons.get(E)!.stateDir, 'data', `${hash}-lie.bin`);
  const fh = await open(stored, 'r+');
  await fh.write(Buffer.from('LIES'), 0, 4, 1000);
  await fh.close();
  const dir = await mkdtemp(join(work, 'out-'));
  const r = await fetchOn(C, 'lie.bin', hash, join(dir, 'lie.bin'), '--no-cdn');
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /passim: error: .*(sha256|checksum)/i);
  assert.deepEqual(await readdir(dir), [], 'no file, no temp file after a mismatch');
  await publishOn(A, await put('lie.bin', data));
  const r2 = await fetchOn(C, 'lie.bin', hash, join(dir, 'lie.bin'), '--no-cdn');
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(r2.json.peer, new RegExp(`^${A.address.replace(/\./g, '\\.')}\\b`));
  assert.ok((await readFile(join(dir, 'lie.bin'))).equals(data));
  await noTempFiles(dir);
});

test('no peer has it: the CDN is used; a CDN serving wrong bytes gives exit 4 and no file', { skip }, async () => {
  const good = await readFile(await readFile(join(work, 'cdn-good-path'), 'utf8'));
  const dir = await mkdtemp(join(work, 'cdn-'));
  const r = await fetchOn(B, 'cdn.bin', sha(good), join(dir, 'cdn.bin'), '--cdn', `https://${D.address}:${CDN_PORT}/files/cdn.bin`, '--no-publish');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.source, 'cdn');
  assert.ok((await readFile(join(dir, 'cdn.bin'))).equals(good));
  const bad = await fetchOn(B, 'bad.bin', sha(good), join(dir, 'bad.bin'), '--cdn', `https://${D.address}:${CDN_PORT}/files/bad.bin`);
  assert.equal(bad.code, 4, bad.stderr);
  const loop = await fetchOn(B, 'loop', sha(good), join(dir, 'loop'), '--cdn', `https://${D.address}:${CDN_PORT}/files/loop`);
  assert.equal(loop.code, 3, loop.stderr);
  assert.deepEqual((await readdir(dir)).sort(), ['cdn.bin']);
});

test('share-limit reached on A: A deletes it and says goodbye; nobody finds it afterwards', { skip }, async () => {
  const data = randomBytes(100_000);
  const hash = sha(data);
  await publishOn(A, await put('once.bin', data), '--share-limit', '1');
  const mark = capture.mark();
  const r = await fetchOn(B, 'once.bin', hash, join(work, 'once-b.bin'), '--no-publish', '--no-cdn');
  assert.equal(r.code, 0, r.stderr);
  await capture.waitFor((e) => isGoodbyeFor(e, A.address, subtypeName(hash)), { since: mark, timeoutMs: 5000, what: 'goodbye for the subtype' });
  assert.ok(!(await dumpOn(A)).items.some((i) => i.hash === hash));
  const r2 = await fetchOn(C, 'once.bin', hash, join(work, 'once-c.bin'), '--no-cdn');
  assert.equal(r2.code, 3, r2.stderr);
});

test('loopback request for a hash held by a peer: 302 to that peer (how fwupd uses passimd); unknown → 404', { skip }, async () => {
  const data = randomBytes(50_000);
  const hash = sha(data);
  await publishOn(A, await put('fw.cab', data));
  const url = `https://127.0.0.1:27500/fw.cab?sha256=${hash}`;
  const head = await B.exec('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', url]);
  assert.equal(head.stdout, `302 https://${A.address}:27500/fw.cab?sha256=${hash}`);
  const followed = await B.exec('sh', ['-c', `curl -skL --max-redirs 5 '${url}' | sha256sum`]);
  assert.equal(followed.stdout.split(' ')[0], hash);
  const none = await B.exec('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:27500/x?sha256=${'ab'.repeat(32)}`]);
  assert.equal(none.stdout, '404');
});

test('two daemons forced to the same instance name: one renames, both stay findable', { skip }, async () => {
  const extra = await Promise.all([
    startDaemon({ host: D, args: ['--instance-name', 'Passim-C0DE'] }),
    startDaemon({ host: A, args: ['--instance-name', 'Passim-C0DE', '--port', '27501'] }),
  ]);
  try {
    const names = extra.map((d) => d.name);
    assert.deepEqual([(await dumpOn2(D, extra[0]!)).status.name, (await dumpOn2(A, extra[1]!)).status.name], names);
    assert.notEqual(names[0], names[1]);
    assert.ok(names.includes('Passim-C0DE'), names.join(','));
    const data = randomBytes(1000);
    const hash = sha(data);
    const f = await put('twin.bin', data);
    for (const [h, d] of [[D, extra[0]!], [A, extra[1]!]] as const) {
      assert.equal((await passim(['publish', f, '--socket', d.socket], { host: h })).code, 0);
    }
    const found = await capture.call('browse', { hash, timeoutMs: 800 });
    const ports = (found.peers as Array<{ port: number; instance: string }>).map((p) => p.port).sort();
    assert.deepEqual(ports, [27500, 27501]);
  } finally {
    await Promise.all(extra.map(async (d) => { await d.stop(); await d.cleanup(); }));
  }
});

test('daemon shutdown sends goodbyes for its instance and its items', { skip }, async () => {
  const data = randomBytes(1000);
  const hash = sha(data);
  await publishOn(C, await put('bye.bin', data));
  const name = (await dumpOn(C)).status.name;
  const mark = capture.mark();
  const d = daemons.get(C)!;
  await d.stop();
  daemons.delete(C);
  await d.cleanup();
  await capture.waitFor((e) => isGoodbyeFor(e, C.address, subtypeName(hash)), { since: mark, timeoutMs: 3000, what: 'goodbye for the item' });
  await capture.waitFor((e) => isGoodbyeFor(e, C.address, '_cache._tcp.local') &&
    !!e.packet?.answers?.some((a) => a.type === 'PTR' && String(a.data).startsWith(name)), { since: mark, timeoutMs: 3000, what: 'goodbye for the instance' });
});
