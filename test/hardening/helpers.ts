/**
 * Shared setup for the hardening tests: a real Store + HTTPS server on loopback (with injectable
 * limits), undici agents bound to chosen 127.0.0.x source addresses (the server is told only
 * 127.0.0.1 is loopback, so every other source plays a LAN peer), and a raw TLS client that writes
 * arbitrary bytes and reads back one response.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { connect, type TLSSocket } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { Agent, request } from 'undici';
import { Store } from '../../lib/store/store.js';
import { DEFAULT_CONFIG } from '../../lib/core/config.js';
import { startHttpsServer, type HttpsServerOptions, type HttpsServerHandle, type RequestRecord } from '../../lib/http/server.js';
import type { ItemInfo, PublishOptions, StoreOptions } from '../../lib/store/types.js';
import { settleQueue } from '../http/helpers.js';

export const onlyLocalhostIsLoopback = (addr: string) => addr === '127.0.0.1';

/** a fixed seed for every fast-check run here, so CI failures reproduce */
export const SEED = 0x9a551;

export interface Fixture {
  dir: string;
  dataDir: string;
  store: Store;
  server: HttpsServerHandle;
  port: number;
  base: string;
  /** an undici agent whose connections come from `address` (cached per address) */
  agent(address: string): Agent;
  /** resolves with the record of the next settled request that matches */
  settled(match: (r: RequestRecord) => boolean): Promise<RequestRecord>;
  records: RequestRecord[];
  publish(bytes: Buffer, opts: PublishOptions): Promise<ItemInfo>;
  /** destroys the agents only (their sockets are closed when it resolves) */
  closeAgents(): Promise<void>;
  close(): Promise<void>;
}

export type FixtureOptions = { config?: Partial<HttpsServerOptions['config']>; storeOptions?: Partial<StoreOptions> } & Partial<
  Omit<HttpsServerOptions, 'config' | 'store' | 'stateDir'>
>;

