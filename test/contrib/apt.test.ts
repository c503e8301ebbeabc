/**
 * contrib/apt/apt-passim for real: fed `apt-get --print-uris` lines in apt's own format, and in a
 * full apt flow against a throwaway flat repository served by the fake CDN on loopback (a .deb
 * built with dpkg-deb, apt-get update over HTTPS with the test CA, then `apt-passim download` and
 * `apt-passim install --download-only`), with apt's state and cache in a temp dir via APT_CONFIG.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { TestDaemon } from '../helpers/daemon.js';
import { startRig, stopRig, scriptEnv, run, daemonHashes, sha256, tempDir, passimCalls, fetchCalls, REPO, type Cdn } from './helpers.js';
import { have, requires, requiresRoot } from '../helpers/requires.js';

const SCRIPT = join(REPO, 'contrib/apt/apt-passim');
/** what the script runs besides passim */
const skip = requires('sh', 'sha256sum', 'curl', 'awk', 'sed', 'apt-cache');
let d: TestDaemon;
let cdn: Cdn;
let root: string;
let bin: string;
const debA = randomBytes(30_000);
const debB = randomBytes(5_000);
let deb: Buffer; // the real .deb of the throwaway repo
const DEB_PATH = 'pool/main/p/passim-demo/passim-demo_1.0-1_all.deb';
/** a flat repository (`deb URL/repo/ ./`): apt asks for `/repo/./Packages`; .deb URLs are `/repo/<Filename>` */
const FLAT = '/repo/./';
const DEB_URL_PATH = `/repo/${DEB_PATH}`;

/** A flat apt repository: Packages, Release (unsigned; the source says trusted=yes) and one .deb. */
async function buildRepo(dir: string): Promise<Record<string, string>> {
  const pkg = join(dir, 'pkg');
  await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
  await mkdir(join(pkg, 'usr/share/doc/passim-demo'), { recursive: true });
  await writeFile(join(pkg, 'DEBIAN/control'), [
    'Package: passim-demo', 'Version: 1.0-1', 'Architecture: all', 'Maintainer: Passim Tests <tests@example.invalid>',
    'Description: a package for the apt-passim test', ' It only holds a README.', '',
  ].join('\n'));
  await writeFile(join(pkg, 'usr/share/doc/passim-demo/README'), randomBytes(20_000).toString('base64'));
  const debFile = join(dir, 'passim-demo_1.0-1_all.deb');
  await execa('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', pkg, debFile], { stdio: 'ignore' });
  deb = await readFile(debFile);
  const packages = [
    'Package: passim-demo', 'Version: 1.0-1', 'Architecture: all', 'Maintainer: Passim Tests <tests@example.invalid>',
    `Filename: ${DEB_PATH}`, `Size: ${deb.length}`, `SHA256: ${sha256(deb)}`,
    'Description: a package for the apt-passim test', '',
  ].join('\n');
  await writeFile(join(dir, 'Packages'), packages);
  const release = [
    'Origin: passim-test', 'Label: passim-test', 'Suite: stable', `Date: ${new Date().toUTCString()}`,
    'SHA256:', ` ${sha256(packages)} ${Buffer.byteLength(packages)} Packages`, '',
  ].join('\n');
  await writeFile(join(dir, 'Release'), release);
  return { [`${FLAT}Packages`]: join(dir, 'Packages'), [`${FLAT}Release`]: join(dir, 'Release'), [DEB_URL_PATH]: debFile };
}

before(async () => {
  root = await tempDir('passim-contrib-apt-');
  await writeFile(join(root, 'a.deb'), debA);
  await writeFile(join(root, 'b.deb'), debB);
  const repoRoutes = have('dpkg-deb') ? await buildRepo(join(root, 'repo')) : {};
  ({ cdn, d, bin } = await startRig(root, {
    '/debian/pool/main/h/hello/hello_2.10-3_amd64.deb': join(root, 'a.deb'),
    '/debian/pool/main/libf/libfoo/libfoo1_1%3a2.0-1_amd64.deb': join(root, 'b.deb'),
    ...repoRoutes,
  }));
});

