/**
 * Wide-area DNS-SD across a router (issue 11): two subnets (10.98/16, 10.99/16) joined by a router
 * namespace that forwards unicast and no multicast, a real BIND 9 `named` in the router with the
 * README's zone (updates only with the one key, only for _cache._tcp names and host addresses),
 * and real `passim serve` daemons on both sides. Root, iproute2 and bind9 (+ dnsutils for dig).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { createRoutedNet, netnsSkip, type LanHost, type RoutedNet } from '../helpers/netns.js';
import { startDaemon, passim, makeRoot, type TestDaemon } from '../helpers/daemon.js';
import { dig, startNamed, type Named } from '../helpers/named.js';
import { requires } from '../helpers/requires.js';
import { subtypeNameIn } from '../../lib/discovery/wide-area/records.js';
import { eventually } from '../helpers/eventually.js';

const skip = netnsSkip() || requires('named', 'dig', 'openssl');
const ROOT = resolve(import.meta.dirname, '../..');
const ZONE = 'cache.test';
/** a loaded 2-core machine can take longer than the helper's default 15 s to start a daemon */
const READY_MS = 60_000;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let net: RoutedNet;
let A: LanHost, U: LanHost, B: LanHost, D: LanHost;
let named: Named;
let server: { address: string; port: number };
let work: string;
let goodKey: { name: string; secret: string; file: string };
let badKeyFile: string;
let dA: TestDaemon, dB: TestDaemon;
let rootA: string;
let rootB: string;
let cdn: ResultPromise;
let cdnCert: string;
const CDN_PORT = 8443;
/** published with max-age 2 by the first registration test; gone from the zone once expired */
let expiring: string;

async function tsigKeygen(name: string, file: string): Promise<{ name: string; secret: string; file: string }> {
  const r = await execa('tsig-keygen', ['-a', 'hmac-sha256', name]);
  await writeFile(file, r.stdout + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  const secret = /secret "([^"]+)"/.exec(r.stdout)![1]!;
  return { name, secret, file };
}

async function rootWith(conf: string): Promise<string> {
  const root = await makeRoot();
  await writeFile(join(root, 'config', 'passim.conf'), conf);
  return root;
}

// Cooldown=0: B fetches the same hash from A more than once
const confFor = (keyFile: string) => `[daemon]\nCooldown=0\nDomain=${ZONE}\nDnsServer=${server.address}:${server.port}\nDnsKeyFile=${keyFile}\n`;

async function put(name: string, data: Buffer): Promise<string> {
  const p = join(await mkdtemp(join(work, 'src-')), name);
  await writeFile(p, data);
  return p;
}

async function dump(h: LanHost, d: TestDaemon) {
  const r = await passim(['dump', '--json', '--socket', d.socket], { host: h });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: { name: string; wideArea?: { state: string; pending: number; items: number; lastUpdate?: string; lastError?: string; instance: string; host: string } }; items: Array<{ hash: string }> };
}

/** Waits until the daemon's registrar has nothing pending and reports a registered state. */
async function settled(h: LanHost, d: TestDaemon) {
  return eventually('registrar settled', async () => {
    const wa = (await dump(h, d)).status.wideArea;
    return wa && wa.state === 'registered' && wa.pending === 0 ? wa : undefined;
  });
}

