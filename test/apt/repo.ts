/**
 * A Debian-style repository and an apt sandbox for tests and benches (used with the real apt-get).
 *
 * buildRepo(): `.deb`s built with `dpkg-deb --build` under `debian/pool/main/…`, `Packages` (+ .gz)
 * from `dpkg-scanpackages`, a hand-made `dists/stable/Release` (unsigned: sources say
 * trusted=yes; no InRelease, so apt asks for it, gets 404 and falls back to Release) with SHA256
 * lines and `Acquire-By-Hash: yes`, and `by-hash/SHA256/<hex>` copies of every index.
 *
 * aptSandbox(): an APT_CONFIG file and the dirs it names (NOTES.md "apt and dnf"), with the
 * passim method as apt's http/https method.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';

export const METHOD = join(import.meta.dirname, '../../contrib/apt/methods/passim');
export const CONF_50PASSIM = join(import.meta.dirname, '../../contrib/apt/50passim');

/** The settings of contrib/apt/50passim other than the method names (which a sandbox gives as paths). */
export async function settings50passim(): Promise<string[]> {
  return (await readFile(CONF_50PASSIM, 'utf8')).split('\n').map((l) => l.trim())
    .filter((l) => l && !l.startsWith('//') && !/^Dir::Bin::Methods::/.test(l));
}
export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export interface Deb {
  pkg: string;
  version: string;
  /** file name apt gives it (`<pkg>_<version>_all.deb`) */
  file: string;
  /** path under the repo root, as in Packages' Filename (`pool/main/…`) */
  poolPath: string;
  /** URL path on the mirror (`/debian/pool/main/…`) */
  urlPath: string;
  bytes: Buffer;
  sha256: string;
}

export interface Repo {
  /** directory the mirror serves as / */
  root: string;
  debs: Deb[];
  /** URL paths of the index files apt fetches by hash (`/debian/dists/stable/main/binary-amd64/by-hash/SHA256/<hex>`) */
  byHash: string[];
  /** sha256 of each index file (Packages, Packages.gz) */
  indexHashes: string[];
}

/** Builds `sizes.length` packages (`passim-t<i>`, payload of about that many random bytes). */
export async function buildRepo(dir: string, sizes: number[], prefix = 'passim-t'): Promise<Repo> {
  const root = join(dir, 'mirror');
  const archive = join(root, 'debian');
  const build = join(dir, 'build');
  await mkdir(build, { recursive: true });
  const debs: Deb[] = [];
  await Promise.all(sizes.map(async (size, i) => {
    const pkg = `${prefix}${i}`;
    const version = '1.0-1';
    const src = join(build, pkg);
    await mkdir(join(src, 'DEBIAN'), { recursive: true });
    await mkdir(join(src, 'usr/share', pkg), { recursive: true });
    await writeFile(join(src, 'DEBIAN/control'), [
      `Package: ${pkg}`, `Version: ${version}`, 'Architecture: all', 'Maintainer: Passim Tests <tests@example.invalid>',
      `Description: test package ${i} for the passim apt method`, ' Random bytes only.', '',
    ].join('\n'));
    await writeFile(join(src, 'usr/share', pkg, 'payload'), randomBytes(size));
    const poolDir = join('pool/main/p', pkg);
    await mkdir(join(archive, poolDir), { recursive: true });
    const file = `${pkg}_${version}_all.deb`;
    // -Znone: the payload is random, compressing it only costs time
    await execa('dpkg-deb', ['--root-owner-group', '-Znone', '--build', src, join(archive, poolDir, file)], { stdio: 'ignore' });
    const bytes = await readFile(join(archive, poolDir, file));
    debs[i] = { pkg, version, file, poolPath: join(poolDir, file), urlPath: `/debian/${poolDir}/${file}`, bytes, sha256: sha256(bytes) };
  }));
  const scan = await execa('dpkg-scanpackages', ['--multiversion', 'pool'], { cwd: archive, stderr: 'ignore' });
  const packages = Buffer.from(`${scan.stdout}\n`);
  const bin = join(archive, 'dists/stable/main/binary-amd64');
  await mkdir(join(bin, 'by-hash/SHA256'), { recursive: true });
  const indexes: Array<[string, Buffer]> = [['Packages', packages], ['Packages.gz', gzipSync(packages)]];
  const byHash: string[] = [];
  for (const [name, data] of indexes) {
    await writeFile(join(bin, name), data);
    await writeFile(join(bin, 'by-hash/SHA256', sha256(data)), data);
    byHash.push(`/debian/dists/stable/main/binary-amd64/by-hash/SHA256/${sha256(data)}`);
  }
  const release = [
    'Origin: passim-test', 'Label: passim-test', 'Suite: stable', 'Codename: stable',
    `Date: ${new Date().toUTCString()}`, 'Architectures: amd64 all', 'Components: main', 'Acquire-By-Hash: yes',
    'SHA256:',
    ...indexes.map(([name, data]) => ` ${sha256(data)} ${String(data.length).padStart(8)} main/binary-amd64/${name}`),
    '',
  ].join('\n');
  await writeFile(join(archive, 'dists/stable/Release'), release);
  return { root, debs, byHash, indexHashes: indexes.map(([, d]) => sha256(d)) };
}