after(() => stopRig({ cdn, d }, root));

test('apt-passim uris: print-uris lines fetched by SHA256, verified, published; index and MD5-only lines left to apt', { skip }, async () => {
  const out = join(root, 'uris');
  await mkdir(out);
  const lines = [
    `'${cdn.url('/debian/dists/bookworm/InRelease')}' deb.debian.org_debian_dists_bookworm_InRelease 0 `,
    `'${cdn.url('/debian/pool/main/h/hello/hello_2.10-3_amd64.deb')}' hello_2.10-3_amd64.deb ${debA.length} SHA256:${sha256(debA)}`,
    `'${cdn.url('/debian/pool/main/libf/libfoo/libfoo1_1%3a2.0-1_amd64.deb')}' libfoo1_1%3a2.0-1_amd64.deb ${debB.length} SHA256:${sha256(debB).toUpperCase()}`,
    `'${cdn.url('/debian/pool/main/n/nope/nope_1.0_amd64.deb')}' nope_1.0_amd64.deb 10 MD5Sum:d41d8cd98f00b204e9800998ecf8427e`,
  ].join('\n');
  await writeFile(join(root, 'uris.txt'), `${lines}\n`);
  const calls0 = (await passimCalls(bin)).length;
  const r = await run(SCRIPT, ['-d', out, 'uris', join(root, 'uris.txt')], { env: scriptEnv(d, cdn, bin) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), [join(out, 'hello_2.10-3_amd64.deb'), join(out, 'libfoo1_1%3a2.0-1_amd64.deb')]);
  assert.ok((await readFile(join(out, 'hello_2.10-3_amd64.deb'))).equals(debA));
  assert.ok((await readFile(join(out, 'libfoo1_1%3a2.0-1_amd64.deb'))).equals(debB));
  assert.match(r.stderr, /no SHA256 known for nope_1\.0_amd64\.deb; leaving it to apt/);
  assert.equal(cdn.count('/debian/dists/bookworm/InRelease'), 0, 'index files are apt\'s job');
  const held = await daemonHashes(d);
  assert.ok(held.has(sha256(debA)) && held.has(sha256(debB)), 'both published to the daemon');
  const calls = (await passimCalls(bin)).slice(calls0);
  assert.deepEqual(calls.map((c) => c.split(' ').slice(0, 3).join(' ')), ['fetch --from -'], `one batch fetch for both files and nothing else: ${calls.join(' | ')}`);

  // stdin works the same; files already there with the right hash are not fetched again
  const again = await run(SCRIPT, ['-d', out, 'uris'], { env: scriptEnv(d, cdn, bin), input: lines });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /hello_2\.10-3_amd64\.deb already there/);
  assert.equal(cdn.count('/debian/pool/main/h/hello/hello_2.10-3_amd64.deb'), 1);
});

test('apt-passim uris: a mirror serving other bytes → exit 4, nothing under the name (with and without passim)', { skip }, async () => {
  for (const withPassim of [true, false]) {
    const out = join(root, `liar-${withPassim}`);
    await mkdir(out);
    // a hash nobody holds (the daemon has debA and debB by now: those would rightly be served locally)
    const line = `'${cdn.url('/debian/pool/main/h/hello/hello_2.10-3_amd64.deb')}' hello_2.10-3_amd64.deb ${debA.length} SHA256:${sha256(randomBytes(64))}\n`;
    const r = await run(SCRIPT, ['-d', out, 'uris'], { env: scriptEnv(d, cdn, withPassim ? bin : undefined), input: line });
    assert.equal(r.code, 4, r.stderr);
    assert.deepEqual(await readdir(out), []);
  }
});

