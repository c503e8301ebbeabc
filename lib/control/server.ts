/**
 * The control socket server (in the daemon): HTTP/1.1 + JSON on a Unix socket, routes of api.ts.
 * A publish streams the request body straight into the store: the daemon never opens a path the
 * client names. Access control is the socket file's mode (0660, group `passim` when root).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmod, chown, lstat, mkdir, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { AlreadyRunningError, NotFoundError, PassimError, UsageError } from '../core/errors.js';
import { normaliseSha256 } from '../core/sha256.js';
import { validateBasename } from '../core/basename.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { ItemInfo, PublishOptions } from '../store/types.js';
import { ClaimTable, CLAIM_TTL_MAX_MS, CLAIM_TTL_MIN_MS } from './claims.js';
import {
  countError,
  MAX_PEERS_HASHES,
  ROUTES,
  type ErrorReply,
  type PeersReply,
  type StatusReply,
  type VerifyReply,
} from './api.js';

/** What the control server needs of the store (the real Store satisfies it). */
export interface ControlStore {
  list(): ItemInfo[];
  publish(source: Readable, opts: PublishOptions, sizeHint?: number): Promise<ItemInfo>;
  unpublish(hash: string): Promise<ItemInfo>;
  verify?(fix: boolean): Promise<VerifyReply>;
}

export interface ControlServerOptions {
  socketPath: string;
  store: ControlStore;
  status: () => StatusReply;
  setMetered?: (on: boolean) => void | Promise<void>;
  /** in-progress claims of local fetches (herd suppression); without it the claim routes answer 501 */
  claims?: ClaimTable;
  /**
   * peers known for each hash (normalised 64 hex; the daemon's peer cache): only hashes with a
   * live peer appear in the result, and whether the daemon is alone on its LAN; without it
   * `POST /peers` answers 501
   */
  peers?: (hashes: string[]) => PeersReply;
  logger?: Logger;
  /** group that may use the socket when running as root; default "passim" */
  group?: string;
}

export interface ControlServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

/** Thrown for a route or method the API does not have. */
class RouteError extends PassimError {
  override readonly code = 'PASSIM_USAGE' as 'PASSIM_ERROR';
  constructor(message: string, override readonly httpStatus: number) {
    super(message);
  }
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const log = opts.logger ?? silentLogger;
  const { socketPath } = opts;
  await prepareSocketPath(socketPath);

  const server = createServer((req, res) => {
    handle(req, res, opts).catch((err) => {
      try {
        sendError(res, err, log);
      } catch (e) {
        log.warn(`control: cannot send an error reply: ${(e as Error).message}`);
        res.destroy();
      }
    });
  });
  // a publish may take a while for a large file on a slow disk: no request timeout
  server.requestTimeout = 0;
  server.headersTimeout = 30_000;

  const oldMask = process.umask(0o117);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    throw new PassimError(`cannot listen on control socket ${socketPath}: ${(err as Error).message}`, { cause: err });
  } finally {
    process.umask(oldMask);
  }
  server.on('error', (err) => log.warn(`control socket: ${err.message}`));

  const st = await lstat(socketPath);
  await chmod(socketPath, 0o660);
  await applyGroup(socketPath, opts.group ?? 'passim', log);
  log.debug(`control socket listening on ${socketPath}`);

  let closing: Promise<void> | undefined;
  return {
    socketPath,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // a client still streaming a publish: give up on it rather than hang the shutdown
          setTimeout(() => server.closeAllConnections(), 2000).unref();
        });
        // remove the socket file only if it is still ours (not replaced by another daemon)
        try {
          const now = await lstat(socketPath);
          if (now.ino === st.ino && now.dev === st.dev) await unlink(socketPath);
        } catch { /* already gone */ }
      })();
      return closing;
    },
  };
}

