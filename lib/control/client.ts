/**
 * The control socket client (CLI and fetch): one method per route of api.ts. A daemon that cannot
 * be reached is a DaemonUnreachableError (exit 5) saying which socket and why; an error reply is
 * rebuilt as the error class the daemon threw.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { basename as pathBasename } from 'node:path';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest } from 'node:http';
import { Readable } from 'node:stream';
import type { Client } from 'undici';
import { DaemonUnreachableError, errorFromCode, PassimError, UsageError } from '../core/errors.js';
import { ROUTES, type ClaimReply, type ErrorReply, type ItemInfo, type PeersReply, type StatusReply, type VerifyReply } from './api.js';

export interface ClientPublishOptions {
  /** basename to publish under; default the file's basename when publishing a path */
  name?: string;
  maxAge?: number;
  shareLimit?: number;
  nextReboot?: boolean;
  cmdline?: string;
  /** the daemon checks the received bytes hash to this */
  sha256?: string;
  /** bytes in the body, when known (sent as Content-Length) */
  size?: number;
}

const CONNECT_ERRORS: Record<string, string> = {
  ENOENT: 'no such socket',
  ECONNREFUSED: 'nothing is listening',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'no such socket',
  ECONNRESET: 'the connection was reset',
};

/**
 * What a publish sends: a file (by path, opened here), the bytes themselves, a stream, or a function
 * that makes the stream anew for each attempt. All but a bare stream can be sent again, so they go
 * over kept-alive connections (a batch publishes many files); a bare stream gets a connection of
 * its own.
 */
export type PublishSource = string | Buffer | Readable | (() => Readable);

/** A request body, made for each attempt; `once`: it cannot be made twice. */
interface CallBody {
  make: () => Promise<{ body: Readable | Buffer; size?: number; done?: () => Promise<void> }>;
  size?: number;
  once?: boolean;
}

/** A kept-alive connection the daemon closed just as a request went out on it: send it again. */
class StaleConnection extends Error {}

/** Free connections are closed after this, well before the daemon's keep-alive timeout (5 s). */
const IDLE_MS = 2000;

/**
 * Requests go over node:http (loading undici would cost a CLI about 80 ms) on kept-alive
 * connections: a batch's peers questions and publishes reuse a few connections rather than open
 * one each. Herd claims go apart: the daemon ties a claim to the connection that made it, so they
 * share one persistent undici connection, created on the first claim.
 */
export class ControlClient {
  private claimClient?: Client;
  private agent?: HttpAgent;
  private readonly active = new Set<ClientRequest>();

  constructor(readonly socketPath: string) {}

  status(): Promise<StatusReply> {
    return this.call<StatusReply>('GET', ROUTES.status);
  }

  items(): Promise<ItemInfo[]> {
    return this.call<ItemInfo[]>('GET', ROUTES.items);
  }

  /**
   * Sends a file to the daemon's store: a path (opened here by the client), its bytes, or a stream.
   * A path that is missing, unreadable or a directory fails before the daemon is contacted.
   */
  async publish(source: PublishSource, opts: ClientPublishOptions = {}): Promise<ItemInfo> {
    let name = opts.name;
    let body: CallBody;
    if (typeof source === 'string') {
      let first: { fh: FileHandle; size: number } | undefined = await openForPublish(source);
      name ??= pathBasename(source);
      body = {
        make: async () => {
          const { fh, size } = first ?? (await openForPublish(source));
          first = undefined;
          return { body: publishBody(fh, size), size, done: () => fh.close().catch(() => {}) };
        },
      };
      try {
        return await this.post(name, body, opts);
      } finally {
        await first?.fh.close().catch(() => {}); // opened but never handed to a request
      }
    }
    if (!name) throw new UsageError('a name is required to publish bytes or a stream');
    if (Buffer.isBuffer(source)) body = { size: source.length, make: async () => ({ body: source }) };
    else if (typeof source === 'function') body = { size: opts.size, make: async () => ({ body: source() }) };
    else body = { size: opts.size, once: true, make: async () => ({ body: source }) };
    return this.post(name, body, opts);
  }

  private post(name: string, body: CallBody, opts: ClientPublishOptions): Promise<ItemInfo> {
    const q = new URLSearchParams({ name });
    if (opts.maxAge !== undefined) q.set('max_age', String(opts.maxAge));
    if (opts.shareLimit !== undefined) q.set('share_limit', String(opts.shareLimit));
    if (opts.nextReboot) q.set('next_reboot', '1');
    if (opts.cmdline !== undefined) q.set('cmdline', opts.cmdline);
    if (opts.sha256 !== undefined) q.set('sha256', opts.sha256);
    return this.call<ItemInfo>('POST', `${ROUTES.items}?${q}`, { body, upload: true });
  }

