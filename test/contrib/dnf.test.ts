/**
 * contrib/dnf/dnf-passim for real against a fake rpm-md repository on loopback: repomd.xml and
 * primary.xml.gz in createrepo_c's format (hash-prefixed file names, <checksum type="sha256">,
 * <open-checksum>, xml:base-free <location href>), metadata fetched by sha256 through passim with
 * the CDN as fallback, then packages by name from the fetched primary metadata.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdir, readFile, readdir, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestDaemon } from '../helpers/daemon.js';
import { startRig, stopRig, scriptEnv, run, daemonHashes, sha256, tempDir, fetchCalls, passimCalls, REPO, type Cdn } from './helpers.js';
import { requires } from '../helpers/requires.js';

const SCRIPT = join(REPO, 'contrib/dnf/dnf-passim');
/** what the script runs besides passim */
const skip = requires('sh', 'sha256sum', 'curl', 'awk', 'sed', 'gzip');
let d: TestDaemon;
let cdn: Cdn;
let root: string;
let bin: string;
const rpms: Record<string, Buffer> = {
  'Packages/h/hello-1.0-1.noarch.rpm': randomBytes(9000),
  'Packages/h/hello-2.0-1.noarch.rpm': randomBytes(12000),
  'Packages/h/hello-2.0-1.src.rpm': randomBytes(3000),
  'Packages/l/libfoo-3.1-2.x86_64.rpm': randomBytes(20000),
};
let meta: Record<string, Buffer> = {};
let repomd = '';

function pkgXml(name: string, arch: string, ver: string, rel: string, href: string, bytes: Buffer): string {
  return `<package type="rpm">
  <name>${name}</name>
  <arch>${arch}</arch>
  <version epoch="0" ver="${ver}" rel="${rel}"/>
  <checksum type="sha256" pkgid="YES">${sha256(bytes)}</checksum>
  <summary>${name} for the dnf-passim test</summary>
  <description>test &amp; more</description>
  <packager>Passim Tests</packager>
  <url>https://example.invalid/</url>
  <time file="1700000000" build="1700000000"/>
  <size package="${bytes.length}" installed="${bytes.length * 2}" archive="${bytes.length * 2}"/>
  <location href="${href}"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:provides><rpm:entry name="${name}" flags="EQ" epoch="0" ver="${ver}" rel="${rel}"/></rpm:provides>
  </format>
</package>`;
}

function dataXml(type: string, href: string, gz: Buffer, open: Buffer): string {
  return `  <data type="${type}">
    <checksum type="sha256">${sha256(gz)}</checksum>
    <open-checksum type="sha256">${sha256(open)}</open-checksum>
    <location href="${href}"/>
    <timestamp>1700000000</timestamp>
    <size>${gz.length}</size>
    <open-size>${open.length}</open-size>
  </data>`;
}

