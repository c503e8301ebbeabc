/**
 * What every measure gets: the run's options, a temp work dir (removed at the end), the big random
 * file (generated once per run), and helpers for LANs, daemons and the stand-in CDN. Everything a
 * measure starts is registered here so run.ts can tear it down even on failure or SIGINT.
 */
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createLan, type Lan, type LanHost } from '../../test/helpers/netns.js';
import { startDaemon, type TestDaemon } from '../../test/helpers/daemon.js';
import { writeRandomFile } from './files.js';
import { GiB, MiB } from './stats.js';
import { ROOT, runOk } from './proc.js';

export interface Ctx {
  quick: boolean;
  work: string;
  /** size of the "1 GiB" file (smaller with --quick) */
  bigSize: number;
  log(msg: string): void;
  /** the big random file, made on first use */
  bigFile(): Promise<{ path: string; sha256: string; size: number }>;
  /** a random file of `size` bytes (cached by size) */
  randomFile(size: number): Promise<{ path: string; sha256: string; size: number }>;
  /** a daemon root dir (config/, later state/) inside the work dir, so nothing outlives the run */
  makeRoot(): Promise<string>;
  /** a namespace LAN destroyed at the end of the measure (or of the run) */
  lan(n: number): Promise<Lan>;
  /** a real `passim serve` inside a LAN host (port 27500, mDNS on eth0) with this passim.conf [daemon] text */
  daemon(host: LanHost | undefined, o?: { conf?: string; root?: string; args?: string[]; readyTimeout?: number }): Promise<TestDaemon>;
  /** a self-signed certificate for an IP address (for the stand-in CDN; trust it with PASSIM_CDN_CA) */
  cert(address: string): Promise<{ cert: string; key: string }>;
  /** the stand-in CDN (test/helpers/https-file-server.ts) in a host, counting requests */
  cdn(host: LanHost, routes: Record<string, { file: string }>, port?: number): Promise<Cdn>;
  /** tear down what this measure started (daemons, LANs) */
  cleanup(): Promise<void>;
}

export interface Cdn {
  url(path: string): string;
  cert: string;
  /** request paths in arrival order */
  hits: string[];
  /** performance.now() of each hit (same order) */
  hitTimes: number[];
  stop(): Promise<void>;
}

export async function createCtx(quick: boolean, log: (m: string) => void): Promise<Ctx> {
  const work = await mkdtemp(join(process.env.TMPDIR ?? '/tmp', 'passim-bench-'));
  const bigSize = quick ? 64 * MiB : GiB;
  const files = new Map<number, Promise<{ path: string; sha256: string; size: number }>>();
  const lans: Lan[] = [];
  const daemons: TestDaemon[] = [];
  const stoppers: Array<() => Promise<void>> = [];
  let certN = 0;

  const randomFile = (size: number) => {
    let p = files.get(size);
    if (!p) {
      p = (async () => {
        const path = join(work, `random-${size}.bin`);
        const t = performance.now();
        const sha256 = await writeRandomFile(path, size);
        log(`  made ${path} (${size} bytes) in ${Math.round(performance.now() - t)} ms`);
        return { path, sha256, size };
      })();
      files.set(size, p);
    }
    return p;
  };

  const ctx: Ctx = {
    quick,
    work,
    bigSize,
    log,
    randomFile,
    bigFile: () => randomFile(bigSize),
    async makeRoot() {
      const root = await mkdtemp(join(work, 'root-'));
      await mkdir(join(root, 'config'), { recursive: true });
      return root;
    },
    async lan(n) {
      const lan = await createLan(n);
      lans.push(lan);
      return lan;
    },
    async daemon(host, o = {}) {
      const root = o.root ?? (await ctx.makeRoot());
      if (o.conf !== undefined) await writeFile(join(root, 'config', 'passim.conf'), `[daemon]\n${o.conf}\n`);
      const d = await startDaemon({ host, root, args: o.args, readyTimeout: o.readyTimeout ?? 60_000 });
      daemons.push(d);
      return d;
    },
    async cert(address) {
      const dir = join(work, `cert-${certN++}`);
      await mkdir(dir);
      const cert = join(dir, 'cert.pem');
      const key = join(dir, 'key.pem');
      await runOk('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
        '-subj', `/CN=${address}`, '-addext', `subjectAltName=IP:${address}`, '-keyout', key, '-out', cert]);
      return { cert, key };
    },
    async cdn(host, routes, port = 8443) {
      const { cert, key } = await ctx.cert(host.address);
      const child = host.spawn(process.execPath, ['--import', 'tsx', 'test/helpers/https-file-server.ts', JSON.stringify({ port, cert, key, routes })],
        { cwd: ROOT, buffer: false, stdin: 'ignore' });
      const hits: string[] = [];
      const hitTimes: number[] = [];
      await new Promise<void>((res, rej) => {
        createInterface({ input: child.stdout! }).on('line', (l) => {
          if (l.startsWith('ready')) res();
          else if (l.startsWith('hit ')) { hits.push(l.slice(4)); hitTimes.push(performance.now()); }
        });
        void child.then(() => rej(new Error('CDN server exited')));
      });
      const stop = async () => { child.kill('SIGTERM'); await child.catch(() => undefined); };
      stoppers.push(stop);
      return { url: (p) => `https://${host.address}:${port}${p}`, cert, hits, hitTimes, stop };
    },
    async cleanup() {
      await Promise.all(stoppers.splice(0).map((s) => s().catch(() => undefined)));
      await Promise.all(daemons.splice(0).map(async (d) => { await d.stop().catch(() => undefined); await d.cleanup().catch(() => undefined); }));
      for (const l of lans.splice(0)) await l.destroy();
    },
  };
  return ctx;
}