  /**
   * Peers the daemon has heard announce each hash (its cache of mDNS answers; at most
   * MAX_PEERS_HASHES per call). A daemon too old to have the route (404) or without a peer cache
   * (501) knows no peers: that is an empty reply, not an error.
   */
  async peers(hashes: string[]): Promise<PeersReply> {
    const bytes = Buffer.from(JSON.stringify({ hashes }));
    const body: CallBody = { size: bytes.length, make: async () => ({ body: bytes }) };
    const reply = await this.call<PeersReply>('POST', ROUTES.peers, { body, contentType: 'application/json', noRoute: () => ({ peers: {} }) });
    if (!reply || typeof reply.peers !== 'object' || reply.peers === null) throw new PassimError(`the daemon on ${this.socketPath} sent a peers reply without peers`);
    return reply;
  }

  unpublish(hash: string): Promise<ItemInfo> {
    return this.call<ItemInfo>('DELETE', `${ROUTES.items}/${encodeURIComponent(hash)}`);
  }

  verify(fix = false): Promise<VerifyReply> {
    return this.call<VerifyReply>('POST', `${ROUTES.verify}?fix=${fix ? 1 : 0}`);
  }

  setMetered(on: boolean): Promise<StatusReply> {
    return this.call<StatusReply>('POST', `${ROUTES.metered}?on=${on ? 1 : 0}`);
  }

  /**
   * Claims a hash as being fetched by this client (herd suppression): the daemon advertises it
   * until the lease (ttlMs) lapses without renewal, this connection closes, or it is released.
   */
  claim(sha256: string, kind: 'bid' | 'fetching', ttlMs: number): Promise<ClaimReply> {
    const q = new URLSearchParams({ sha256, kind, ttl_ms: String(Math.round(ttlMs)) });
    return this.callPersistent<ClaimReply>('POST', `${ROUTES.claims}?${q}`);
  }

  /** Renews a claim's lease (and may change its kind); NotFoundError once it has lapsed. */
  renewClaim(id: string, ttlMs: number, kind?: 'bid' | 'fetching'): Promise<ClaimReply> {
    const q = new URLSearchParams({ ttl_ms: String(Math.round(ttlMs)) });
    if (kind) q.set('kind', kind);
    return this.callPersistent<ClaimReply>('POST', `${ROUTES.claims}/${encodeURIComponent(id)}?${q}`);
  }

  releaseClaim(id: string): Promise<{ released: boolean }> {
    return this.callPersistent<{ released: boolean }>('DELETE', `${ROUTES.claims}/${encodeURIComponent(id)}`);
  }

  /** Drops every connection at once (and with them any claim). */
  async destroy(): Promise<void> {
    for (const req of this.active) req.destroy();
    this.agent?.destroy();
    await this.claimClient?.destroy().catch(() => {});
  }

  /** Closes the idle connections (a request still running finishes on its own). */
  async close(): Promise<void> {
    this.agent?.destroy();
    const c = this.claimClient;
    if (c) await c.close().catch(() => c.destroy());
  }

  /** Sends a request; once more on a new connection if a kept-alive one turned out closed. */
  private async call<T>(method: string, path: string, o: { body?: CallBody; upload?: boolean; contentType?: string; noRoute?: () => T } = {}): Promise<T> {
    // a body that cannot be sent twice gets a connection of its own: no stale one to retry from
    const shared = !o.body?.once;
    const agent = shared ? (this.agent ??= new HttpAgent({ keepAlive: true, maxSockets: 8, timeout: IDLE_MS })) : false;
    try {
      return await this.send<T>(method, path, o, agent);
    } catch (err) {
      if (!(err instanceof StaleConnection)) throw err;
      return this.send<T>(method, path, o, false);
    }
  }

  private async send<T>(method: string, path: string, o: { body?: CallBody; upload?: boolean; contentType?: string; noRoute?: () => T }, agent: HttpAgent | false): Promise<T> {
    const upload = o.upload ?? false;
    const made = o.body ? await o.body.make() : undefined;
    const body = made?.body;
    const size = made?.size ?? o.body?.size ?? (Buffer.isBuffer(body) ? body.length : undefined);
    try {
      return await this.exchange<T>(method, path, body, size, upload, o.contentType ?? 'application/octet-stream', o.noRoute, agent);
    } finally {
      if (body && !Buffer.isBuffer(body) && !body.destroyed) body.destroy();
      await made?.done?.();
    }
  }

