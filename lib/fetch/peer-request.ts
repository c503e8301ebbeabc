/**
 * One GET to a peer over a plain TLS socket that reads straight into our own buffers (net's
 * `onread`), instead of through undici. Receiving a body through undici's parser and two layers of
 * Node streams costs about four times the CPU per byte of this (a GiB arrives as 65,536 TLS
 * records, each a trip through both); on two cores that CPU is taken from the peer's TLS, the
 * hashing and the writing. Measured on the peer-download bench LAN (256 MiB, CPU of the receiving
 * process, discarding the body): undici `request` 1.1 s user, this 0.25 s.
 *
 * Only for peers (and the local daemon): certificates are NOT verified (the sha256 is the trust, as
 * with dispatchers.ts's peerAgent), and only what passim peers send is accepted: HTTP/1.x, a body
 * framed by Content-Length (a 200 without one is refused, as verifiedDownload refuses it for
 * peers), one request per connection (`Connection: close`). Anything else — a malformed head, too
 * large a head, chunked framing — is a SourceError, as undici's would be.
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
    this.conn.socket.pause();
    return this;
  }

  resume(): this {
    this.#paused = false;
    if (this.#flowing && !this.#done) this.conn.socket.resume();
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
    else if (!this.#paused) this.conn.socket.resume();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#error !== undefined) this.emit('error', this.#error);
    else this.emit('end');
  }
}

/** Parses a response head (status line and header lines, without the blank line). */
export function parseHead(text: string): { statusCode: number; headers: Record<string, string | string[]> } {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/.exec(lines[0]!);
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
  return { statusCode: Number(m[1]), headers };
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

interface Conn {
  socket: TLSSocket;
  close(): void;
}

/** GET `url` (https) from a peer; resolves at the response head, the body then streams. */
export function peerRequest(url: URL, o: PeerRequestOptions): Promise<PeerResponse> {
  if (url.protocol !== 'https:') return Promise.reject(new SourceError('redirect', `unsupported URL scheme ${url.protocol}`));
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return new Promise<PeerResponse>((resolve, reject) => {
    let slab = Buffer.allocUnsafe(SLAB);
    let off = 0;
    let state: 'connect' | 'head' | 'body' | 'done' = 'connect';
    let head: Buffer[] = [];
    let headLen = 0;
    let body: PeerBody | undefined;
    let left = 0;
    let received = 0;
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
    const fail = (err: unknown) => {
      if (state === 'done') return;
      const before = state;
      state = 'done';
      clearTimer();
      o.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (before === 'body') body!.fail(err);
      else reject(err);
    };
    const finish = () => {
      state = 'done';
      clearTimer();
      o.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      body!.end();
    };
    const onAbort = () => fail(o.signal.reason ?? new SourceError('aborted', 'aborted'));

    const onBody = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      // bytes after Content-Length are not the body: dropped with the connection
      const c = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= c.length;
      received += c.length;
      body!.push(c);
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
      head = [];
      clearTimer();
      state = 'body';
      left = length ?? 0;
      body = new PeerBody(conn);
      // the body flows once a consumer listens (PeerBody); until then nothing more is read
      socket.pause();
      const rest = all.subarray(end + 4);
      resolve({ statusCode: parsed.statusCode, headers: parsed.headers, body });
      if (left === 0) finish();
      else {
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

    const socket = connect({
      host,
      port: Number(url.port || 443),
      servername: isIP(host) ? undefined : host,
      rejectUnauthorized: false,
      onread: {
        buffer: () => {
          if (slab.length - off < MIN_ROOM) {
            slab = Buffer.allocUnsafe(SLAB);
            off = 0;
          }
          return slab.subarray(off);
        },
        callback: (n: number, buf: Uint8Array) => {
          const chunk = (buf as Buffer).subarray(0, n);
          off += n;
          if (state === 'body') onBody(chunk);
          else if (state === 'head') onHead(chunk);
          return true;
        },
      },
      // onread is net.Socket's option, which tls.connect passes on (its typings omit it)
    } as ConnectionOptions);
    const conn: Conn = { socket, close: () => fail(new SourceError('aborted', 'aborted')) };
    socket.on('error', (err) => fail(err));
    socket.on('end', () => {
      if (state === 'body' || state === 'head') fail(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }));
    });
    socket.on('close', () => {
      if (state !== 'done') fail(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }));
    });
    timer = setTimeout(() => fail(new SourceError('timeout', 'connect/TLS handshake timed out')), o.connectTimeoutMs);
    socket.once('secureConnect', () => {
      if (state !== 'connect') return;
      clearTimer();
      state = 'head';
      const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, ...Object.entries(o.headers).map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''];
      socket.write(lines.join('\r\n'));
      timer = setTimeout(() => fail(new SourceError('timeout', 'no response headers in time')), o.headersTimeoutMs);
    });
    if (o.signal.aborted) return onAbort();
    o.signal.addEventListener('abort', onAbort, { once: true });
  });
}