async function probe(host: LanHost, body: object): Promise<{ rcode: number; rcodeName: string; tsigError?: string; verified: boolean; reason?: string }> {
  const r = await host.exec('node', ['--import', 'tsx', 'test/helpers/dns-update-probe.ts', JSON.stringify({ server, zone: ZONE, ...body })], { cwd: ROOT });
  assert.equal(r.exitCode, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function fetchOn(h: LanHost, name: string, hash: string, out: string, ...extra: string[]) {
  const r = await passim(['fetch', name, '--sha256', hash, '-o', out, '--json', '--no-publish', '--socket', join(work, 'no-daemon.sock'), ...extra],
    { host: h, env: { PASSIM_CDN_CA: cdnCert, PASSIM_CONFIG_DIR: join(work, 'fetch-config') } });
  return { ...r, json: r.code === 0 ? JSON.parse(r.stdout) : undefined };
}

/**
 * The daemons A and B, started by the first test that needs them (the first two tests check the
 * zone's serial, which their refreshes would move).
 */
async function ensureAB(): Promise<void> {
  if (dA) return;
  rootA = await rootWith(confFor(goodKey.file));
  rootB = await rootWith(confFor(goodKey.file));
  [dA, dB] = await Promise.all([
    startDaemon({ host: A, root: rootA, readyTimeout: READY_MS }),
    startDaemon({ host: B, root: rootB, readyTimeout: READY_MS }),
  ]);
}

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'passim-wide-'));
  net = await createRoutedNet([2, 2]);
  [A, U] = net.subnets[0] as [LanHost, LanHost];
  [B, D] = net.subnets[1] as [LanHost, LanHost];
  goodKey = await tsigKeygen('passim', join(work, 'passim.key'));
  badKeyFile = (await tsigKeygen('passim', join(work, 'wrong.key'))).file;
  named = await startNamed(net.router, { zone: ZONE, address: net.router.addresses[0]!, keyName: 'passim', secret: goodKey.secret });
  server = { address: named.address, port: named.port };
  // fetch reads Domain/DnsServer from this config dir (as the daemon's rules say)
  await rm(join(work, 'fetch-config'), { recursive: true, force: true });
  await execa('mkdir', ['-p', join(work, 'fetch-config')]);
  await writeFile(join(work, 'fetch-config', 'passim.conf'), `[daemon]\nDomain=${ZONE}\nDnsServer=${server.address}:${server.port}\n`);
  // D: the stand-in CDN on subnet 2
  const key = join(work, 'cdn.key');
  cdnCert = join(work, 'cdn.pem');
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${D.address}`, '-addext', `subjectAltName=IP:${D.address}`, '-keyout', key, '-out', cdnCert]);
  const cdnFile = join(work, 'cdn-copy.bin');
  await writeFile(cdnFile, randomBytes(10));
  cdn = D.spawn(process.execPath, ['--import', 'tsx', 'test/helpers/https-file-server.ts', JSON.stringify({
    port: CDN_PORT, cert: cdnCert, key, routes: { '/files/stale.bin': { file: join(work, 'stale.bin') } },
  })], { cwd: ROOT, buffer: false, stdin: 'ignore' });
  await new Promise<void>((res, rej) => {
    createInterface({ input: cdn.stdout! }).on('line', (l) => { if (l.startsWith('ready')) res(); });
    void cdn.then(() => rej(new Error('CDN server exited')));
  });
});

after(async () => {
  if (skip) return;
  await Promise.all([dA, dB].filter(Boolean).map(async (d) => { await d.stop(); await d.cleanup(); }));
  await named?.stop();
  await net?.destroy();
  await rm(work, { recursive: true, force: true });
});

test('TSIG and UPDATE against the real named: signed adds, class NONE and ANY deletes; its signed answers verify', { skip }, async () => {
  const sub = subtypeNameIn('ef'.repeat(32), ZONE);
  const add = (inst: string) => ({ op: 'add', name: sub, type: 'PTR', ttl: 60, data: `${inst}._cache._tcp.${ZONE}` });
  const r1 = await probe(U, { key: goodKey, updates: [add('Probe-1'), add('Probe-2')], lease: 3600 });
  assert.deepEqual([r1.rcodeName, r1.verified], ['NOERROR', true], JSON.stringify(r1));
  assert.deepEqual(await dig(U, server, 'PTR', sub), [`Probe-1._cache._tcp.${ZONE}.`, `Probe-2._cache._tcp.${ZONE}.`]);
  // class NONE: only that one PTR goes
  const r2 = await probe(U, { key: goodKey, updates: [{ op: 'delete', name: sub, type: 'PTR', data: `Probe-1._cache._tcp.${ZONE}` }], tcp: true });
  assert.deepEqual([r2.rcodeName, r2.verified], ['NOERROR', true], JSON.stringify(r2));
  assert.deepEqual(await dig(U, server, 'PTR', sub), [`Probe-2._cache._tcp.${ZONE}.`]);
  // class ANY: the whole RRset
  const r3 = await probe(U, { key: goodKey, updates: [{ op: 'delete-rrset', name: sub, type: 'PTR' }] });
  assert.equal(r3.rcodeName, 'NOERROR');
  assert.deepEqual(await dig(U, server, 'PTR', sub), []);
  // the prerequisite "no SRV there" holds once, then fails with YXRRSET
  const inst = `Probe-3._cache._tcp.${ZONE}`;
  const srv = { op: 'add', name: inst, type: 'SRV', ttl: 60, data: { priority: 0, weight: 0, port: 1, target: `h.${ZONE}` } };
  const pre = [{ name: inst, type: 'SRV', present: false }];
  assert.equal((await probe(U, { key: goodKey, updates: [srv], prerequisites: pre })).rcodeName, 'NOERROR');
  assert.equal((await probe(U, { key: goodKey, updates: [srv], prerequisites: pre })).rcodeName, 'YXRRSET');
  assert.equal((await probe(U, { key: goodKey, updates: [{ op: 'delete-rrset', name: inst, type: 'SRV' }] })).rcodeName, 'NOERROR');
});

test('a wrong key gets NOTAUTH (BADSIG), an unknown key BADKEY, a name outside the policy REFUSED; the zone is unchanged', { skip }, async () => {
  const sub = subtypeNameIn('fe'.repeat(32), ZONE);
  const add = { op: 'add', name: sub, type: 'PTR', ttl: 60, data: `Evil._cache._tcp.${ZONE}` };
  const serial = await dig(U, server, 'SOA', ZONE);
  const wrong = await probe(U, { key: { name: 'passim', secret: randomBytes(32).toString('base64') }, updates: [add] });
  assert.deepEqual([wrong.rcodeName, wrong.tsigError], ['NOTAUTH', 'BADSIG']);
  const unknown = await probe(U, { key: { name: 'stranger', secret: randomBytes(32).toString('base64') }, updates: [add] });
  assert.deepEqual([unknown.rcodeName, unknown.tsigError], ['NOTAUTH', 'BADKEY']);
  const outside = await probe(U, { key: goodKey, updates: [{ op: 'add', name: `www.${ZONE}`, type: 'TXT', ttl: 60, data: ['x'] }] });
  assert.equal(outside.rcodeName, 'REFUSED');
  assert.deepEqual(await dig(U, server, 'PTR', sub), []);
  assert.deepEqual(await dig(U, server, 'TXT', `www.${ZONE}`), []);
  assert.deepEqual(await dig(U, server, 'SOA', ZONE), serial, 'no update was applied (serial unchanged)');

  // a daemon with the wrong key: one clear log line, dump says failing, mDNS keeps working, nothing in the zone
  const dC = await startDaemon({ host: U, root: await rootWith(confFor(badKeyFile)), readyTimeout: READY_MS });
  try {
    const data = randomBytes(1000);
    const f = await put('c.bin', data);
    assert.equal((await passim(['publish', f, '--socket', dC.socket], { host: U })).code, 0);
    const wa = await eventually('C reports the failure', async () => {
      const s = (await dump(U, dC)).status.wideArea;
      return s?.state === 'failing' ? s : undefined;
    });
    assert.match(wa.lastError!, /rejected the key "passim" \(NOTAUTH, BADSIG\)/);
    assert.equal(dC.stderr().split('\n').filter((l) => /wide-area: .*BADSIG/.test(l)).length, 1, dC.stderr());
    assert.deepEqual(await dig(U, server, 'PTR', subtypeNameIn(sha(data), ZONE)), []);
    assert.deepEqual(await dig(U, server, 'SRV', `${dC.name}._cache._tcp.${ZONE}`), []);
    // mDNS regardless: A, on the same link, fetches it from C (peers only)
    const out = join(work, 'c-on-a.bin');
    const r = await passim(['fetch', 'c.bin', '--sha256', sha(data), '-o', out, '--json', '--no-cdn', '--no-publish', '--domain', '', '--socket', join(work, 'none.sock')], { host: A });
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await readFile(out)).equals(data));
    // the key file rewritten in place with the right secret, then SIGHUP: C registers
    const badKey = await readFile(badKeyFile, 'utf8');
    await writeFile(badKeyFile, await readFile(goodKey.file, 'utf8'));
    dC.proc.kill('SIGHUP');
    await eventually('C registers with the rotated key', async () => {
      const s = (await dump(U, dC)).status.wideArea;
      return s?.state === 'registered' && s.pending === 0 ? s : undefined;
    }, 20_000);
    assert.deepEqual(await dig(U, server, 'PTR', subtypeNameIn(sha(data), ZONE)), [`${dC.name}._cache._tcp.${ZONE}.`]);
    await writeFile(badKeyFile, badKey);
  } finally {
    await dC.stop();
    await dC.cleanup();
  }
});

test('A registers its instance, host and items; mDNS alone does not cross; B finds A through the zone', { skip }, async () => {
  await ensureAB();
  const data = randomBytes(300_000);
  const hash = sha(data);
  assert.equal((await passim(['publish', await put('wide.bin', data), '--socket', dA.socket], { host: A })).code, 0);
  const exp = randomBytes(500);
  expiring = sha(exp);
  assert.equal((await passim(['publish', await put('exp.bin', exp), '--max-age', '2', '--socket', dA.socket], { host: A })).code, 0);
  const wa = await settled(A, dA);
  assert.equal(wa.instance, dA.name);
  // the records, as a plain resolver sees them
  const inst = `${dA.name}._cache._tcp.${ZONE}`;
  assert.ok((await dig(U, server, 'PTR', `_cache._tcp.${ZONE}`)).includes(`${inst}.`));
  assert.deepEqual(await dig(U, server, 'PTR', subtypeNameIn(hash, ZONE)), [`${inst}.`]);
  const [srv] = await dig(U, server, 'SRV', inst);
  assert.equal(srv, `0 0 27500 ${wa.host}.`);
  assert.deepEqual(await dig(U, server, 'A', wa.host), [A.address]);
  assert.match((await dig(U, server, 'TXT', inst))[0]!, /^"refreshed=\d+"$/);
  const human = await passim(['dump', '--socket', dA.socket], { host: A });
  assert.match(human.stdout, new RegExp(`Wide area: +${ZONE} via ${server.address}:${server.port}: registered, \\d+ records held \\(2 items\\), 0 pending`));

  // baseline: with the zone off, B (other subnet) does not find A over mDNS
  const none = await fetchOn(B, 'wide.bin', hash, join(work, 'none.bin'), '--no-cdn', '--domain', '');
  assert.equal(none.code, 3, none.stderr);
  // through the zone (Domain/DnsServer from passim.conf): from A, verified
  const out = join(work, 'wide-on-b.bin');
  const r = await fetchOn(B, 'wide.bin', hash, out, '--no-cdn');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.source, 'peer');
  assert.match(r.json.peer, new RegExp(`^${A.address.replace(/\./g, '\\.')}\\b`));
  assert.ok((await readFile(out)).equals(data));
  // the same with the flags instead of the config file
  const r2 = await passim(['fetch', 'wide.bin', '--sha256', hash, '-o', join(work, 'flags.bin'), '--json', '--no-cdn', '--no-publish',
    '--domain', ZONE, '--dns-server', `${server.address}:${server.port}`, '--socket', join(work, 'none.sock')], { host: B, env: { PASSIM_CONFIG_DIR: join(work, 'empty-config') } });
  assert.equal(r2.code, 0, r2.stderr);
  // B's daemon: the loopback redirect (how fwupd asks) also finds A through the zone
  const url = `https://127.0.0.1:27500/wide.bin?sha256=${hash}`;
  const head = await B.exec('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', url]);
  assert.equal(head.stdout, `302 https://${A.address}:27500/wide.bin?sha256=${hash}`);
});