export async function fixture(over: FixtureOptions = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'passim-hard-'));
  const dataDir = join(dir, 'data');
  const { config, storeOptions, ...rest } = over;
  const store = new Store({ stateDir: dir, dataDir, ...storeOptions });
  await store.load();
  const records: RequestRecord[] = [];
  const queue = settleQueue();
  const server = await startHttpsServer({
    store,
    stateDir: dir,
    isLoopback: onlyLocalhostIsLoopback,
    ...rest,
    config: { ...DEFAULT_CONFIG, port: 0, bind: ['127.0.0.1'], ...config },
    onRequestDone: (r) => {
      records.push(r);
      rest.onRequestDone?.(r);
      queue.done(r);
    },
  });
  const agents = new Map<string, Agent>();
  const closeAgents = async () => {
    const all = [...agents.values()];
    agents.clear();
    // destroy, not close: close() would wait forever for a response body a test left unread
    await Promise.all(all.map((a) => a.destroy()));
  };
  return {
    dir,
    dataDir,
    store,
    server,
    port: server.port,
    base: `https://127.0.0.1:${server.port}`,
    records,
    agent(address: string) {
      let a = agents.get(address);
      if (!a) {
        a = new Agent({ localAddress: address, connect: { rejectUnauthorized: false } });
        agents.set(address, a);
      }
      return a;
    },
    settled: queue.wait,
    publish: (bytes, opts) => store.publish(Readable.from([bytes]), opts),
    closeAgents,
    async close() {
      await closeAgents();
      await server.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export async function get(agent: Agent, url: string, headers?: Record<string, string>): Promise<Reply> {
  const r = await request(url, { dispatcher: agent, method: 'GET', headers });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers: r.headers, body };
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** deterministic pseudo-random bytes (no crypto randomness needed, reproducible) */
export function content(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** the audit log lines of one type that mention a hash */
export async function auditLines(dir: string, type: string, hash: string): Promise<string[]> {
  const text = await readFile(join(dir, 'log', 'audit.log'), 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.split(' ')[1] === type && l.includes(`hash=${hash}`));
}

export function tlsConnect(port: number, localAddress: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    // tls.connect passes localAddress through at runtime, but its types do not have it: bind a TCP socket first
    const tcp = netConnect({ host: '127.0.0.1', port, localAddress });
    const s = connect({ socket: tcp, rejectUnauthorized: false, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    tcp.once('error', reject);
    s.once('secureConnect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export interface RawResponse {
  status: number;
  headers: Map<string, string[]>;
  body: Buffer;
  /** the server closed the connection after (or instead of) this response */
  closedAfter: boolean;
}

/**
 * One end of a raw TLS connection: write bytes, read back the next HTTP/1.1 response.
 * `closed` resolves when the socket is fully closed.
 */
export class RawConnection {
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;
  readonly closed: Promise<void>;

  constructor(readonly socket: TLSSocket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.ended = true;
        this.wake?.();
        resolve();
      });
    });
    socket.once('end', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  static async open(port: number, localAddress: string): Promise<RawConnection> {
    return new RawConnection(await tlsConnect(port, localAddress));
  }

  get isEnded(): boolean {
    return this.ended;
  }

  write(bytes: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  private async waitFor(cond: () => boolean, deadline: number): Promise<boolean> {
    while (!cond()) {
      if (this.ended) return cond();
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return true;
  }

  /**
   * The next response (skipping 1xx). 'closed': the server closed without a (complete) response.
   * 'timeout': neither a response nor a close within timeoutMs — the server hung.
   */
  async readResponse(method: string, timeoutMs: number): Promise<RawResponse | 'closed' | 'timeout'> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const gotHead = await this.waitFor(() => this.buf.indexOf('\r\n\r\n') >= 0, deadline);
      if (!gotHead) return this.ended ? 'closed' : 'timeout';
      const end = this.buf.indexOf('\r\n\r\n');
      const head = this.buf.subarray(0, end).toString('latin1');
      const lines = head.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]);
      if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0].slice(0, 80))}`);
      const status = Number(m[1]);
      const headers = new Map<string, string[]>();
      for (const line of lines.slice(1)) {
        const c = line.indexOf(':');
        if (c <= 0) throw new Error(`bad response header line: ${JSON.stringify(line.slice(0, 80))}`);
        const k = line.slice(0, c).trim().toLowerCase();
        headers.set(k, [...(headers.get(k) ?? []), line.slice(c + 1).trim()]);
      }
      this.buf = this.buf.subarray(end + 4);
      if (status >= 100 && status < 200) continue;
      const cl = headers.get('content-length')?.[0];
      let body: Buffer;
      if (method === 'HEAD' || status === 204 || status === 304) {
        body = Buffer.alloc(0);
      } else if (cl !== undefined) {
        const n = Number(cl);
        const ok = await this.waitFor(() => this.buf.length >= n, deadline);
        if (!ok) return this.ended ? 'closed' : 'timeout';
        body = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
      } else if (headers.get('transfer-encoding')?.[0]?.toLowerCase() === 'chunked') {
        const parts: Buffer[] = [];
        for (;;) {
          const ok = await this.waitFor(() => this.buf.indexOf('\r\n') >= 0, deadline);
          if (!ok) return this.ended ? 'closed' : 'timeout';
          const eol = this.buf.indexOf('\r\n');
          const size = parseInt(this.buf.subarray(0, eol).toString('latin1'), 16);
          if (!Number.isFinite(size)) throw new Error('bad chunk size');
          const need = eol + 2 + size + 2;
          const got = await this.waitFor(() => this.buf.length >= need, deadline);
          if (!got) return this.ended ? 'closed' : 'timeout';
          parts.push(this.buf.subarray(eol + 2, eol + 2 + size));
          this.buf = this.buf.subarray(need);
          if (size === 0) break; // (no trailers from Node here)
        }
        body = Buffer.concat(parts);
      } else {
        // no length: the body runs to the close
        const ok = await this.waitFor(() => false, deadline);
        if (!ok && !this.ended) return 'timeout';
        body = this.buf;
        this.buf = Buffer.alloc(0);
      }
      const connection = headers.get('connection')?.[0]?.toLowerCase();
      return { status, headers, body, closedAfter: this.ended || connection === 'close' };
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
