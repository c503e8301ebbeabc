/**
 * One GET to a peer over a plain TLS socket that reads straight into our own buffers (net's
 * `onread`), instead of through undici. Receiving a body through undici's parser and two layers of
 * Node streams costs about four times the CPU per byte of this (a GiB arrives as 65,536 TLS
 * records, each a trip through both); on two cores that CPU is taken from the peer's TLS, the
 * hashing and the writing. Measured on the peer-download bench LAN (256 MiB, CPU of the receiving
 * process, discarding the body): undici `request` 1.1 s user, this 0.25 s.
 *
 * Only for peers (and the local daemon): certificates are NOT verified (the sha256 is the trust;
 * dispatchers.ts keeps the CDN's verifying pool apart), and only what passim peers send is
 * accepted: HTTP/1.x and a body framed by Content-Length (a 200 without one is refused, as
 * verifiedDownload refuses it for peers). Anything else — a malformed head, too large a head,
 * chunked framing — is a SourceError, as undici's would be. A single fetch sends one request per
 * connection (`Connection: close`); a batch passes a PeerConnections, which keeps connections alive
 * from one download to the next and resumes TLS sessions.
 *
 * The response mimics what verifiedDownload reads of undici's: `statusCode`, lower-case `headers`,
 * and a `body` emitting 'data' / 'end' / 'error' with pause/resume/destroy. Chunks are views into
 * 1 MiB slabs that are never reused, so a consumer may keep them (InlineHashWriter queues them).
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { SourceError } from './source-error.js';

export interface PeerRequestOptions {
  signal: AbortSignal;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  /** the longest gap between two body chunks while the consumer is reading */
  bodyTimeoutMs: number;
  maxHeaderSize: number;
  headers: Record<string, string>;
}

export interface PeerResponse {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: PeerBody;
}

const SLAB = 1024 * 1024;
/** a read gets at least this much room (a TLS record is at most 16 KiB of plaintext) */
const MIN_ROOM = 64 * 1024;

