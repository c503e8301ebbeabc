/**
 * For the contrib/ wrapper tests: a fake CDN (test/helpers/https-file-server.ts on 127.0.0.1 with a
 * self-signed certificate, trusted by passim through PASSIM_CDN_CA and by curl/apt through the same
 * PEM), a PATH with `passim` on it, and a runner for the scripts. Loopback only.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { makeCert } from '../fetch/helpers.js';
import { BIN, passim, startDaemon, type TestDaemon } from '../helpers/daemon.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export interface Cdn {
  port: number;
  url(path: string): string;
  /** request paths in arrival order */
  hits: string[];
  count(path: string): number;
  /** the PEM to trust (PASSIM_CDN_CA, curl --cacert, apt CaInfo) */
  caFile: string;
  close(): Promise<void>;
}

/** Serves `routes` (URL path → file on disk) over HTTPS on 127.0.0.1:<free port>. */
export async function startCdn(dir: string, routes: Record<string, string>): Promise<Cdn> {
  const kc = await makeCert();
  const keyFile = join(dir, 'cdn-key.pem');
  await writeFile(keyFile, kc.key);
  const cfg = { port: 0, host: '127.0.0.1', cert: kc.certFile, key: keyFile, routes: Object.fromEntries(Object.entries(routes).map(([p, file]) => [p, { file }])) };
  const proc = execa(process.execPath, ['--import', 'tsx', join(REPO, 'test/helpers/https-file-server.ts'), JSON.stringify(cfg)], {
    cwd: REPO, reject: false, buffer: false, stdin: 'ignore', stderr: 'inherit',
  });
  const hits: string[] = [];
  const lines = createInterface({ input: proc.stdout! });
  const port = await new Promise<number>((res, rej) => {
    lines.on('line', (l) => {
      const m = /^ready (\d+)$/.exec(l);
      if (m) res(Number(m[1]));
      else if (l.startsWith('hit ')) hits.push(l.slice(4));
    });
    proc.then((r) => rej(new Error(`fake CDN exited (${r.exitCode})`)));
  });
  return {
    port,
    url: (p) => `https://127.0.0.1:${port}${p}`,
    hits,
    count: (p) => hits.filter((h) => h === p).length,
    caFile: kc.certFile,
    async close() { proc.kill('SIGTERM'); await proc; },
  };
}

/**
 * A temp dir holding `passim`, to put first on PATH: a shim that appends its arguments as one line
 * to `<dir>/calls.log` (read with passimCalls) and runs bin/passim.js.
 */
export async function passimBinDir(root: string): Promise<string> {
  const dir = join(root, 'bin');
  await mkdir(dir, { recursive: true });
  const log = join(dir, 'calls.log');
  await writeFile(join(dir, 'passim'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${BIN}' "$@"\n`, { mode: 0o755 });
  return dir;
}

/** The commands the shim of passimBinDir(dir) ran, one argument string each, oldest first. */
export async function passimCalls(binDir: string): Promise<string[]> {
  const text = await readFile(join(binDir, 'calls.log'), 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l !== '');
}

/** How many `passim fetch` processes the shim of passimBinDir(dir) ran since `since` calls. */
export async function fetchCalls(binDir: string, since = 0): Promise<string[]> {
  return (await passimCalls(binDir)).slice(since).filter((l) => /^fetch\b/.test(l));
}

export function scriptEnv(d: TestDaemon, cdn: Cdn, binDir: string | undefined, over: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: binDir ? `${binDir}:${process.env.PATH}` : process.env.PATH!,
    HOME: process.env.HOME ?? '/root',
    PASSIM_SOCKET: d.socket,
    PASSIM_CDN_CA: cdn.caFile,
    // peers on loopback only would still multicast: the wrappers' tests use the CDN and the daemon
    PASSIM_FETCH_ARGS: '--no-peers',
    ...(binDir ? {} : { PASSIM: '/nonexistent/passim' }),
    ...over,
  };
}

/** Runs a script for real; never throws on a non-zero exit. */
export async function run(cmd: string, args: string[], opts: { env: Record<string, string>; cwd?: string; input?: string }) {
  const r = await execa(cmd, args, { env: opts.env, extendEnv: false, cwd: opts.cwd, input: opts.input, reject: false, timeout: 120_000, encoding: 'utf8' });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function daemonHashes(d: TestDaemon): Promise<Set<string>> {
  const r = await passim(['dump', '--json'], { env: { PASSIM_SOCKET: d.socket } });
  if (r.code !== 0) throw new Error(`dump failed: ${r.stderr}`);
  return new Set((JSON.parse(r.stdout) as { items: Array<{ hash: string }> }).items.map((i) => i.hash));
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** What every wrapper test runs against: a fake CDN on loopback, a real daemon, `passim` on PATH. */
export interface Rig {
  cdn: Cdn;
  d: TestDaemon;
  bin: string;
}

export async function startRig(root: string, routes: Record<string, string>): Promise<Rig> {
  const cdn = await startCdn(root, routes);
  const d = await startDaemon();
  const bin = await passimBinDir(root);
  return { cdn, d, bin };
}

/** Stops what startRig started (any part may be missing after a failed setup) and removes root. */
export async function stopRig(rig: Partial<Rig>, root: string): Promise<void> {
  await rig.d?.stop();
  await rig.d?.cleanup();
  await rig.cdn?.close();
  await rm(root, { recursive: true, force: true });
}