before(async () => {
  root = await tempDir('passim-contrib-dnf-');
  const srv = join(root, 'srv');
  const primary = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="4">
${pkgXml('hello', 'noarch', '1.0', '1', 'Packages/h/hello-1.0-1.noarch.rpm', rpms['Packages/h/hello-1.0-1.noarch.rpm']!)}
${pkgXml('hello', 'noarch', '2.0', '1', 'Packages/h/hello-2.0-1.noarch.rpm', rpms['Packages/h/hello-2.0-1.noarch.rpm']!)}
${pkgXml('hello', 'src', '2.0', '1', 'Packages/h/hello-2.0-1.src.rpm', rpms['Packages/h/hello-2.0-1.src.rpm']!)}
${pkgXml('libfoo', 'x86_64', '3.1', '2', 'Packages/l/libfoo-3.1-2.x86_64.rpm', rpms['Packages/l/libfoo-3.1-2.x86_64.rpm']!)}
</metadata>
`);
  const filelists = Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="0">\n</filelists>\n');
  const pgz = gzipSync(primary);
  const fgz = gzipSync(filelists);
  const pHref = `repodata/${sha256(pgz)}-primary.xml.gz`;
  const fHref = `repodata/${sha256(fgz)}-filelists.xml.gz`;
  meta = { [pHref]: pgz, [fHref]: fgz };
  repomd = `<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1700000000</revision>
${dataXml('primary', pHref, pgz, primary)}
${dataXml('filelists', fHref, fgz, filelists)}
</repomd>
`;
  const routes: Record<string, string> = {};
  const put = async (rel: string, bytes: Buffer | string) => {
    const file = join(srv, rel);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, bytes);
    routes[`/fedora/${rel}`] = file;
  };
  await put('repodata/repomd.xml', repomd);
  for (const [rel, b] of Object.entries(meta)) await put(rel, b);
  for (const [rel, b] of Object.entries(rpms)) await put(rel, b);
  // a second repo whose repomd.xml names a primary the CDN serves with other bytes
  // (a hash nobody holds: bytes the daemon has would rightly be taken from it)
  await mkdir(join(root, 'srv-liar'));
  await writeFile(join(root, 'srv-liar/repomd.xml'), repomd.replace(`<checksum type="sha256">${sha256(pgz)}`, `<checksum type="sha256">${sha256(randomBytes(8))}`));
  routes['/liar/repodata/repomd.xml'] = join(root, 'srv-liar/repomd.xml');
  routes[`/liar/${pHref}`] = join(srv, pHref);
  routes[`/liar/${fHref}`] = join(srv, fHref);
  ({ cdn, d, bin } = await startRig(root, routes));
});

after(() => stopRig({ cdn, d }, root));

test('dnf-passim metadata: repomd.xml, then each file by its sha256 via passim, verified and published', { skip }, async () => {
  const dest = join(root, 'mirror');
  const calls0 = (await passimCalls(bin)).length;
  const r = await run(SCRIPT, ['metadata', cdn.url('/fedora/'), dest], { env: scriptEnv(d, cdn, bin) });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await fetchCalls(bin, calls0)).length, 1, 'one passim fetch for every metadata file');
  assert.equal(await readFile(join(dest, 'repodata/repomd.xml'), 'utf8'), repomd);
  const held = await daemonHashes(d);
  for (const [rel, bytes] of Object.entries(meta)) {
    assert.ok((await readFile(join(dest, rel))).equals(bytes), rel);
    assert.ok(held.has(sha256(bytes)), `${rel} published`);
    assert.equal(cdn.count(`/fedora/${rel}`), 1);
  }
  assert.equal(r.stdout.trim().split('\n').length, 2);
  assert.deepEqual((await readdir(join(dest, 'repodata'))).sort(), [...Object.keys(meta).map((k) => k.slice('repodata/'.length)), 'repomd.xml'].sort(), 'no temp files left');
});

test('dnf-passim packages: newest matching rpm by the sha256 in primary.xml.gz; unknown name → exit 3', { skip }, async () => {
  const dest = join(root, 'mirror');
  const calls0 = (await passimCalls(bin)).length;
  const r = await run(SCRIPT, ['packages', cdn.url('/fedora'), dest, 'hello', 'libfoo.x86_64'], { env: scriptEnv(d, cdn, bin) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await passimCalls(bin)).slice(calls0).map((c) => c.split(' ').slice(0, 3).join(' ')), ['fetch --from -'], 'one batch fetch, nothing else');
  assert.deepEqual(r.stdout.trim().split('\n'), [join(dest, 'Packages/h/hello-2.0-1.noarch.rpm'), join(dest, 'Packages/l/libfoo-3.1-2.x86_64.rpm')]);
  for (const rel of ['Packages/h/hello-2.0-1.noarch.rpm', 'Packages/l/libfoo-3.1-2.x86_64.rpm']) {
    assert.ok((await readFile(join(dest, rel))).equals(rpms[rel]!), rel);
    assert.ok((await daemonHashes(d)).has(sha256(rpms[rel]!)), `${rel} published`);
  }
  await assert.rejects(access(join(dest, 'Packages/h/hello-1.0-1.noarch.rpm')), 'the older version is not fetched');
  await assert.rejects(access(join(dest, 'Packages/h/hello-2.0-1.src.rpm')), 'nor the source rpm');

  const missing = await run(SCRIPT, ['packages', cdn.url('/fedora'), dest, 'nosuchpkg'], { env: scriptEnv(d, cdn, bin) });
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /no package 'nosuchpkg' in the metadata/);
});

test('dnf-passim without passim: curl + sha256sum; a lying CDN → exit 4 and no repomd.xml written', { skip }, async () => {
  const dest = join(root, 'mirror-curl');
  const r = await run(SCRIPT, ['metadata', cdn.url('/fedora'), dest], { env: scriptEnv(d, cdn, undefined) });
  assert.equal(r.code, 0, r.stderr);
  for (const [rel, bytes] of Object.entries(meta)) assert.ok((await readFile(join(dest, rel))).equals(bytes), rel);

  for (const withPassim of [true, false]) {
    const liar = join(root, `mirror-liar-${withPassim}`);
    const l = await run(SCRIPT, ['metadata', cdn.url('/liar'), liar], { env: scriptEnv(d, cdn, withPassim ? bin : undefined) });
    assert.equal(l.code, 4, l.stderr);
    await assert.rejects(access(join(liar, 'repodata/repomd.xml')), 'repomd.xml only once everything it names is there');
    const names = await readdir(join(liar, 'repodata'));
    assert.ok(!names.some((n) => n.includes('primary')), `no unverified primary: ${names.join(' ')}`);
  }
});