/** The body of a PeerResponse: 'data' (Buffer), 'end', 'error'; pause/resume/destroy. */
export class PeerBody extends EventEmitter {
  /** body bytes that came before anyone listened */
  #early: Buffer[] = [];
  #flowing = false;
  #ended = false;
  #error: unknown;
  #done = false;
  #paused = false;
  constructor(private readonly conn: Conn) {
    super();
    this.on('newListener', (ev) => {
      if (ev === 'data' && !this.#flowing) {
        this.#flowing = true;
        queueMicrotask(() => this.#flow());
      }
    });
  }

  get paused(): boolean {
    return this.#paused;
  }

  pause(): this {
    this.#paused = true;
    this.conn.pause();
    return this;
  }

  resume(): this {
    this.#paused = false;
    if (this.#flowing && !this.#done) this.conn.resume();
    return this;
  }

  destroy(): this {
    this.conn.close();
    return this;
  }

  /** from the connection: body bytes, in order */
  push(chunk: Buffer): void {
    if (!this.#flowing) this.#early.push(chunk);
    else this.emit('data', chunk);
  }

  /** from the connection: no more body */
  end(): void {
    if (this.#done) return;
    this.#ended = true;
    if (this.#flowing && this.#early.length === 0) this.#finish();
  }

  fail(err: unknown): void {
    if (this.#done) return;
    this.#error = err;
    if (this.listenerCount('error') > 0) this.#finish();
  }

  #flow(): void {
    const early = this.#early;
    this.#early = [];
    for (const c of early) this.emit('data', c);
    if (this.#ended || this.#error !== undefined) this.#finish();
    else if (!this.#paused) this.conn.resume();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#error !== undefined) this.emit('error', this.#error);
    else this.emit('end');
  }
}

/** Parses a response head (status line and header lines, without the blank line). */
export function parseHead(text: string): { statusCode: number; minor: number; headers: Record<string, string | string[]> } {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/.exec(lines[0]!);
  if (!m) throw new SourceError('network', 'bad HTTP response (status line)');
  const headers: Record<string, string | string[]> = {};
  for (const line of lines.slice(1)) {
    // field-name token, then the value: no obs-fold, no control characters but tab
    const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*$/.exec(line);
    if (!h) throw new SourceError('network', 'bad HTTP response (header line)');
    const k = h[1]!.toLowerCase();
    const v = h[2]!;
    const prev = headers[k];
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return { statusCode: Number(m[2]), minor: Number(m[1]), headers };
}

/** The Content-Length of a head: undefined when absent; a SourceError when malformed or ambiguous. */
function contentLengthOf(headers: Record<string, string | string[]>): number | undefined {
  const v = headers['content-length'];
  if (v === undefined) return undefined;
  const all = (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(',')).map((x) => x.trim());
  if (!all.every((x) => /^\d{1,16}$/.test(x)) || new Set(all).size !== 1) {
    throw new SourceError('length', `bad Content-Length ${JSON.stringify(String(v).slice(0, 40))}`);
  }
  return Number(all[0]);
}

/**
 * The connection as a PeerBody sees it while its response lasts: flow control, and closing it
 * (which fails the body). Once the response is complete, none of these touch the connection.
 */
interface Conn {
  pause(): void;
  resume(): void;
  close(): void;
}

/** Idle kept-alive connections are closed after this (the daemon closes its own after 5 s). */
const IDLE_MS = 4000;

/** A reused connection that the peer had closed before it answered: the request is sent again on a new one. */
class StaleConnection extends Error {}

/**
 * One TLS connection to a peer, reading into 1 MiB slabs of its own. The request using it sets
 * `onData` / `onGone`; between requests (idle in a PeerConnections) neither is set, and any byte
 * or close simply ends it.
 */
class PeerSocket {
  readonly socket: TLSSocket;
  readonly key: string;
  #slab = Buffer.allocUnsafe(SLAB);
  #off = 0;
  /** the connection has failed or closed */
  dead = false;
  /** the request under way: its bytes, and the connection's end */
  onData: ((chunk: Buffer) => void) | undefined;
  onGone: ((err: Error) => void) | undefined;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(host: string, port: number, key: string, session: Buffer | undefined, onSession: ((s: Buffer) => void) | undefined) {
    this.key = key;
    this.socket = connect({
      host,
      port,
      servername: isIP(host) ? undefined : host,
      rejectUnauthorized: false,
      session,
      onread: {
        buffer: () => {
          if (this.#slab.length - this.#off < MIN_ROOM) {
            this.#slab = Buffer.allocUnsafe(SLAB);
            this.#off = 0;
          }
          return this.#slab.subarray(this.#off);
        },
        callback: (n: number, buf: Uint8Array) => {
          const chunk = (buf as Buffer).subarray(0, n);
          this.#off += n;
          if (this.onData) this.onData(chunk);
          else this.destroy(); // nothing is owed between requests
          return true;
        },
      },
      // onread is net.Socket's option, which tls.connect passes on (its typings omit it)
    } as ConnectionOptions);
    if (onSession) this.socket.on('session', onSession);
    const gone = (err: Error) => {
      this.dead = true;
      this.onGone?.(err);
    };
    this.socket.on('error', gone);
    this.socket.on('end', () => gone(otherSideClosed()));
    this.socket.on('close', () => gone(otherSideClosed()));
  }

  destroy(): void {
    this.dead = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.socket.destroy();
  }
}

function otherSideClosed(): Error {
  return Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
}

/**
 * Kept-alive connections to peers for a batch of downloads: a connection whose response was
 * complete and reusable (HTTP/1.1, Content-Length framing, no `Connection: close`) waits here for
 * the next request to the same peer, unreferenced (it never holds the process open) and at most
 * IDLE_MS. TLS sessions are kept per peer too, so a new connection resumes rather than repeats a
 * full handshake. The batch bounds how many downloads run per peer, and so how many connections.
 */
export class PeerConnections {
  readonly #idle = new Map<string, PeerSocket[]>();
  readonly #sessions = new Map<string, Buffer>();
  #closed = false;
  /** connections opened, and requests sent on a reused one (tests, tracing) */
  opened = 0;
  reused = 0;

  constructor(readonly idleMs = IDLE_MS) {}

  /** @internal an idle, still open connection to `key` */
  take(key: string): PeerSocket | undefined {
    const list = this.#idle.get(key);
    while (list?.length) {
      const c = list.pop()!;
      if (c.idleTimer) clearTimeout(c.idleTimer);
      c.idleTimer = undefined;
      if (c.dead) continue;
      c.socket.ref();
      this.reused++;
      return c;
    }
    return undefined;
  }

  /** @internal a connection whose response is complete, for the next request to its peer */
  give(c: PeerSocket): void {
    if (this.#closed || c.dead) return c.destroy();
    c.onData = undefined;
    c.onGone = undefined;
    c.socket.resume();
    c.socket.unref();
    let list = this.#idle.get(c.key);
    if (!list) this.#idle.set(c.key, (list = []));
    list.push(c);
    c.idleTimer = setTimeout(() => {
      c.destroy();
      const i = list.indexOf(c);
      if (i >= 0) list.splice(i, 1);
    }, this.idleMs);
    c.idleTimer.unref();
  }

  /** @internal */
  open(host: string, port: number, key: string): PeerSocket {
    this.opened++;
    return new PeerSocket(host, port, key, this.#closed ? undefined : this.#sessions.get(key), (s) => {
      if (!this.#closed) this.#sessions.set(key, s);
    });
  }

  /** Closes every idle connection; later responses close theirs. */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const c of list.splice(0)) c.destroy();
    this.#idle.clear();
    this.#sessions.clear();
  }
}

/**
 * GET `url` (https) from a peer; resolves at the response head, the body then streams. With `pool`,
 * an idle connection to the peer is reused (and the request sent once more on a new one if the
 * peer had closed it meanwhile), and a complete response leaves its connection in the pool;
 * without, the connection serves this one request (`Connection: close`).
 */
export async function peerRequest(url: URL, o: PeerRequestOptions, pool?: PeerConnections): Promise<PeerResponse> {
  if (url.protocol !== 'https:') throw new SourceError('redirect', `unsupported URL scheme ${url.protocol}`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port || 443);
  const key = `${host}|${port}`;
  const idle = pool?.take(key);
  if (idle) {
    try {
      return await exchange(idle, true, url, o, pool);
    } catch (err) {
      if (!(err instanceof StaleConnection)) throw err;
    }
  }
  const fresh = pool ? pool.open(host, port, key) : new PeerSocket(host, port, key, undefined, undefined);
  return exchange(fresh, false, url, o, pool);
}

/** One request and its response on `c` (a new connection, or a reused one when `reused`). */
function exchange(c: PeerSocket, reused: boolean, url: URL, o: PeerRequestOptions, pool: PeerConnections | undefined): Promise<PeerResponse> {
  const { socket } = c;
  return new Promise<PeerResponse>((resolve, reject) => {
    let state: 'connect' | 'head' | 'body' | 'done' = 'connect';
    let head: Buffer[] = [];
    let headLen = 0;
    let body: PeerBody | undefined;
    let left = 0;
    let received = 0;
    /** the connection may serve another request once this response is complete */
    let keep = false;
    let timer: NodeJS.Timeout | undefined;
    let stallTicks = 0;
    let lastSeen = 0;

    const clearTimer = () => {
      if (timer) {
        clearTimeout(timer);
        clearInterval(timer);
      }
      timer = undefined;
    };
    const detach = () => {
      state = 'done';
      clearTimer();
      o.signal.removeEventListener('abort', onAbort);
      c.onData = undefined;
      c.onGone = undefined;
    };
    const fail = (err: unknown) => {
      if (state === 'done') return;
      const before = state;
      detach();
      c.destroy();
      if (before === 'body') body!.fail(err);
      // a reused connection that ends before any answer: the peer had closed it; send again
      else if (reused && headLen === 0 && before !== 'connect' && !o.signal.aborted && !(err instanceof SourceError)) reject(new StaleConnection());
      else reject(err);
    };
    const finish = () => {
      detach();
      if (keep && pool) pool.give(c);
      else c.destroy();
      body!.end();
    };
    const onAbort = () => fail(o.signal.reason ?? new SourceError('aborted', 'aborted'));

    const onBody = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      // bytes after Content-Length are not the body: dropped with the connection
      if (chunk.length > left) keep = false;
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      received += part.length;
      body!.push(part);
      if (left === 0 && state === 'body') finish();
    };

    const onHead = (chunk: Buffer) => {
      head.push(chunk);
      headLen += chunk.length;
      const all = head.length === 1 ? chunk : Buffer.concat(head, headLen);
      head = [all];
      const end = all.indexOf('\r\n\r\n', Math.max(0, headLen - chunk.length - 3));
      if (end < 0) {
        if (headLen > o.maxHeaderSize) fail(new SourceError('too-large', 'response headers too large'));
        return;
      }
      if (end > o.maxHeaderSize) return fail(new SourceError('too-large', 'response headers too large'));
      let parsed;
      let length;
      try {
        parsed = parseHead(all.toString('latin1', 0, end));
        if (parsed.headers['transfer-encoding'] !== undefined) throw new SourceError('length', 'Transfer-Encoding from a peer (passim peers send Content-Length)');
        length = contentLengthOf(parsed.headers);
        if (length === undefined && parsed.statusCode === 200) throw new SourceError('length', 'no Content-Length');
      } catch (err) {
        return fail(err);
      }
      keep = pool !== undefined && parsed.minor === 1 && length !== undefined && !connectionClose(parsed.headers);
      head = [];
      clearTimer();
      state = 'body';
      left = length ?? 0;
      body = new PeerBody({
        pause: () => { if (state === 'body') socket.pause(); },
        resume: () => { if (state === 'body') socket.resume(); },
        close: () => fail(new SourceError('aborted', 'aborted')),
      });
      // the body flows once a consumer listens (PeerBody); until then nothing more is read
      socket.pause();
      const rest = all.subarray(end + 4);
      resolve({ statusCode: parsed.statusCode, headers: parsed.headers, body });
      if (left === 0) {
        if (rest.length) keep = false;
        finish();
      } else {
        onBody(rest);
        if (state === 'body') armBodyTimer();
      }
    };

    const armBodyTimer = () => {
      if (o.bodyTimeoutMs <= 0) return;
      // checked twice per bodyTimeoutMs: stalled = no byte for two checks while the consumer reads
      timer = setInterval(() => {
        if (body!.paused || received !== lastSeen) {
          lastSeen = received;
          stallTicks = 0;
          return;
        }
        if (++stallTicks >= 2) fail(new SourceError('timeout', 'body stalled'));
      }, Math.max(1, o.bodyTimeoutMs / 2));
      timer.unref();
    };

    const send = () => {
      state = 'head';
      const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, ...Object.entries(o.headers).map(([k, v]) => `${k}: ${v}`)];
      if (!pool) lines.push('Connection: close');
      socket.write(lines.concat('', '').join('\r\n'));
      timer = setTimeout(() => fail(new SourceError('timeout', 'no response headers in time')), o.headersTimeoutMs);
    };

    c.onData = (chunk) => {
      if (state === 'body') onBody(chunk);
      else if (state === 'head') onHead(chunk);
    };
    c.onGone = (err) => {
      if (state === 'body' || state === 'head' || state === 'connect') fail(err);
    };
    if (o.signal.aborted) return onAbort();
    o.signal.addEventListener('abort', onAbort, { once: true });
    if (reused) {
      if (!c.dead) return send();
      state = 'head';
      return fail(otherSideClosed());
    }
    timer = setTimeout(() => fail(new SourceError('timeout', 'connect/TLS handshake timed out')), o.connectTimeoutMs);
    socket.once('secureConnect', () => {
      if (state !== 'connect') return;
      clearTimer();
      send();
    });
  });
}

/** `Connection: close` among the response's connection options */
function connectionClose(headers: Record<string, string | string[]>): boolean {
  const v = headers.connection;
  if (v === undefined) return false;
  return (Array.isArray(v) ? v : [v]).some((x) => x.split(',').some((t) => t.trim().toLowerCase() === 'close'));
}
