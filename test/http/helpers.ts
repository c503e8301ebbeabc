/** Shared setup for the HTTPS server tests: a real Store in a temp dir and a real server on loopback. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { Store } from '../../lib/store/store.js';
import { DEFAULT_CONFIG } from '../../lib/core/config.js';
import { startHttpsServer, type HttpsServerOptions, type HttpsServerHandle, type RequestRecord } from '../../lib/http/server.js';
import type { ItemInfo, PublishOptions } from '../../lib/store/types.js';

/** The address tests use as "a peer on the LAN": still on lo, but the server is told it is not loopback. */
export const PEER_ADDRESS = '127.0.0.2';
export const onlyLocalhostIsLoopback = (addr: string) => addr === '127.0.0.1';

export interface Fixture {
  dir: string;
  store: Store;
  server: HttpsServerHandle;
  base: string;
  /** requests from 127.0.0.1 (loopback) */
  local: Agent;
  /** requests from 127.0.0.2 (a "peer") */
  peer: Agent;
  /** resolves with the record of the next request the server settles that matches */
  settled(match: (r: RequestRecord) => boolean): Promise<RequestRecord>;
  publish(bytes: Buffer, opts: PublishOptions): Promise<ItemInfo>;
  close(): Promise<void>;
}

/**
 * Hands each settled request record to one waiting promise, the oldest whose match accepts it, so
 * concurrent requests for the same URL each wait for their own record.
 */
export function settleQueue() {
  const waiters: Array<{ match: (r: RequestRecord) => boolean; resolve: (r: RequestRecord) => void }> = [];
  return {
    wait: (match: (r: RequestRecord) => boolean) => new Promise<RequestRecord>((resolve) => waiters.push({ match, resolve })),
    done(r: RequestRecord): void {
      const w = waiters.find((x) => x.match(r));
      if (!w) return;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(r);
    },
  };
}

export async function fixture(
  over: { config?: Partial<HttpsServerOptions['config']> } & Partial<Omit<HttpsServerOptions, 'config' | 'store' | 'stateDir'>> = {},
): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'passim-http-'));
  const store = new Store({ stateDir: dir });
  await store.load();
  const queue = settleQueue();
  const { config, ...rest } = over;
  const server = await startHttpsServer({
    store,
    stateDir: dir,
    isLoopback: onlyLocalhostIsLoopback,
    ...rest,
    config: { ...DEFAULT_CONFIG, port: 0, bind: ['127.0.0.1'], ...config },
    onRequestDone: (r) => {
      rest.onRequestDone?.(r);
      queue.done(r);
    },
  });
  const local = new Agent({ localAddress: '127.0.0.1', connect: { rejectUnauthorized: false } });
  const peer = new Agent({ localAddress: PEER_ADDRESS, connect: { rejectUnauthorized: false } });
  return {
    dir,
    store,
    server,
    base: `https://127.0.0.1:${server.port}`,
    local,
    peer,
    settled: queue.wait,
    publish: (bytes, opts) => store.publish(Readable.from([bytes]), opts),
    async close() {
      await Promise.all([local.close(), peer.close()]);
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

export async function get(agent: Agent, url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const r = await request(url, { dispatcher: agent, method: (opts.method ?? 'GET') as 'GET', headers: opts.headers });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers: r.headers, body };
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function randomContent(size: number): Buffer {
  return randomBytes(size);
}

/** A request whose server-side accounting (share recorded or released) is settled when it resolves. */
export async function getSettled(f: Fixture, agent: Agent, url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const target = url.slice(url.indexOf('/', 'https://'.length));
  const settled = f.settled((r) => r.url === target);
  const reply = await get(agent, url, opts);
  await settled;
  return reply;
}
