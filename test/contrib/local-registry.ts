/**
 * A throw-away npm registry on 127.0.0.1 that serves the runtime dependencies already installed in
 * the repo's node_modules (what `npm ci` put there), so a test can `npm i -g` the packed tarball
 * with an empty npm cache and no network: npm resolves passim's declared ranges against packuments
 * built from package-lock.json, and downloads tarballs packed here from the installed directories.
 *
 *   const reg = await startLocalRegistry(REPO);
 *   await execa('npm', ['i', '-g', '--registry', reg.url, tgz]);
 *   await reg.close();
 *
 * Dev dependencies are not served. Packages absent from node_modules (optional ones for other
 * platforms, or an optional subtree whose native build failed, such as usocket's without a
 * compiler) get a packument, so npm can see their os/cpu or fail them as optional, but no tarball.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';

interface LockEntry {
  name?: string;
  version: string;
  dev?: boolean;
  link?: boolean;
  [field: string]: unknown;
}

/** Manifest fields npm reads from a packument when it resolves and places a package. */
const MANIFEST_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies', 'peerDependenciesMeta', 'bin', 'engines', 'os', 'cpu', 'libc', 'hasInstallScript'];

export interface LocalRegistry {
  url: string;
  /** tarball requests in arrival order (package@version) */
  downloads: string[];
  close(): Promise<void>;
}

export async function startLocalRegistry(repo: string): Promise<LocalRegistry> {
  const lock = JSON.parse(await readFile(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const packuments = new Map<string, { name: string; 'dist-tags': { latest: string }; versions: Record<string, Record<string, unknown>> }>();
  const tarballs: Array<{ dir: string; id: string; data?: Buffer }> = [];
  const downloads: string[] = [];
  let url = '';

  for (const [key, entry] of Object.entries(lock.packages)) {
    if (!key.startsWith('node_modules/') || entry.dev || entry.link) continue;
    const name = entry.name ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const dir = join(repo, key);
    const present = existsSync(join(dir, 'package.json'));
    const p = packuments.get(name) ?? { name, 'dist-tags': { latest: entry.version }, versions: {} };
    packuments.set(name, p);
    // one name@version can sit at several paths (an alias such as strip-ansi-cjs, a nested copy),
    // some of them absent (an optional subtree whose build failed is removed by npm): keep a present one
    const known = p.versions[entry.version]?.dist as { integrity?: string } | undefined;
    if (known && (known.integrity || !present)) continue;
    const manifest: Record<string, unknown> = { name, version: entry.version };
    for (const f of MANIFEST_FIELDS) if (entry[f] !== undefined) manifest[f] = entry[f];
    if (present) {
      const index = tarballs.push({ dir, id: `${name}@${entry.version}` }) - 1;
      const data = await packDir(dir);
      tarballs[index]!.data = data;
      manifest.dist = { tarball: `/-/tarball/${index}.tgz`, integrity: `sha512-${createHash('sha512').update(data).digest('base64')}` };
    } else {
      manifest.dist = { tarball: `/-/absent/${encodeURIComponent(name)}-${entry.version}.tgz` };
    }
    p.versions[entry.version] = manifest;
  }

  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const tgz = /^\/-\/tarball\/(\d+)\.tgz$/.exec(path);
    if (tgz) {
      const t = tarballs[Number(tgz[1])];
      if (!t?.data) return void res.writeHead(404).end();
      downloads.push(t.id);
      return void res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': t.data.length }).end(t.data);
    }
    const p = packuments.get(path.slice(1));
    if (!p) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    // tarball URLs are absolute in a packument; the port is known only once listening
    const versions = Object.fromEntries(Object.entries(p.versions).map(([v, m]) =>
      [v, { ...m, dist: { ...(m.dist as object), tarball: url + (m.dist as { tarball: string }).tarball } }]));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...p, versions }));
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${url}/`,
    downloads,
    close: () => new Promise<void>((res) => { server.closeAllConnections(); server.close(() => res()); }),
  };
}

/** An npm tarball (gzipped ustar, entries under `package/`) of an installed package dir, without its node_modules. */
async function packDir(dir: string): Promise<Buffer> {
  const blocks: Buffer[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(d, e.name);
      if (e.isDirectory()) {
        if (d === dir && e.name === 'node_modules') continue;
        await walk(full);
      } else if (e.isFile()) {
        const st = await stat(full);
        blocks.push(...tarEntry(`package/${relative(dir, full)}`, await readFile(full), st.mode & 0o111 ? 0o755 : 0o644));
      }
    }
  };
  await walk(dir);
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

function tarEntry(path: string, data: Buffer, mode: number): Buffer[] {
  const out: Buffer[] = [];
  if (Buffer.byteLength(path) > 100) {
    // a pax extended header carries the long path: record "<len> path=<path>\n", len counting itself
    const body = ` path=${path}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    const rec = Buffer.from(`${len}${body}`);
    out.push(tarHeader('PaxHeader', rec.length, 0o644, 'x'), pad(rec));
  }
  out.push(tarHeader(path.slice(0, 100), data.length, mode, '0'), pad(data));
  return out;
}

function tarHeader(name: string, size: number, mode: number, type: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write(mode.toString(8).padStart(7, '0'), 100);
  h.write('0000000', 108);
  h.write('0000000', 116);
  h.write(size.toString(8).padStart(11, '0'), 124);
  h.write('00000000000', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\u000000', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148);
  return h;
}

function pad(b: Buffer): Buffer {
  const rem = b.length % 512;
  return rem === 0 ? b : Buffer.concat([b, Buffer.alloc(512 - rem)]);
}
