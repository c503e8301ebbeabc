/**
 * The HTTPS server peers and the local fwupd talk to (SPEC §4): HTTP/1.1 over TLS with the
 * self-signed certificate from tls.ts, request checks in upstream's order (request-checks.ts),
 * item bytes (serve-item.ts), the loopback redirect to a peer, and the index page.
 */
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassimError } from '../core/errors.js';
import type { DaemonConfig } from '../core/config.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { version } from '../core/version.js';
import type { ItemStore } from '../store/types.js';
import { isLoopbackAddress, normaliseAddress, urlHost } from './addresses.js';
import { Cooldown } from './cooldown.js';
import { errorPage } from './error-page.js';
import { indexPage, STYLE_CSS } from './index-page.js';
import { checkRequest, type Outcome } from './request-checks.js';
import { serveItem } from './serve-item.js';
import { loadOrCreateCertificate, type TlsMaterial } from './tls.js';

export type PeerFinder = (hash: string, basename: string) => Promise<{ address: string; port: number } | undefined>;

export type HttpConfig = Pick<DaemonConfig, 'port' | 'bind' | 'localhostOnly' | 'cooldown' | 'maxUploads' | 'maxUploadsPerPeer'>;

export interface HttpsServerOptions {
  store: ItemStore;
  config: HttpConfig;
  /** where the TLS key and certificate live (statePaths(stateDir).tlsKey/tlsCert) */
  stateDir: string;
  /** loopback requests for a hash not held here: a peer that has it, or undefined (→ 404) */
  findPeer?: PeerFinder;
  logger?: Logger;
  /** ms clock (cooldown, index ages) */
  now?: () => number;
  /** which (normalised) peer addresses count as loopback; default 127.0.0.0/8 and ::1 (tests narrow it) */
  isLoopback?: (address: string) => boolean;
  /** use this key + certificate instead of the stored one */
  tls?: TlsMaterial;
  /** seconds announced in Retry-After with a 503 (too many uploads); default 10 */
  retryAfter?: number;
  /** called once per request after everything about it is settled (share accounting included) */
  onRequestDone?: (r: RequestRecord) => void;
  /** status and instance name shown on the index page */
  indexInfo?: () => { status?: string; name?: string };
  /** override the size limits and timeouts (tests shorten the timeouts); defaults in HTTP_LIMITS */
  limits?: Partial<HttpLimits>;
}

export interface RequestRecord {
  peer: string;
  loopback: boolean;
  method: string;
  url: string;
  status: number;
  /** false when the response was cut short */
  complete: boolean;
  ms: number;
}

export interface HttpsServerHandle {
  /** the port actually listened on (differs from config.port when that was 0) */
  port: number;
  /** "addr:port" (IPv6 in brackets) of every listening socket */
  addresses: string[];
  /** live config change (SIGHUP reload): the per-peer cooldown in seconds */
  setCooldown(seconds: number): void;
  /** stops listening, cuts open connections, and resolves once every request handler has settled */
  close(): Promise<void>;
}

/** Node's http server limits: slow or huge requests cost a bounded amount. Times in ms. */
export interface HttpLimits {
  /** bytes of request line + headers; more → 431 */
  maxHeaderSize: number;
  /** the whole header block must arrive within this (slowloris; also a connection that never sends) */
  headersTimeout: number;
  /** the whole request must arrive within this */
  requestTimeout: number;
  /** an idle keep-alive connection is closed after this */
  keepAliveTimeout: number;
  /**
   * no socket progress for this long closes the connection; it also cuts a peer that reads the
   * body too slowly: each 1 MiB write of the body must be taken within it (30 s ≈ 35 KiB/s minimum)
   */
  socketTimeout: number;
  /** the TLS handshake must finish within this */
  handshakeTimeout: number;
  /** how often headersTimeout / requestTimeout are checked (Node's default is 30 s) */
  connectionsCheckingInterval: number;
}

export const HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  maxHeaderSize: 16 * 1024,
  headersTimeout: 15_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  socketTimeout: 30_000,
  handshakeTimeout: 10_000,
  connectionsCheckingInterval: 2_000,
});

function sendHtml(res: ServerResponse, status: number, body: string, headers: Record<string, string | number> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, reason: string, headers?: Record<string, string | number>): void {
  sendHtml(res, status, errorPage(status, reason), headers);
}

