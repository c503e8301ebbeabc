/**
 * contrib/dnf/dnf-passim with the real rpm tool chain and the real dnf, on a LAN of network
 * namespaces (test/helpers/netns.ts):
 *
 *   M  a plain-HTTP mirror (test/helpers/mirror-server.ts) over an rpm-md repository the test
 *      builds with `rpmbuild -bb` (three small noarch packages, one needing another) and
 *      `createrepo_c`; it logs every request path.
 *   A  `passim serve`; runs `dnf-passim metadata` and `dnf-passim packages`: everything from M,
 *      published to A's daemon by the batch fetch.
 *   B  `passim serve`; runs the same two commands: repomd.xml from M (it is the root of trust, no
 *      hash is known for it in advance), every file repomd.xml names and every rpm from A, with
 *      0 requests to M for them. Then the real dnf on what B has: `makecache` and
 *      `install --downloadonly` through `--repofrompath=lan,file://DEST`; and, as a control that
 *      dnf does check, the same with one rpm altered, which dnf refuses.
 *   With `metadata --metalink` (a metalink in mirrormanager's format on M gives repomd.xml's
 *   sha256), repomd.xml too comes by hash: A from M, B from A; B asks M only for the metalink.
 *
 * Each wrapper run is one `passim fetch` process (counted through a PATH shim). Root only (skips
 * without netns; throws in CI); skips outside CI when dnf, rpmbuild or createrepo_c is missing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, readdir, rm, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createLan, netnsSkip, type Lan, type LanHost } from '../helpers/netns.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startMirror, type Mirror } from '../helpers/mirror-server.js';
import { passimBinDir, fetchCalls, sha256, tempDir, daemonHashes, REPO } from './helpers.js';
import { requires } from '../helpers/requires.js';

const SCRIPT = join(REPO, 'contrib/dnf/dnf-passim');
const skip = netnsSkip() || requires('dnf', 'rpmbuild', 'createrepo_c');

let lan: Lan;
let A: LanHost, B: LanHost, M: LanHost;
let dA: TestDaemon, dB: TestDaemon;
let mirror: Mirror;
let work: string;
let repo: string;
let binA: string, binB: string;
/** repo-relative path → bytes, of every file the mirror serves */
const served = new Map<string, Buffer>();

/** the path of a mirror hit ("<status> <path>") */
const pathOf = (hit: string) => hit.slice(hit.indexOf(' ') + 1);

/** A noarch spec: one data file of `kb` KiB of base64 text under /usr/share/NAME. */
function spec(name: string, version: string, kb: number, requires: string[] = []): string {
  return [
    `Name: ${name}`, `Version: ${version}`, 'Release: 1', `Summary: ${name} for the dnf-passim test`, 'License: MIT',
    'BuildArch: noarch', ...requires.map((r) => `Requires: ${r}`), '%description', `${name} for the dnf-passim test.`,
    '%install', `mkdir -p %{buildroot}/usr/share/${name}`,
    `head -c ${kb * 1024} /dev/urandom | base64 > %{buildroot}/usr/share/${name}/data`,
    '%files', `/usr/share/${name}/data`, '',
  ].join('\n');
}

async function buildRepo(dir: string): Promise<void> {
  const top = join(work, 'rpmbuild');
  const specs: string[] = [];
  for (const [name, ver, kb, req] of [
    ['passim-hello', '2.0', 60, ['passim-lib']],
    ['passim-lib', '1.0', 120, []],
    ['passim-unused', '0.5', 10, []],
  ] as const) {
    const f = join(work, `${name}.spec`);
    await writeFile(f, spec(name, ver, kb, [...req]));
    specs.push(f);
  }
  const b = await execa('rpmbuild', ['--define', `_topdir ${top}`, '--quiet', '-bb', ...specs], { reject: false });
  assert.equal(b.exitCode, 0, `rpmbuild: ${b.stderr}`);
  await mkdir(join(dir, 'Packages'), { recursive: true });
  await cp(join(top, 'RPMS/noarch'), join(dir, 'Packages'), { recursive: true });
  const c = await execa('createrepo_c', ['--quiet', dir], { reject: false });
  assert.equal(c.exitCode, 0, `createrepo_c: ${c.stderr}`);
  await writeFile(join(dir, '..', 'metalink.xml'), metalink(await readFile(join(dir, 'repodata/repomd.xml'))));
  for (const sub of ['repodata', 'Packages']) {
    for (const f of await readdir(join(dir, sub))) served.set(`${sub}/${f}`, await readFile(join(dir, sub, f)));
  }
}

