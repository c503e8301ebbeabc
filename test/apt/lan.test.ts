/**
 * The real apt-get through passim's method on a namespace LAN. M runs the mirror (a repository
 * built with dpkg-deb + dpkg-scanpackages, by-hash indexes, no InRelease); A, B and C run daemons.
 * Each apt host has its own APT_CONFIG sandbox whose http method is contrib/apt/methods/passim.
 *
 * A: apt-get update + download from the mirror (InRelease 404 → Release), published to A's daemon.
 * B: update, download and install --download-only with 0 mirror requests for .debs and indexes.
 * C: a daemon serving wrong bytes; D (no daemon at all) still gets only right files, the lied-about
 *    one from the mirror.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLan, netnsSkip, type Lan, type LanHost } from '../helpers/netns.js';
import { makeRoot, passim, startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startMirror, type Mirror } from '../helpers/mirror-server.js';
import { aptSandbox, buildRepo, debsIn, listTree, type AptSandbox, type Repo } from './repo.js';
import { canRun } from './tools.js';

const skip = netnsSkip() || (await canRun());
let work: string;
let lan: Lan;
let M: LanHost, A: LanHost, B: LanHost, C: LanHost, D: LanHost;
let mirror: Mirror;
let repo: Repo;
const daemons = new Map<LanHost, TestDaemon>();
/** package 6 is only ever on the liar C (and the mirror) */
const SIZES = [4_000, 20_000, 60_000, 150_000, 400_000, 1_000_000, 30_000];
const SHARED = [0, 1, 2, 3, 4, 5];
const LIED = 6;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'passim-apt-lan-'));
  repo = await buildRepo(work, SIZES);
  lan = await createLan(5);
  [M, A, B, C, D] = lan.hosts as [LanHost, LanHost, LanHost, LanHost, LanHost];
  mirror = await startMirror(M, { root: repo.root, port: 8080 });
  const liarRoot = await makeRoot();
  await writeFile(join(liarRoot, 'config', 'passim.conf'), '[daemon]\nCooldown=0\n');
  const started = await Promise.all([startDaemon({ host: A, readyTimeout: 60_000 }), startDaemon({ host: B, readyTimeout: 60_000 }), startDaemon({ host: C, root: liarRoot, readyTimeout: 60_000 })]);
  [A, B, C].forEach((h, i) => daemons.set(h, started[i]!));
});

after(async () => {
  if (skip) return;
  await mirror?.stop();
  await Promise.all([...daemons.values()].map(async (d) => { await d.stop(); await d.cleanup(); }));
  await lan?.destroy();
  await rm(work, { recursive: true, force: true });
});

const sources = () => `deb [trusted=yes] http://${M.address}:8080/debian stable main`;

async function sandboxOn(host: LanHost): Promise<AptSandbox> {
  const dir = await mkdtemp(join(work, `${host.address}-`));
  const d = daemons.get(host);
  return aptSandbox(dir, sources(), { env: { PASSIM_SOCKET: d?.socket ?? join(dir, 'no-daemon.sock') } });
}

async function apt(host: LanHost, sb: AptSandbox, args: string[], cwd?: string) {
  const r = await host.exec('apt-get', args, { env: sb.env, extendEnv: false, cwd: cwd ?? sb.root, all: true, timeout: 180_000 });
  return { code: r.exitCode, out: `${r.stdout}\n${r.stderr}` };
}

async function held(d: TestDaemon): Promise<Set<string>> {
  const r = await passim(['dump', '--json', '--socket', d.socket]);
  assert.equal(r.code, 0, r.stderr);
  return new Set((JSON.parse(r.stdout) as { items: Array<{ hash: string }> }).items.map((i) => i.hash));
}

const debRequests = () => mirror.countMatching(/\.deb$/);
const indexRequests = () => mirror.countMatching(/\/by-hash\/|\/Packages(\.gz)?$/);

async function assertDebs(dir: string, which: number[]): Promise<void> {
  assert.deepEqual(await debsIn(dir), which.map((i) => repo.debs[i]!.file).sort());
  for (const i of which) assert.ok((await readFile(join(dir, repo.debs[i]!.file))).equals(repo.debs[i]!.bytes), `${repo.debs[i]!.file} has the right bytes`);
}

async function noTempFiles(dir: string): Promise<void> {
  assert.deepEqual((await listTree(dir)).filter((p) => p.includes('.passim-')), [], `temp files left under ${dir}`);
}