const UPSTREAM_RUNNER = '/work/upstream/run-passimd-in-netns.sh';
const upstreamSkip = skip || (!existsSync('/work/upstream/READY') || !existsSync(UPSTREAM_RUNNER) ? 'needs upstream passimd (/work/upstream/READY; built outside the repo)' : false);
test('upstream passimd on A\'s link still finds A over mDNS (wide area changes nothing on the link)', { skip: upstreamSkip }, async () => {
  await ensureAB();
  const data = randomBytes(20_000);
  const hash = sha(data);
  assert.equal((await passim(['publish', await put('up.bin', data), '--socket', dA.socket], { host: A })).code, 0);
  const st = await mkdtemp(join(work, 'upstream-'));
  const up = execa('sh', [UPSTREAM_RUNNER, U.ns, st, 'eth0'], { reject: false, buffer: false, stdin: 'ignore' });
  try {
    let err = '';
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`upstream passimd not ready:\n${err}`)), 30_000);
      // GLib writes passimd's debug and info lines to stdout
      for (const input of [up.stdout!, up.stderr!]) {
        createInterface({ input }).on('line', (l) => {
          err += l + '\n';
          if (l.includes('acquired name: org.freedesktop.Passim')) { clearTimeout(t); res(); }
        });
      }
      void up.then(() => { clearTimeout(t); rej(new Error(`upstream passimd exited:\n${err}`)); });
    });
    // upstream's loopback lookup (Avahi browse, ~1.1 s) redirects to A
    const url = `https://127.0.0.1:27500/up.bin?sha256=${hash}`;
    const head = await U.exec('curl', ['-sk', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', url]);
    assert.equal(head.stdout, `302 https://${A.address}:27500/up.bin?sha256=${hash}`);
  } finally {
    up.kill('SIGTERM');
    await up.catch(() => undefined);
  }
});