/** A metalink as mirrormanager writes one: repomd.xml's hashes, then an older version's (alternates). */
function metalink(repomd: Buffer): string {
  const hashes = (b: Buffer) => ['md5', 'sha1', 'sha256', 'sha512']
    .map((h) => `        <hash type="${h}">${createHash(h).update(b).digest('hex')}</hash>`).join('\n');
  const older = Buffer.concat([repomd, Buffer.from('<!-- an older revision -->\n')]);
  return `<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic" generator="mirrormanager" xmlns:mm0="http://fedorahosted.org/mirrormanager">
  <files>
    <file name="repomd.xml">
      <mm0:timestamp>1700000100</mm0:timestamp>
      <size>${repomd.length}</size>
      <verification>
${hashes(repomd)}
      </verification>
      <mm0:alternates>
        <mm0:alternate>
          <mm0:timestamp>1700000000</mm0:timestamp>
          <size>${older.length}</size>
          <verification>
${hashes(older)}
          </verification>
        </mm0:alternate>
      </mm0:alternates>
      <resources maxconnections="1">
        <url protocol="http" type="http" location="XX" preference="100">http://mirror.invalid/repo/repodata/repomd.xml</url>
      </resources>
    </file>
  </files>
</metalink>
`;
}

/** "TYPE HREF" of every <data> in repomd.xml (createrepo_c's layout: one element per line). */
function repomdFiles(xml: string): Array<{ type: string; href: string }> {
  return [...xml.matchAll(/<data type="([^"]+)">[\s\S]*?<location href="([^"]+)"/g)].map((m) => ({ type: m[1]!, href: m[2]! }));
}