export interface AptSandbox {
  root: string;
  conf: string;
  /** apt's archive cache (`apt-get install --download-only` puts .debs here) */
  archives: string;
  env: Record<string, string>;
}

/**
 * An apt that knows only `sourcesLine` and keeps all its state under `dir`. `method`: the path of
 * apt's http/https method (default the passim method; `null` = apt's own).
 */
export async function aptSandbox(dir: string, sourcesLine: string, o: { method?: string | null; env?: Record<string, string> } = {}): Promise<AptSandbox> {
  const root = join(dir, 'apt-root');
  for (const sub of ['etc/apt/apt.conf.d', 'etc/apt/preferences.d', 'etc/apt/sources.list.d', 'etc/apt/trusted.gpg.d',
    'var/lib/apt/lists/partial', 'var/cache/apt/archives/partial', 'var/lib/dpkg', 'var/log/apt']) {
    await mkdir(join(root, sub), { recursive: true });
  }
  await writeFile(join(root, 'var/lib/dpkg/status'), '');
  await writeFile(join(root, 'etc/apt/sources.list'), `${sourcesLine}\n`);
  const method = o.method === undefined ? METHOD : o.method;
  const conf = join(root, 'apt.conf');
  await writeFile(conf, [
    `Dir "${root}/";`,
    'Dir::State "var/lib/apt";',
    `Dir::State::status "${root}/var/lib/dpkg/status";`,
    'Dir::Cache "var/cache/apt";',
    'Dir::Etc "etc/apt";',
    'Dir::Log "var/log/apt";',
    'Acquire::Languages "none";',
    'Acquire::Retries "0";',
    'APT::Architecture "amd64";',
    'APT::Architectures { "amd64"; };',
    'APT::Sandbox::User "root";',
    'Binary::apt::APT::Keep-Downloaded-Packages "true";',
    // with passim's method: what contrib/apt/50passim sets, its method paths made absolute
    ...(method ? [...(await settings50passim()), `Dir::Bin::Methods::http "${method}";`, `Dir::Bin::Methods::https "${method}";`] : []),
    '',
  ].join('\n'));
  return {
    root,
    conf,
    archives: join(root, 'var/cache/apt/archives'),
    env: { APT_CONFIG: conf, DEBIAN_FRONTEND: 'noninteractive', PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...o.env },
  };
}

/** Files (not dirs) directly in `dir` whose names end with .deb, sorted. */
export async function debsIn(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && e.name.endsWith('.deb')).map((e) => e.name).sort();
}

/** Every path under `dir` (relative), for "no temp file left" checks. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(dir, p));
    }
  };
  await walk(dir);
  return out.sort();
}