  private exchange<T>(method: string, path: string, body: Readable | Buffer | undefined, size: number | undefined, upload: boolean, contentType: string, noRoute: (() => T) | undefined, agent: HttpAgent | false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let answered = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        // nothing came back on a connection used before: the daemon closed it as we sent
        if (!answered && req.reusedSocket && isStale(err)) reject(new StaleConnection((err as Error).message));
        else reject(this.translate(err, upload));
      };
      const req = httpRequest({
        socketPath: this.socketPath,
        method,
        path,
        agent,
        headers: {
          accept: 'application/json',
          ...(body ? { 'content-type': contentType } : {}),
          ...(size !== undefined ? { 'content-length': String(size) } : {}),
        },
      }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('close', () => { if (!res.complete) fail(new Error('the daemon closed the connection mid-reply')); });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          try {
            if ((res.statusCode === 404 || res.statusCode === 501) && noRoute) return resolve(noRoute());
            resolve(this.parse<T>(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
      });
      this.active.add(req);
      req.on('close', () => this.active.delete(req));
      // once the daemon has answered (e.g. 413 to an upload it refused), its reply is what counts
      req.on('error', (err) => { if (!answered) fail(err); });
      if (Buffer.isBuffer(body)) {
        req.end(body);
      } else if (body) {
        body.on('error', (err) => { req.destroy(); fail(err); });
        body.pipe(req);
      } else {
        req.end();
      }
    });
  }

  /** The daemon's JSON reply, or the error class it reported. */
  private parse<T>(status: number, text: string): T {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new PassimError(`the daemon on ${this.socketPath} sent a reply that is not JSON (HTTP ${status})`);
    }
    if (status >= 400) {
      const e = (json as ErrorReply)?.error;
      if (e && typeof e.code === 'string' && typeof e.message === 'string') throw errorFromCode(e.code, e.message);
      throw new PassimError(`the daemon on ${this.socketPath} answered HTTP ${status}`);
    }
    return json as T;
  }

  /**
   * Loads what claims need (undici) ahead of the first one: a herd's bid must go out within its
   * discovery window, and loading undici takes hundreds of ms on a busy machine.
   */
  prepareClaims(): Promise<void> {
    this.claimsReady ??= import('../fetch/undici-lean.js').then(({ Client: UndiciClient }) => {
      this.claimClient ??= new UndiciClient('http://localhost', {
        socketPath: this.socketPath,
        connectTimeout: 5000,
        headersTimeout: 0,
        bodyTimeout: 0,
        // a batch claims many hashes at once: pipelined, they cost one round trip, not one each
        pipelining: 16,
      });
    });
    return this.claimsReady;
  }

  private claimsReady?: Promise<void>;

  /** A request on the one persistent connection that carries claims. */
  private async callPersistent<T>(method: string, path: string): Promise<T> {
    await this.prepareClaims();
    if (!this.claimClient) throw new PassimError('no claim connection');
    let res;
    try {
      res = await this.claimClient.request({
        method: method as 'GET',
        path,
        // claim calls carry no body and may be pipelined (a lost connection ends its claims anyway)
        idempotent: true,
        blocking: false,
        headers: { accept: 'application/json' },
      });
    } catch (err) {
      throw this.translate(err, false);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      throw this.translate(err, false);
    }
    return this.parse<T>(res.statusCode, text);
  }

  private translate(err: unknown, upload: boolean): Error {
    if (err instanceof PassimError) return err;
    const code = errCode(err);
    if (code && CONNECT_ERRORS[code] && !(upload && code === 'ECONNRESET')) {
      const why = CONNECT_ERRORS[code];
      const hint = code === 'EACCES' || code === 'EPERM'
        ? 'run as root or as a member of the passim group'
        : 'is `passim serve` running? (set the socket with --socket or PASSIM_SOCKET)';
      return new DaemonUnreachableError(`cannot reach the passim daemon on ${this.socketPath}: ${why}; ${hint}`, { cause: err });
    }
    const msg = err instanceof Error ? err.message : String(err);
    return new PassimError(`control socket ${this.socketPath}: ${msg}`, { cause: err });
  }
}

function isStale(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

function errCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** Read size for a published file. */
const PUBLISH_CHUNK = 1024 * 1024;

/**
 * The bytes of an open file to publish, `size` of them. With its end given, an fs ReadStream reads
 * into buffers of exactly what is left (without it, each read gets a full-size buffer and a short
 * one — the last of nearly every file — is copied). The handle stays open: the caller closes it.
 */
export function publishBody(fh: FileHandle, size: number): Readable {
  return fh.createReadStream({ start: 0, end: Math.max(0, size - 1), highWaterMark: PUBLISH_CHUNK, autoClose: false });
}

/** Opens a file to publish (and its size), with one clear error for each way it can fail. */
export async function openForPublish(path: string): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new PassimError(`cannot publish ${path}: no such file`);
    if (code === 'EACCES' || code === 'EPERM') throw new PassimError(`cannot publish ${path}: permission denied`);
    if (code === 'EISDIR') throw new PassimError(`cannot publish ${path}: is a directory`);
    throw new PassimError(`cannot publish ${path}: ${(err as Error).message}`);
  }
  const st = await fh.stat();
  if (st.isDirectory()) {
    await fh.close();
    throw new PassimError(`cannot publish ${path}: is a directory`);
  }
  if (!st.isFile()) {
    await fh.close();
    throw new PassimError(`cannot publish ${path}: not a regular file`);
  }
  return { fh, size: st.size };
}