// apt-get update with a private state dir runs as root here (APT::Sandbox::User root)
test('real apt flow: apt-get update from a local HTTPS repo, apt-passim download, apt-passim install --download-only',
  { skip: skip || requires('apt-get', 'dpkg-deb') || requiresRoot('apt-get update with a private state dir') }, async () => {
  const apt = join(root, 'apt');
  for (const sub of ['etc/apt.conf.d', 'etc/preferences.d', 'etc/sources.list.d', 'etc/trusted.gpg.d', 'state/lists/partial', 'cache/archives/partial', 'log']) {
    await mkdir(join(apt, sub), { recursive: true });
  }
  await writeFile(join(apt, 'status'), '');
  await writeFile(join(apt, 'etc/sources.list'), `deb [trusted=yes] ${cdn.url('/repo/')} ./\n`);
  const conf = join(apt, 'apt.conf');
  await writeFile(conf, [
    `Dir::Etc::main "${join(apt, 'etc/apt.conf')}";`,
    `Dir::Etc::parts "${join(apt, 'etc/apt.conf.d')}";`,
    `Dir::Etc::sourcelist "${join(apt, 'etc/sources.list')}";`,
    `Dir::Etc::sourceparts "${join(apt, 'etc/sources.list.d')}";`,
    `Dir::Etc::preferencesparts "${join(apt, 'etc/preferences.d')}";`,
    `Dir::Etc::trustedparts "${join(apt, 'etc/trusted.gpg.d')}";`,
    `Dir::State "${join(apt, 'state')}";`,
    `Dir::State::status "${join(apt, 'status')}";`,
    `Dir::Cache "${join(apt, 'cache')}";`,
    `Dir::Log "${join(apt, 'log')}";`,
    `Acquire::https::CaInfo "${cdn.caFile}";`,
    'Acquire::Languages "none";',
    'Acquire::Retries "0";',
    'APT::Sandbox::User "root";',
    '',
  ].join('\n'));
  const env = scriptEnv(d, cdn, bin, { APT_CONFIG: conf, DEBIAN_FRONTEND: 'noninteractive' });

  const update = await run('apt-get', ['update'], { env });
  assert.equal(update.code, 0, `apt-get update: ${update.stdout}\n${update.stderr}`);
  assert.equal(cdn.count(`${FLAT}Packages`), 1, 'apt fetched the index from the local repo');

  const out = join(root, 'apt-download');
  await mkdir(out);
  const calls0 = (await passimCalls(bin)).length;
  const dl = await run(SCRIPT, ['-d', out, 'download', 'passim-demo'], { env });
  assert.equal(dl.code, 0, dl.stderr);
  assert.ok((await readFile(join(out, 'passim-demo_1.0-1_all.deb'))).equals(deb), 'the .deb arrived verified');
  assert.deepEqual(await readdir(out), ['passim-demo_1.0-1_all.deb'], 'no staging dir or temp file left');
  assert.equal(cdn.count(DEB_URL_PATH), 1);
  assert.ok((await daemonHashes(d)).has(sha256(deb)), 'published to the daemon');
  // a real .deb: dpkg can read it
  const info = await execa('dpkg-deb', ['--field', join(out, 'passim-demo_1.0-1_all.deb'), 'Package'], { reject: false });
  assert.equal(String(info.stdout).trim(), 'passim-demo');

  // install: prefetched into apt's archive cache (from the local daemon now), apt downloads nothing
  const inst = await run(SCRIPT, ['install', '--download-only', '-y', 'passim-demo'], { env });
  assert.equal(inst.code, 0, `${inst.stdout}\n${inst.stderr}`);
  assert.ok((await readFile(join(apt, 'cache/archives/passim-demo_1.0-1_all.deb'))).equals(deb));
  assert.equal(cdn.count(DEB_URL_PATH), 1, 'neither passim nor apt went to the mirror again');
  assert.equal((await fetchCalls(bin, calls0)).length, 2, 'one passim fetch for download, one for install');
  assert.match(inst.stdout, /Download complete and in download only mode/);
});