/** Counts concurrent uploads to peers, in total and per peer address. */
class UploadSlots {
  private total = 0;
  private readonly perPeer = new Map<string, number>();
  constructor(private readonly max: number, private readonly maxPerPeer: number) {}

  tryTake(peer: string): boolean {
    const mine = this.perPeer.get(peer) ?? 0;
    if (this.total >= this.max || mine >= this.maxPerPeer) return false;
    this.total++;
    this.perPeer.set(peer, mine + 1);
    return true;
  }

  give(peer: string): void {
    this.total = Math.max(0, this.total - 1);
    const mine = (this.perPeer.get(peer) ?? 1) - 1;
    if (mine <= 0) this.perPeer.delete(peer);
    else this.perPeer.set(peer, mine);
  }
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): PassimError {
  const where = `${urlHost(host)}:${port}`;
  if (err.code === 'EADDRINUSE') return new PassimError(`port ${port} is already in use (${where}): is another passim or passimd running?`, { cause: err });
  if (err.code === 'EACCES') return new PassimError(`permission denied listening on ${where} (ports below 1024 need privileges)`, { cause: err });
  if (err.code === 'EADDRNOTAVAIL') return new PassimError(`cannot listen on ${where}: no such local address`, { cause: err });
  return new PassimError(`cannot listen on ${where}: ${err.message}`, { cause: err });
}