test('unpublish removes A\'s PTR (class NONE: another host\'s PTR for the same hash stays); expiry removes it too', { skip }, async () => {
  await ensureAB();
  const data = randomBytes(2000);
  const hash = sha(data);
  const f = await put('both.bin', data);
  for (const [h, d] of [[A, dA], [B, dB]] as const) assert.equal((await passim(['publish', f, '--socket', d.socket], { host: h })).code, 0);
  await settled(A, dA);
  await settled(B, dB);
  const sub = subtypeNameIn(hash, ZONE);
  assert.deepEqual(await dig(U, server, 'PTR', sub), [`${dA.name}._cache._tcp.${ZONE}.`, `${dB.name}._cache._tcp.${ZONE}.`].sort());
  assert.equal((await passim(['unpublish', hash, '--socket', dA.socket], { host: A })).code, 0);
  await settled(A, dA);
  assert.deepEqual(await dig(U, server, 'PTR', sub), [`${dB.name}._cache._tcp.${ZONE}.`]);
  // the max-age 2 item of the test before: the store's expiry (every 60 s) removes it, and its PTR goes
  await eventually('expired item leaves the zone', async () => ((await dig(U, server, 'PTR', subtypeNameIn(expiring, ZONE))).length === 0 ? true : undefined), 90_000);
  assert.ok(!(await dump(A, dA)).items.some((i) => i.hash === expiring));
});