async function wrapper(h: LanHost, d: TestDaemon, bin: string, args: string[]) {
  const t0 = Date.now();
  const r = await h.exec(SCRIPT, args, {
    env: { PATH: `${bin}:${process.env.PATH}`, HOME: process.env.HOME ?? '/root', PASSIM_SOCKET: d.socket },
    extendEnv: false,
    encoding: 'utf8',
  });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

function dnfArgs(dest: string, name: string): string[] {
  return ['--installroot', join(work, `root-${name}`), '--setopt=reposdir=/dev/null', `--setopt=cachedir=${join(work, `dnf-cache-${name}`)}`,
    '--setopt=install_weak_deps=0', '--releasever=1', `--repofrompath=lan,file://${dest}`, '--repo=lan', '--nogpgcheck', '-y'];
}

before(async () => {
  if (skip) return;
  work = await tempDir('passim-dnf-real-');
  repo = join(work, 'mirror/repo');
  await buildRepo(repo);
  lan = await createLan(3);
  [A, B, M] = lan.hosts as [LanHost, LanHost, LanHost];
  mirror = await startMirror(M, { root: join(work, 'mirror'), port: 8080 });
  // a loaded machine (shared CI runners) can take long to start two daemons and a mirror at once
  [dA, dB] = await Promise.all([startDaemon({ host: A, readyTimeout: 60_000 }), startDaemon({ host: B, readyTimeout: 60_000 })]);
  binA = await passimBinDir(join(work, 'a'));
  binB = await passimBinDir(join(work, 'b'));
});

after(async () => {
  if (skip) return;
  await mirror?.stop();
  for (const d of [dA, dB]) {
    await d?.stop();
    await d?.cleanup();
  }
  await lan?.destroy();
  await rm(work, { recursive: true, force: true });
});

test('dnf-passim on two hosts: B gets the repodata and rpms from A (0 mirror requests), one passim fetch per run, and the real dnf installs from it', { skip }, async (t) => {
  const base = mirror.url('/repo');
  const repomd = served.get('repodata/repomd.xml')!.toString('utf8');
  const data = repomdFiles(repomd);
  const wanted = data.filter((f) => !f.type.endsWith('_db'));
  assert.ok(wanted.some((f) => f.type === 'primary') && wanted.some((f) => f.type === 'filelists'), repomd);
  const rpms = [...served.keys()].filter((k) => k.startsWith('Packages/'));
  const needed = rpms.filter((k) => !k.includes('passim-unused'));
  assert.equal(needed.length, 2, rpms.join(' '));

  // A: everything from the mirror, one batch fetch per run, published to A's daemon
  const destA = join(work, 'a/repo');
  const mA = await wrapper(A, dA, binA, ['metadata', base, destA]);
  assert.equal(mA.code, 0, mA.stderr);
  const pA = await wrapper(A, dA, binA, ['packages', base, destA, 'passim-hello', 'passim-lib']);
  assert.equal(pA.code, 0, pA.stderr);
  assert.deepEqual(pA.stdout.trim().split('\n').sort(), needed.map((k) => join(destA, k)).sort());
  assert.equal((await fetchCalls(binA)).length, 2, `A: ${(await fetchCalls(binA)).join(' | ')}`);
  for (const f of wanted) assert.equal(mirror.count(`/repo/${f.href}`), 1, `A got ${f.href} from the mirror`);
  for (const k of needed) assert.equal(mirror.count(`/repo/${k}`), 1, `A got ${k} from the mirror`);
  const heldA = await daemonHashes(dA);
  for (const k of [...wanted.map((f) => f.href), ...needed]) assert.ok(heldA.has(sha256(served.get(k)!)), `${k} published on A`);
  const afterA = mirror.hits.length;
  t.diagnostic(`A: metadata ${mA.ms} ms, packages ${pA.ms} ms`);

  // B: the same two runs; only repomd.xml (and the .asc probe) go to the mirror
  const destB = join(work, 'b/repo');
  const mB = await wrapper(B, dB, binB, ['metadata', base, destB]);
  assert.equal(mB.code, 0, mB.stderr);
  // what the install needs, as a user would ask dnf for it over the metadata just fetched
  const deps = await B.exec('dnf', [...dnfArgs(destB, 'q'), '-q', 'repoquery', '--requires', '--resolve', '--recursive', '--qf', '%{name}', 'passim-hello'], { encoding: 'utf8' });
  assert.equal(deps.exitCode, 0, `dnf repoquery: ${deps.stderr}`);
  assert.deepEqual(deps.stdout.trim().split('\n'), ['passim-lib']);
  const pB = await wrapper(B, dB, binB, ['packages', base, destB, 'passim-hello', ...deps.stdout.trim().split('\n')]);
  assert.equal(pB.code, 0, pB.stderr);
  t.diagnostic(`B: metadata ${mB.ms} ms, packages ${pB.ms} ms`);
  const fetchesB = await fetchCalls(binB);
  assert.equal(fetchesB.length, 2, `B: one passim fetch per run: ${fetchesB.join(' | ')}`);
  assert.ok(fetchesB.every((c) => c.startsWith('fetch --from - ')), fetchesB.join(' | '));
  const hitsB = mirror.hits.slice(afterA).map(pathOf);
  assert.deepEqual([...new Set(hitsB)].sort(), ['/repo/repodata/repomd.xml', '/repo/repodata/repomd.xml.asc'],
    `B asked the mirror only for repomd.xml: ${hitsB.join(' ')}\n${mB.stderr}\n${pB.stderr}`);
  for (const k of [...wanted.map((f) => f.href), ...needed, 'repodata/repomd.xml']) {
    assert.ok((await readFile(join(destB, k))).equals(served.get(k)!), `${k} on B is the mirror's`);
  }
  const heldB = await daemonHashes(dB);
  for (const k of needed) assert.ok(heldB.has(sha256(served.get(k)!)), `${k} published on B too`);
  assert.deepEqual((await readdir(destB)).sort(), ['Packages', 'repodata'], 'no staging dir or temp file left');

  // the real dnf on what B produced
  const mc = await B.exec('dnf', [...dnfArgs(destB, 'b'), 'makecache'], { encoding: 'utf8' });
  assert.equal(mc.exitCode, 0, `dnf makecache: ${mc.stdout}\n${mc.stderr}`);
  const inst = await B.exec('dnf', [...dnfArgs(destB, 'b'), 'install', '--downloadonly', 'passim-hello'], { encoding: 'utf8' });
  assert.equal(inst.exitCode, 0, `dnf install --downloadonly: ${inst.stdout}\n${inst.stderr}`);
  assert.match(inst.stdout, /passim-hello\s+noarch\s+2\.0-1\s+lan/);
  assert.match(inst.stdout, /passim-lib\s+noarch\s+1\.0-1\s+lan/, 'the dependency resolved from the same metadata');
  assert.match(inst.stdout, /Complete!/);

  // control: dnf does check what it is given — one altered byte in an rpm and it refuses
  const bad = join(work, 'b/repo-altered');
  await cp(destB, bad, { recursive: true });
  const lib = needed.find((k) => k.includes('passim-lib'))!;
  const fh = await open(join(bad, lib), 'r+');
  const at = served.get(lib)!.length - 100;
  await fh.write(Buffer.from([served.get(lib)![at]! ^ 0xff]), 0, 1, at);
  await fh.close();
  const refused = await B.exec('dnf', [...dnfArgs(bad, 'bad'), 'install', '--downloadonly', 'passim-hello'], { encoding: 'utf8' });
  assert.notEqual(refused.exitCode, 0, refused.stdout);
  assert.match(`${refused.stdout}\n${refused.stderr}`, /incorrect checksum/);
});

test('dnf-passim metadata --metalink: repomd.xml by the metalink\'s sha256 too; B asks the mirror only for the metalink', { skip }, async () => {
  const base = mirror.url('/repo');
  const ml = mirror.url('/metalink.xml');
  const destA = join(work, 'a/repo-ml');
  const destB = join(work, 'b/repo-ml');
  const mA = await wrapper(A, dA, binA, ['metadata', '--metalink', ml, base, destA]);
  assert.equal(mA.code, 0, mA.stderr);
  assert.ok((await daemonHashes(dA)).has(sha256(served.get('repodata/repomd.xml')!)), 'repomd.xml published on A (it came by hash)');
  const before = mirror.hits.length;
  const callsB = (await fetchCalls(binB)).length;
  const mB = await wrapper(B, dB, binB, ['metadata', '--metalink', ml, base, destB]);
  assert.equal(mB.code, 0, mB.stderr);
  const hits = mirror.hits.slice(before).map(pathOf);
  assert.deepEqual([...new Set(hits)].sort(), ['/metalink.xml', '/repo/repodata/repomd.xml.asc'], `B: ${hits.join(' ')}\n${mB.stderr}`);
  assert.equal((await fetchCalls(binB)).length - callsB, 2, 'two batches: repomd.xml, then what it lists');
  assert.ok((await readFile(join(destB, 'repodata/repomd.xml'))).equals(served.get('repodata/repomd.xml')!));
  const mc = await B.exec('dnf', [...dnfArgs(destB, 'ml'), 'makecache'], { encoding: 'utf8' });
  assert.equal(mc.exitCode, 0, `dnf makecache: ${mc.stdout}\n${mc.stderr}`);

  // a metalink naming a repomd.xml nobody has: the mirror's does not match → exit 4, DEST untouched
  const liar = join(work, 'mirror/liar.xml');
  await writeFile(liar, metalink(Buffer.from('not this repository\n')));
  const destC = join(work, 'b/repo-liar');
  const bad = await wrapper(B, dB, binB, ['metadata', '--metalink', mirror.url('/liar.xml'), base, destC]);
  assert.equal(bad.code, 4, bad.stderr);
  assert.deepEqual(await readdir(join(destC, 'repodata')), [], 'nothing written');
});
