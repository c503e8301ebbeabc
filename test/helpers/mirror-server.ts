/**
 * A package mirror for tests and benches: serves a directory tree over HTTP (or HTTPS with a
 * cert/key), like a Debian/Fedora mirror, optionally slowed down like a WAN mirror — a fixed delay
 * before each response and ONE bandwidth shared by every response in flight (round-robin in 16 KiB
 * pieces). It answers `If-Modified-Since` with 304 and sends `Last-Modified`. It prints
 * "ready <port>" and one "hit <status> <path>" line per request, so the caller counts requests per path.
 *
 * Run it (inside a namespace host) as
 *   node --import tsx test/helpers/mirror-server.ts CONFIG_JSON
 * CONFIG_JSON = { root, port?, host?, cert?, key?, latencyMs?, bytesPerSec?, lies?: string[] }
 * (`lies`: URL paths whose body is replaced by as many other bytes — a mirror that lies).
 * From a test or bench: `startMirror(host, cfg)` (below) spawns it and collects the hits;
 * bench/lib/slow-mirror.ts gives it the WAN defaults.
 */
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { createReadStream, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, normalize, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { ResultPromise } from 'execa';
import type { LanHost } from './netns.js';

export interface MirrorConfig {
  /** directory served as / */
  root: string;
  /** default 0 (a free port) */
  port?: number;
  /** default 0.0.0.0 */
  host?: string;
  /** PEM files: HTTPS instead of HTTP */
  cert?: string;
  key?: string;
  /** added before every response's headers (default 0) */
  latencyMs?: number;
  /** one rate shared by all responses together, bytes/s (default 0 = unlimited) */
  bytesPerSec?: number;
  /** URL paths served with wrong bytes (same length) */
  lies?: string[];
}

const PIECE = 16 * 1024;

/** One bandwidth for everyone: each waiter gets its piece in arrival order as the budget refills. */
class SharedRate {
  #budget = 0;
  #last = performance.now();
  #queue: Array<{ n: number; go: () => void }> = [];
  #timer: NodeJS.Timeout | undefined;
  constructor(private readonly bytesPerSec: number) {}

  take(n: number): Promise<void> {
    return new Promise((go) => {
      this.#queue.push({ n, go });
      this.#pump();
    });
  }

  #pump(): void {
    const now = performance.now();
    // at most 50 ms of budget saved up, so an idle mirror does not burst
    this.#budget = Math.min(this.#budget + ((now - this.#last) / 1000) * this.bytesPerSec, this.bytesPerSec / 20 + PIECE);
    this.#last = now;
    while (this.#queue.length && this.#budget >= this.#queue[0]!.n) {
      const w = this.#queue.shift()!;
      this.#budget -= w.n;
      w.go();
    }
    if (this.#queue.length && !this.#timer) {
      const need = this.#queue[0]!.n - this.#budget;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#pump();
      }, Math.max(1, (need / this.bytesPerSec) * 1000));
    }
  }
}

function runServer(cfg: MirrorConfig): void {
  const root = resolve(cfg.root);
  const rate = cfg.bytesPerSec ? new SharedRate(cfg.bytesPerSec) : undefined;
  const lies = new Set(cfg.lies ?? []);
  const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

  async function send(res: ServerResponse, file: string, lie: boolean): Promise<void> {
    const stream = createReadStream(file, { highWaterMark: PIECE });
    res.on('close', () => stream.destroy());
    for await (const raw of stream) {
      let chunk = raw as Buffer;
      if (lie) chunk = Buffer.from(chunk.map((b) => b ^ 0x5a));
      if (rate) await rate.take(chunk.length);
      if (res.destroyed) return;
      if (!res.write(chunk)) {
        await new Promise<void>((r) => {
          const done = () => { res.off('drain', done); res.off('close', done); r(); };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    res.end();
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const answer = (status: number) => process.stdout.write(`hit ${status} ${path}\n`);
    if (cfg.latencyMs) await delay(cfg.latencyMs);
    if (req.method !== 'GET' && req.method !== 'HEAD') { answer(405); res.writeHead(405).end(); return; }
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      answer(400); res.writeHead(400).end(); return;
    }
    const file = join(root, normalize(decoded));
    if (!file.startsWith(root + '/')) { answer(403); res.writeHead(403).end(); return; }
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) { answer(404); res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n'); return; }
    const mtime = new Date(Math.floor(st.mtimeMs / 1000) * 1000);
    const ims = req.headers['if-modified-since'];
    if (ims && !Number.isNaN(Date.parse(ims)) && Date.parse(ims) >= mtime.getTime()) {
      answer(304); res.writeHead(304, { 'Last-Modified': mtime.toUTCString() }).end(); return;
    }
    answer(200);
    res.writeHead(200, { 'Content-Length': st.size, 'Last-Modified': mtime.toUTCString(), 'Content-Type': 'application/octet-stream' });
    if (req.method === 'HEAD') { res.end(); return; }
    await send(res, file, lies.has(path));
  };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => res.destroy());
  };
  const server = cfg.cert && cfg.key
    ? createHttps({ cert: readFileSync(cfg.cert), key: readFileSync(cfg.key) }, listener)
    : createHttp(listener);
  server.keepAliveTimeout = 30_000;
  server.listen(cfg.port ?? 0, cfg.host ?? '0.0.0.0', () => {
    const a = server.address();
    process.stdout.write(`ready ${typeof a === 'object' && a ? a.port : cfg.port}\n`);
  });
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

export interface Mirror {
  port: number;
  /** http(s)://<address>:<port><path> */
  url(path: string): string;
  /** `<status> <path>` in arrival order */
  hits: string[];
  /** requests for a path (any status) */
  count(path: string): number;
  /** requests whose path matches */
  countMatching(re: RegExp): number;
  stop(): Promise<void>;
}

/** Spawns the mirror (in `host` when given, else on this machine) and waits for its "ready". */
export async function startMirror(host: LanHost | undefined, cfg: MirrorConfig): Promise<Mirror> {
  const args = ['--import', 'tsx', import.meta.filename, JSON.stringify(host ? cfg : { host: '127.0.0.1', ...cfg })];
  const opts = { cwd: resolve(import.meta.dirname, '../..'), buffer: false, stdin: 'ignore', stderr: 'inherit', reject: false } as const;
  const child: ResultPromise = host ? host.spawn(process.execPath, args, opts) : (await import('execa')).execa(process.execPath, args, opts);
  const hits: string[] = [];
  const port = await new Promise<number>((res, rej) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const m = /^ready (\d+)$/.exec(l);
      if (m) res(Number(m[1]));
      else if (l.startsWith('hit ')) hits.push(l.slice(4));
    });
    void child.then(() => rej(new Error('mirror exited before ready')));
  });
  const address = host?.address ?? '127.0.0.1';
  const pathOf = (h: string) => h.slice(h.indexOf(' ') + 1);
  return {
    port,
    url: (p) => `${cfg.cert ? 'https' : 'http'}://${address}:${port}${p}`,
    hits,
    count: (p) => hits.filter((h) => pathOf(h) === p).length,
    countMatching: (re) => hits.filter((h) => re.test(pathOf(h))).length,
    async stop() {
      child.kill('SIGTERM');
      await child.catch(() => undefined);
    },
  };
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  runServer(JSON.parse(process.argv[2]!) as MirrorConfig);
}