/** Creates the parent dir if missing; removes a stale socket, refuses a live one or a non-socket. */
async function prepareSocketPath(socketPath: string): Promise<void> {
  const dir = dirname(socketPath);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new PassimError(`cannot create the directory of the control socket ${dir}: ${(err as Error).message}`, { cause: err });
  }
  let st;
  try {
    st = await lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new PassimError(`cannot use control socket ${socketPath}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isSocket()) {
    throw new PassimError(`control socket path ${socketPath} exists and is not a socket; not removing it`);
  }
  if (await answers(socketPath)) {
    throw new AlreadyRunningError(`another passim daemon is listening on ${socketPath}`);
  }
  await unlink(socketPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw new PassimError(`cannot remove stale control socket ${socketPath}: ${err.message}`, { cause: err });
  });
}

/** True if something accepts a connection on the socket. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socketPath);
    const done = (live: boolean) => {
      s.destroy();
      resolve(live);
    };
    s.once('connect', () => done(true));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
    s.setTimeout(2000, () => done(true));
  });
}

async function applyGroup(socketPath: string, group: string, log: Logger): Promise<void> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  const gid = await lookupGroup(group);
  if (gid === undefined) {
    log.debug(`no "${group}" group: control socket ${socketPath} is for root only`);
    return;
  }
  try {
    await chown(socketPath, 0, gid);
  } catch (err) {
    log.warn(`cannot give control socket to group ${group}: ${(err as Error).message}`);
  }
}

/** The gid of a group from /etc/group, or undefined. */
export async function lookupGroup(name: string, groupFile = '/etc/group'): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(groupFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3 && /^\d+$/.test(f[2]!)) return Number(f[2]);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// request handling

async function handle(req: IncomingMessage, res: ServerResponse, opts: ControlServerOptions): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const q = parseQuery(url);
  const path = url.pathname;
  const method = req.method ?? 'GET';

  if (path === ROUTES.status) {
    allow(method, 'GET');
    noParams(q, []);
    return sendJson(res, 200, opts.status());
  }
  if (path === ROUTES.items) {
    if (method === 'GET') {
      noParams(q, []);
      return sendJson(res, 200, opts.store.list());
    }
    allow(method, 'POST');
    const p = publishOptions(q);
    const length = Number(req.headers['content-length']);
    const item = await opts.store.publish(req, p, Number.isSafeInteger(length) ? length : undefined);
    return sendJson(res, 201, item);
  }
  if (path.startsWith(ROUTES.items + '/')) {
    allow(method, 'DELETE');
    noParams(q, []);
    const hash = normaliseSha256(decodeURIComponent(path.slice(ROUTES.items.length + 1)));
    const item = await opts.store.unpublish(hash);
    return sendJson(res, 200, item);
  }
  if (path === ROUTES.verify) {
    allow(method, 'POST');
    noParams(q, ['fix']);
    const fix = q.has('fix') ? flag(q, 'fix') : false;
    if (!opts.store.verify) throw new RouteError('this daemon cannot verify its store', 501);
    return sendJson(res, 200, await opts.store.verify(fix));
  }
  if (path === ROUTES.metered) {
    allow(method, 'POST');
    noParams(q, ['on']);
    if (!q.has('on')) throw new UsageError('query "on" is required (1 or 0)');
    const on = flag(q, 'on');
    if (!opts.setMetered) throw new RouteError('this daemon cannot switch metered mode', 501);
    await opts.setMetered(on);
    return sendJson(res, 200, opts.status());
  }
  if (path === ROUTES.claims || path.startsWith(ROUTES.claims + '/')) return handleClaims(req, res, opts, path, method, q);
  if (path === ROUTES.peers) {
    allow(method, 'POST');
    noParams(q, []);
    if (!opts.peers) throw new RouteError('this daemon does not keep a peer cache', 501);
    const hashes = parsePeersBody(await readBody(req, PEERS_BODY_MAX));
    return sendJson(res, 200, opts.peers(hashes));
  }
  throw new RouteError(`no such control route: ${method} ${path}`, 404);
}

/** Bytes a `POST /peers` body may hold: MAX_PEERS_HASHES quoted hashes with room for spacing. */
const PEERS_BODY_MAX = MAX_PEERS_HASHES * 80 + 1024;

/**
 * The whole request body, at most `max` bytes (more is a usage error; the rest of the body is then
 * left for sendError to drain, so the client reads the reply rather than a reset).
 */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const onData = (c: Buffer) => {
      n += c.length;
      if (n > max) {
        done();
        req.pause();
        reject(new UsageError(`request body larger than ${max} bytes`));
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** `{"hashes": ["<64 hex>", …]}` (at most MAX_PEERS_HASHES) → normalised, de-duplicated hashes. */
export function parsePeersBody(text: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError('body must be JSON: {"hashes": ["<sha256>", …]}');
  }
  const list = (json as { hashes?: unknown } | null)?.hashes;
  if (typeof json !== 'object' || json === null || Array.isArray(json) || !Array.isArray(list)) {
    throw new UsageError('body must be {"hashes": ["<sha256>", …]}');
  }
  if (list.length > MAX_PEERS_HASHES) throw new UsageError(`at most ${MAX_PEERS_HASHES} hashes per request, got ${list.length}`);
  const out = new Set<string>();
  for (const h of list) {
    if (typeof h !== 'string') throw new UsageError('every entry of "hashes" must be a string');
    out.add(normaliseSha256(h));
  }
  return [...out];
}

function claimKind(v: string | undefined): 'bid' | 'fetching' {
  if (v === 'bid' || v === 'fetching') return v;
  throw new UsageError(`query "kind" must be bid or fetching, got ${JSON.stringify(v?.slice(0, 40))}`);
}

function claimTtl(q: Map<string, string>): number {
  const v = q.get('ttl_ms');
  if (v === undefined) throw new UsageError('query "ttl_ms" is required');
  if (!/^\d{1,6}$/.test(v) || Number(v) < CLAIM_TTL_MIN_MS || Number(v) > CLAIM_TTL_MAX_MS) {
    throw new UsageError(`ttl_ms must be a whole number from ${CLAIM_TTL_MIN_MS} to ${CLAIM_TTL_MAX_MS}, got ${JSON.stringify(v.slice(0, 40))}`);
  }
  return Number(v);
}

/** Claims (api.ts): create, renew, release. Each is tied to the connection it came over. */
function handleClaims(req: IncomingMessage, res: ServerResponse, opts: ControlServerOptions, path: string, method: string, q: Map<string, string>): void {
  const table = opts.claims;
  if (!table) throw new RouteError('this daemon does not keep fetch claims', 501);
  if (path === ROUTES.claims) {
    allow(method, 'POST');
    noParams(q, ['sha256', 'kind', 'ttl_ms']);
    const raw = q.get('sha256');
    if (raw === undefined) throw new UsageError('query "sha256" is required');
    const info = table.create(normaliseSha256(raw), claimKind(q.get('kind')), claimTtl(q), req.socket);
    return sendJson(res, 201, info);
  }
  const id = path.slice(ROUTES.claims.length + 1);
  if (!/^[0-9a-f]{16}$/.test(id)) throw new UsageError('malformed claim id');
  if (method === 'DELETE') {
    noParams(q, []);
    if (!table.release(id)) throw new NotFoundError(`no claim ${id} (it lapsed or was released)`);
    return sendJson(res, 200, { released: true });
  }
  allow(method, 'POST');
  noParams(q, ['ttl_ms', 'kind']);
  const info = table.renew(id, claimTtl(q), q.has('kind') ? claimKind(q.get('kind')) : undefined, req.socket);
  if (!info) throw new NotFoundError(`no claim ${id} (it lapsed or was released)`);
  return sendJson(res, 200, info);
}

function allow(method: string, want: string): void {
  if (method !== want) throw new RouteError(`method ${method} not allowed here (use ${want})`, 405);
}

/** Query values by name; a name given twice is a usage error. */
function parseQuery(url: URL): Map<string, string> {
  const q = new Map<string, string>();
  for (const [k, v] of url.searchParams) {
    if (q.has(k)) throw new UsageError(`query "${k}" given twice`);
    q.set(k, v);
  }
  return q;
}

function noParams(q: Map<string, string>, allowed: string[]): void {
  for (const k of q.keys()) if (!allowed.includes(k)) throw new UsageError(`unknown query "${k}"`);
}

function flag(q: Map<string, string>, key: string): boolean {
  const v = q.get(key);
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new UsageError(`query "${key}" must be 1 or 0, got ${JSON.stringify(v?.slice(0, 40))}`);
}

/** A whole number from 0 to MAX_COUNT (upstream keeps both as uint32; 0 = never / unlimited). */
export function parseCount(value: string, what: string): number {
  const e = countError(value, what);
  if (e) throw new UsageError(e);
  return Number(value);
}

function publishOptions(q: Map<string, string>): PublishOptions {
  noParams(q, ['name', 'max_age', 'share_limit', 'next_reboot', 'cmdline', 'sha256']);
  const name = q.get('name');
  if (name === undefined) throw new UsageError('query "name" is required');
  const p: PublishOptions = { basename: validateBasename(name) };
  if (q.has('max_age')) p.maxAge = parseCount(q.get('max_age')!, 'max_age');
  if (q.has('share_limit')) p.shareLimit = parseCount(q.get('share_limit')!, 'share_limit');
  if (q.has('next_reboot')) p.nextReboot = flag(q, 'next_reboot');
  if (q.has('cmdline')) {
    const c = q.get('cmdline')!;
    if (c.length > 4096) throw new UsageError('cmdline longer than 4096 characters');
    p.cmdline = c;
  }
  if (q.has('sha256')) p.expectedSha256 = normaliseSha256(q.get('sha256')!);
  return p;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown, log: Logger): void {
  const e = err instanceof PassimError ? err : undefined;
  const status = e?.httpStatus ?? 500;
  const body: ErrorReply = {
    error: { code: e?.code ?? 'PASSIM_ERROR', message: err instanceof Error ? err.message : String(err) },
  };
  if (status >= 500) log.warn(`control: ${body.error.message}`);
  else log.debug(`control: ${body.error.code}: ${body.error.message}`);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const req = res.req;
  const sock = req?.socket ?? null;
  const unread = Boolean(req && !req.complete);
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
  if (unread && sock && !sock.destroyed) {
    // a refused upload: read and drop the rest so the client gets to read this reply (closing now
    // could reset the connection before it does), but give up on a client that never stops
    const t = setTimeout(() => sock.destroy(), 10_000);
    t.unref();
    const clear = () => clearTimeout(t);
    req.once('end', clear);
    sock.once('close', clear);
    req.resume();
  }
}