test('after kill -9 of A, B skips its stale record (connect fails) and falls back to the CDN; A restarted re-registers what it holds', { skip }, async () => {
  await ensureAB();
  const data = randomBytes(100_000);
  const hash = sha(data);
  await writeFile(join(work, 'stale.bin'), data);
  assert.equal((await passim(['publish', join(work, 'stale.bin'), '--socket', dA.socket], { host: A })).code, 0);
  await settled(A, dA);
  const oldName = dA.name;
  await dA.kill9();
  assert.deepEqual(await dig(U, server, 'PTR', subtypeNameIn(hash, ZONE)), [`${oldName}._cache._tcp.${ZONE}.`], 'the stale record is still there');
  const r = await fetchOn(B, 'stale.bin', hash, join(work, 'stale-on-b.bin'), '--cdn', `https://${D.address}:${CDN_PORT}/files/stale.bin`, '--verbose');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.source, 'cdn');
  assert.match(r.stderr, new RegExp(`skipped peer ${A.address.replace(/\./g, '\\.')}`));

  dA = await startDaemon({ host: A, root: rootA, readyTimeout: READY_MS });
  assert.notEqual(dA.name, oldName);
  await settled(A, dA);
  assert.deepEqual(await dig(U, server, 'PTR', subtypeNameIn(hash, ZONE)), [`${dA.name}._cache._tcp.${ZONE}.`], 'old PTR replaced by the new instance');
  assert.deepEqual(await dig(U, server, 'SRV', `${oldName}._cache._tcp.${ZONE}`), [], 'the old instance is gone');
  const r2 = await fetchOn(B, 'stale.bin', hash, join(work, 'again.bin'), '--no-cdn');
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r2.json.source, 'peer');
});

test('reload (SIGHUP): without DnsKeyFile B leaves the zone and only looks up; with the key back it registers again', { skip }, async () => {
  await ensureAB();
  const before = await settled(B, dB);
  const inst = `${dB.name}._cache._tcp.${ZONE}`;
  assert.equal((await dig(U, server, 'SRV', inst)).length, 1);
  const conf = join(rootB, 'config', 'passim.conf');
  await writeFile(conf, `[daemon]\nCooldown=0\nDomain=${ZONE}\nDnsServer=${server.address}:${server.port}\n`);
  dB.proc.kill('SIGHUP');
  await eventually('B only looks up', async () => ((await dump(B, dB)).status.wideArea?.state === 'lookup-only' ? true : undefined));
  assert.deepEqual(await dig(U, server, 'SRV', inst), [], 'B removed its records');
  await writeFile(conf, confFor(goodKey.file));
  dB.proc.kill('SIGHUP');
  const again = await settled(B, dB);
  assert.equal(again.items, before.items);
  assert.equal((await dig(U, server, 'SRV', inst)).length, 1);
});

test('shutdown removes the instance and its items from the zone', { skip }, async () => {
  await ensureAB();
  const wa = await settled(B, dB);
  const inst = `${dB.name}._cache._tcp.${ZONE}`;
  assert.equal((await dig(U, server, 'SRV', inst)).length, 1);
  await dB.stop();
  assert.deepEqual(await dig(U, server, 'SRV', inst), []);
  assert.deepEqual(await dig(U, server, 'A', wa.host), []);
  assert.ok(!(await dig(U, server, 'PTR', `_cache._tcp.${ZONE}`)).includes(`${inst}.`));
});