function listenOn(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port, ipv6Only: false, exclusive: true });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startHttpsServer(opts: HttpsServerOptions): Promise<HttpsServerHandle> {
  const { store, config } = opts;
  const log = opts.logger ?? silentLogger;
  const now = opts.now ?? Date.now;
  const isLoopback = opts.isLoopback ?? isLoopbackAddress;
  const retryAfter = opts.retryAfter ?? 10;
  const cooldown = new Cooldown({ seconds: config.cooldown, now });
  const slots = new UploadSlots(config.maxUploads, config.maxUploadsPerPeer);
  const tls = opts.tls ?? (await loadOrCreateCertificate(opts.stateDir, { logger: log }));
  const LIMITS: HttpLimits = { ...HTTP_LIMITS, ...opts.limits };

  async function redirect(res: ServerResponse, hash: string, basename: string): Promise<void> {
    const name = basename || hash;
    let peer: { address: string; port: number } | undefined;
    if (opts.findPeer) {
      try {
        peer = await opts.findPeer(hash, name);
      } catch (err) {
        log.warn(`looking for a peer with ${hash}: ${(err as Error).message}`);
      }
    }
    if (!peer) {
      sendError(res, 404, 'not found here or on any peer');
      return;
    }
    const location = `https://${urlHost(peer.address)}:${peer.port}/${encodeURIComponent(name)}?sha256=${hash}`;
    sendHtml(res, 302, errorPage(302, location), { Location: location });
  }

  async function act(req: IncomingMessage, res: ServerResponse, outcome: Outcome, peer: string, loopback: boolean): Promise<void> {
    switch (outcome.kind) {
      case 'error':
        sendError(res, outcome.status, outcome.reason);
        return;
      case 'index':
        sendHtml(res, 200, indexPage({ version: version(), savings: store.savings(), items: store.list(), now: now(), ...opts.indexInfo?.() }), {
          'Cache-Control': 'no-store',
        });
        return;
      case 'asset':
        if (outcome.name === 'style.css') {
          res.writeHead(200, { 'Content-Type': 'text/css; charset=utf-8', 'Content-Length': Buffer.byteLength(STYLE_CSS) });
          res.end(STYLE_CSS);
        } else {
          res.writeHead(204);
          res.end();
        }
        return;
      case 'redirect':
        await redirect(res, outcome.hash, outcome.basename);
        return;
      case 'serve': {
        const { item } = outcome;
        if (!loopback && !slots.tryTake(peer)) {
          // not the peer's fault: let it come back without waiting for the cooldown
          cooldown.forget(peer, item.hash);
          sendError(res, 503, 'too many downloads in progress: try again later', { 'Retry-After': retryAfter });
          return;
        }
        // the slot is the upload: free it as soon as the response is flushed or cut, not after the
        // share bookkeeping, or a peer's next request right after the last byte could see a 503
        let given = loopback;
        const give = () => {
          if (!given) {
            given = true;
            slots.give(peer);
          }
        };
        res.once('finish', give);
        res.once('close', give);
        try {
          const r = await serveItem(req, res, item, { store, peer, loopback, logger: log });
          if (r.kind === 'sent') {
            if (!r.complete && !loopback) cooldown.forget(peer, item.hash);
            return;
          }
          // no share left, or deleted since the lookup: as if it were not here
          if (loopback) await redirect(res, item.hash, item.basename);
          else sendError(res, 403, 'not available here');
        } finally {
          give();
        }
        return;
      }
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = now();
    const peer = normaliseAddress(req.socket.remoteAddress);
    const loopback = isLoopback(peer);
    const method = req.method ?? '';
    const url = req.url ?? '';
    try {
      const outcome = checkRequest(
        { method, url, peer, loopback },
        { cooldownHit: (p, h) => cooldown.hit(p, h), lookup: (h) => store.get(h) },
      );
      await act(req, res, outcome, peer, loopback);
    } catch (err) {
      log.warn(`handling ${method.slice(0, 16)} ${url.slice(0, 200)} from ${peer}: ${(err as Error).message}`);
      if (!res.headersSent) sendError(res, 500, 'internal error');
      else res.destroy();
    }
    if (!res.writableFinished && !res.destroyed) {
      // a body still being flushed: report once it is done or cut short
      await new Promise<void>((resolve) => {
        res.once('finish', resolve);
        res.once('close', resolve);
      });
    }
    const record: RequestRecord = {
      peer, loopback, method, url, status: res.statusCode, complete: res.writableFinished, ms: now() - started,
    };
    log.debug(`${peer} ${method.slice(0, 16)} ${url.slice(0, 200)} → ${record.status}${record.complete ? '' : ' (cut short)'} ${record.ms}ms`);
    opts.onRequestDone?.(record);
  }

  /** handlers still running: close() waits for them, so no share is recorded after it resolves */
  const inflight = new Set<Promise<void>>();

  const makeServer = (): Server => {
    const server = createHttpsServer(
      {
        key: tls.key,
        cert: tls.cert,
        maxHeaderSize: LIMITS.maxHeaderSize,
        handshakeTimeout: LIMITS.handshakeTimeout,
        requestTimeout: LIMITS.requestTimeout,
        keepAliveTimeout: LIMITS.keepAliveTimeout,
        connectionsCheckingInterval: LIMITS.connectionsCheckingInterval,
        ALPNProtocols: ['http/1.1'],
      },
      (req, res) => {
        const p = handle(req, res);
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      },
    );
    server.headersTimeout = LIMITS.headersTimeout;
    server.requestTimeout = LIMITS.requestTimeout;
    server.keepAliveTimeout = LIMITS.keepAliveTimeout;
    server.setTimeout(LIMITS.socketTimeout);
    return server;
  };

  // which addresses: explicit binds; loopback only; or everything (dual-stack "::", else 0.0.0.0)
  type Want = { host: string; optional: boolean; fallback?: string };
  let wants: Want[];
  if (config.localhostOnly) wants = [{ host: '127.0.0.1', optional: false }, { host: '::1', optional: true }];
  else if (config.bind.length) wants = config.bind.map((host) => ({ host, optional: false }));
  else wants = [{ host: '::', optional: false, fallback: '0.0.0.0' }];

  const servers: Server[] = [];
  const addresses: string[] = [];
  let port = config.port;
  try {
    for (const want of wants) {
      let host = want.host;
      let server = makeServer();
      try {
        port = await listenOn(server, host, port);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        const noFamily = err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL';
        if (noFamily && want.fallback) {
          host = want.fallback;
          server = makeServer();
          port = await listenOn(server, host, port).catch((e2: NodeJS.ErrnoException) => {
            throw listenError(e2, host, port);
          });
        } else if (noFamily && want.optional) {
          log.debug(`not listening on ${host}: ${err.message}`);
          continue;
        } else {
          throw listenError(err, host, port);
        }
      }
      server.on('error', (err) => log.warn(`https server on ${urlHost(host)}:${port}: ${err.message}`));
      servers.push(server);
      addresses.push(`${urlHost(host)}:${port}`);
    }
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    throw err;
  }
  log.debug(`https listening on ${addresses.join(', ')}`);

  let closing: Promise<void> | undefined;
  return {
    port,
    addresses,
    setCooldown(seconds: number) {
      cooldown.setSeconds(seconds);
    },
    close() {
      closing ??= (async () => {
        await Promise.all(servers.map(closeServer));
        await Promise.allSettled([...inflight]);
        cooldown.clear();
      })();
      return closing;
    },
  };
}