test('A: apt-get update (InRelease 404 → Release) and download through the method, from the mirror; A\'s daemon then holds them', { skip }, async () => {
  const sb = await sandboxOn(A);
  const up = await apt(A, sb, ['update']);
  assert.equal(up.code, 0, up.out);
  assert.deepEqual(mirror.hits.filter((h) => /\/(InRelease|Release)$/.test(h)), ['404 /debian/dists/stable/InRelease', '200 /debian/dists/stable/Release'],
    'InRelease missing (HttpError404): apt fell back to Release');
  assert.equal(mirror.countMatching(/\/by-hash\/SHA256\//), 1, 'the index came by hash');
  const out = join(sb.root, 'download');
  await mkdir(out);
  const dl = await apt(A, sb, ['download', ...SHARED.map((i) => repo.debs[i]!.pkg)], out);
  assert.equal(dl.code, 0, dl.out);
  await assertDebs(out, SHARED);
  for (const i of SHARED) assert.equal(mirror.count(repo.debs[i]!.urlPath), 1, `${repo.debs[i]!.file} once from the mirror`);
  const have = await held(daemons.get(A)!);
  for (const i of SHARED) assert.ok(have.has(repo.debs[i]!.sha256), `A's daemon holds ${repo.debs[i]!.file}`);
  assert.ok(repo.indexHashes.some((h) => have.has(h)), 'and the index apt fetched by hash');
  await noTempFiles(sb.root);
});

test('B: update, download and install --download-only from A over the LAN: 0 mirror requests for .debs and indexes', { skip }, async () => {
  const debs0 = debRequests();
  const idx0 = indexRequests();
  const sb = await sandboxOn(B);
  const up = await apt(B, sb, ['update']);
  assert.equal(up.code, 0, up.out);
  assert.equal(indexRequests(), idx0, 'the by-hash index came from A');
  const out = join(sb.root, 'download');
  await mkdir(out);
  const dl = await apt(B, sb, ['download', ...SHARED.map((i) => repo.debs[i]!.pkg)], out);
  assert.equal(dl.code, 0, dl.out);
  await assertDebs(out, SHARED);
  assert.equal(debRequests(), debs0, 'every .deb came from A');
  const have = await held(daemons.get(B)!);
  for (const i of SHARED) assert.ok(have.has(repo.debs[i]!.sha256), `B's daemon holds ${repo.debs[i]!.file} now`);

  const inst = await apt(B, sb, ['install', '--download-only', '-y', ...SHARED.map((i) => repo.debs[i]!.pkg)]);
  assert.equal(inst.code, 0, inst.out);
  assert.match(inst.out, /Download complete and in download only mode/);
  await assertDebs(sb.archives, SHARED);
  assert.equal(debRequests(), debs0, 'install --download-only: nothing from the mirror either');
  await noTempFiles(sb.root);
});

test('a peer serving wrong bytes costs time, never a wrong file; with no daemon on the host apt still works', { skip }, async () => {
  // C holds every package, each stored copy corrupted in place (same size): it serves wrong bytes under the right hash
  const c = daemons.get(C)!;
  for (const i of [...SHARED, LIED]) {
    const deb = repo.debs[i]!;
    const file = join(work, `liar-${deb.file}`);
    await writeFile(file, deb.bytes);
    const p = await passim(['publish', file, '--name', deb.file, '--socket', c.socket]);
    assert.equal(p.code, 0, p.stderr);
    const fh = await open(join(c.stateDir, 'data', `${deb.sha256}-${deb.file}`), 'r+');
    await fh.write(Buffer.from('LIES'), 0, 4, Math.floor(deb.bytes.length / 2));
    await fh.close();
  }
  const lied0 = mirror.count(repo.debs[LIED]!.urlPath);
  const sb = await sandboxOn(D); // D runs no daemon
  const up = await apt(D, sb, ['update']);
  assert.equal(up.code, 0, up.out);
  const out = join(sb.root, 'download');
  await mkdir(out);
  const all = [...SHARED, LIED];
  const dl = await apt(D, sb, ['download', ...all.map((i) => repo.debs[i]!.pkg)], out);
  assert.equal(dl.code, 0, dl.out);
  await assertDebs(out, all);
  assert.equal(mirror.count(repo.debs[LIED]!.urlPath), lied0 + 1, 'the package only the liar had came from the mirror');
  await noTempFiles(sb.root);
});
