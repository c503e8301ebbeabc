/**
 * Loopback stand-ins for peers, CDNs and the local daemon's control socket, for the fetch tests.
 * Servers are raw TLS sockets writing raw HTTP/1.1, so a test can make them misbehave in any way
 * (short bodies, drips, endless headers, never handshaking).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import assert from 'node:assert/strict';
import type { Browse, BrowseOptions, Peer } from '../../lib/discovery/types.js';
import { SourceError } from '../../lib/fetch/source-error.js';
import { generateCertificate } from '../../lib/http/tls.js';

export interface KeyCert {
  key: string;
  cert: string;
  certFile: string;
}

/**
 * A self-signed P-256 certificate for 127.0.0.1 (and localhost), made in-process the way the daemon
 * makes its own (lib/http/tls.ts), so no openssl is needed; the PEM is also written to `certFile`
 * for tools that take a CA file (curl, apt, PASSIM_CDN_CA).
 */
export async function makeCert(): Promise<KeyCert> {
  const { key, cert } = await generateCertificate('localhost');
  const certFile = join(mkdtempSync(join(tmpdir(), 'passim-fetch-cert-')), 'cert.pem');
  writeFileSync(certFile, cert);
  return { key, cert, certFile };
}

/** The SourceError `p` fails with (an assertion error if it succeeds or fails otherwise). */
export async function refused(p: Promise<unknown>): Promise<SourceError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SourceError, `expected a SourceError, got ${String(err)}`);
    return err;
  }
  assert.fail('it succeeded');
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

export interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** which connection of the server's it came on (1, 2, …) */
  conn: number;
  /** that connection resumed an earlier TLS session */
  resumed: boolean;
}

export type Handler = (req: Req, sock: TLSSocket) => void;

export interface TestServer {
  port: number;
  url(path: string): string;
  requests: Req[];
  close(): Promise<void>;
  /** resolves once the server's connection number `conn` (Req.conn) has closed (startServer only) */
  connClosed?(conn: number): Promise<void>;
}

/** Writes a whole response and closes the connection. */
export function respond(sock: Socket, status: number, headers: Record<string, string | number>, body?: Buffer | string): void {
  const lines = [`HTTP/1.1 ${status} X`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''];
  sock.write(lines.join('\r\n'));
  if (body !== undefined) sock.write(body);
  sock.end();
}

/** Writes only the status line and headers; the handler writes the body itself. */
export function head(sock: Socket, status: number, headers: Record<string, string | number>): void {
  const lines = [`HTTP/1.1 ${status} X`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''];
  sock.write(lines.join('\r\n'));
}

function track(server: NetServer): Set<Socket> {
  const socks = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
  });
  return socks;
}

/**
 * An HTTPS server on 127.0.0.1:0 that hands each parsed request to `handler` with the raw socket:
 * the first request of each connection, or with `keepAlive` every request that follows on it.
 */
export async function startServer(kc: KeyCert, handler: Handler, o: { keepAlive?: boolean } = {}): Promise<TestServer> {
  const requests: Req[] = [];
  let conns = 0;
  const closed = new Map<number, Promise<void>>();
  const server = createTlsServer({ key: kc.key, cert: kc.cert }, (sock) => {
    sock.on('error', () => {});
    const conn = ++conns;
    closed.set(conn, new Promise<void>((resolve) => sock.once('close', () => resolve())));
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!o.keepAlive) sock.off('data', onData);
      const text = buf.slice(0, end);
      buf = buf.slice(end + 4);
      const [line, ...hs] = text.split('\r\n');
      const [method, path] = line.split(' ');
      const headers: Record<string, string> = {};
      for (const h of hs) {
        const i = h.indexOf(':');
        if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      const req = { method, path, headers, conn, resumed: sock.isSessionReused() };
      requests.push(req);
      handler(req, sock);
      if (o.keepAlive && buf.includes('\r\n\r\n')) onData(Buffer.alloc(0));
    };
    sock.on('data', onData);
  });
  server.on('tlsClientError', () => {});
  const socks = track(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: (p: string) => `https://127.0.0.1:${port}${p}`,
    requests,
    close: () => new Promise<void>((r) => {
      for (const s of socks) s.destroy();
      server.close(() => r());
    }),
    connClosed: (conn) => closed.get(conn) ?? Promise.reject(new Error(`no connection ${conn}`)),
  };
}

/** Accepts TCP connections and never says a word (a TLS handshake that never happens). */
export async function startBlackhole(): Promise<TestServer & { connections: () => number }> {
  let n = 0;
  const server = createNetServer(() => {
    n++;
  });
  const socks = track(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: (p: string) => `https://127.0.0.1:${port}${p}`,
    requests: [],
    connections: () => n,
    close: () => new Promise<void>((r) => {
      for (const s of socks) s.destroy();
      server.close(() => r());
    }),
  };
}

// ---- ready-made behaviours -------------------------------------------------------------------

export const honest = (data: Buffer): Handler => (_req, sock) =>
  respond(sock, 200, { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length }, data);

export const liar = (data: Buffer): Handler => (_req, sock) => {
  const wrong = Buffer.from(data);
  wrong[wrong.length >> 1] ^= 0xff;
  respond(sock, 200, { 'Content-Length': wrong.length }, wrong);
};

/** Declares the full length, sends 10 bytes less, closes. */
export const shortBody = (data: Buffer): Handler => (_req, sock) => {
  head(sock, 200, { 'Content-Length': data.length });
  sock.end(data.subarray(0, data.length - 10));
};

/** Declares 10 bytes less than it sends. */
export const longBody = (data: Buffer): Handler => (_req, sock) => {
  head(sock, 200, { 'Content-Length': data.length - 10 });
  sock.end(data);
};

/** Declares less, sends the file and then garbage beyond Content-Length. */
export const trailingGarbage = (data: Buffer): Handler => (_req, sock) => {
  head(sock, 200, { 'Content-Length': data.length });
  sock.end(Buffer.concat([data, Buffer.from('GARBAGE GARBAGE GARBAGE')]));
};

/** The right bytes, but no Content-Length (framed by closing the connection). */
export const noLength = (data: Buffer): Handler => (_req, sock) => {
  head(sock, 200, { 'Content-Type': 'application/octet-stream' });
  sock.end(data);
};

/** One byte every `ms`. */
export const drip = (data: Buffer, ms = 200): Handler => (_req, sock) => {
  head(sock, 200, { 'Content-Length': data.length });
  let i = 0;
  const t = setInterval(() => {
    if (sock.destroyed || i >= data.length) {
      clearInterval(t);
      return;
    }
    sock.write(data.subarray(i, i + 1));
    i++;
  }, ms);
  sock.on('close', () => clearInterval(t));
};

/** Redirects to itself forever. */
export const redirectLoop: Handler = (req, sock) => respond(sock, 302, { Location: req.path, 'Content-Length': 0 });

export const redirectTo = (url: string): Handler => (_req, sock) => respond(sock, 302, { Location: url, 'Content-Length': 0 });

export const html200: Handler = (_req, sock) => {
  const body = '<html><head><title>Welcome</title></head><body>captive portal</body></html>';
  respond(sock, 200, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(body) }, body);
};

export const status = (code: number): Handler => (_req, sock) => {
  const body = `<html><head><title>${code}</title></head><body>no</body></html>`;
  respond(sock, code, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(body) }, body);
};

/** Headers that never end. */
export const endlessHeaders: Handler = (_req, sock) => {
  sock.write('HTTP/1.1 200 OK\r\n');
  let n = 0;
  const t = setInterval(() => {
    if (sock.destroyed || n > 10_000) return clearInterval(t);
    sock.write(`X-Filler-${n++}: ${'a'.repeat(1000)}\r\n`);
  }, 1);
  sock.on('close', () => clearInterval(t));
};

/** A chunked body that never ends. */
export const endlessChunked: Handler = (_req, sock) => {
  head(sock, 200, { 'Transfer-Encoding': 'chunked' });
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const pump = () => {
    while (!sock.destroyed) {
      sock.write(`${chunk.length.toString(16)}\r\n`);
      sock.write(chunk);
      if (!sock.write('\r\n')) {
        sock.once('drain', pump);
        return;
      }
    }
  };
  pump();
};

// ---- browse ----------------------------------------------------------------------------------

export interface FakeBrowse {
  browse: Browse;
  calls: Array<{ sha256: string; opts?: BrowseOptions }>;
  /** true once a browse's signal was aborted */
  aborted: () => boolean;
}

/** Yields the given loopback peers in order; then ends, or with `hang` waits until aborted. */
export function fakeBrowse(ports: number[], opts: { hang?: boolean } = {}): FakeBrowse {
  const calls: FakeBrowse['calls'] = [];
  let aborted = false;
  const browse: Browse = (sha, o) => {
    calls.push({ sha256: sha, opts: o });
    return (async function* (): AsyncGenerator<Peer> {
      for (const [i, port] of ports.entries()) {
        yield { address: '127.0.0.1', port, instance: `Passim-${1000 + i}`, host: `peer${i}.local` };
      }
      if (opts.hang) {
        const signal = o?.signal;
        await new Promise<void>((resolve) => {
          if (!signal) return;
          if (signal.aborted) return resolve();
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
      if (o?.signal?.aborted) aborted = true;
    })();
  };
  return { browse, calls, aborted: () => aborted };
}

// ---- a fake local daemon (control socket) ----------------------------------------------------

export interface FakeDaemon {
  socketPath: string;
  published: Array<{ query: URLSearchParams; sha256: string; size: number }>;
  close(): Promise<void>;
}

export async function startFakeDaemon(opts: {
  dir: string;
  httpsPort: number;
  items?: Array<{ hash: string; basename: string; size: number }>;
  publishStatus?: number;
}): Promise<FakeDaemon> {
  const socketPath = join(opts.dir, 'passim.sock');
  const published: FakeDaemon['published'] = [];
  const json = (res: ServerResponse, code: number, body: unknown) => {
    const s = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
    res.end(s);
  };
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && u.pathname === '/status') {
      return json(res, 200, { version: 'test', status: 'running', port: opts.httpsPort, name: 'Passim-TEST', uri: `https://127.0.0.1:${opts.httpsPort}/`, downloadSaving: 0, carbonSaving: 0, items: 0 });
    }
    if (req.method === 'GET' && u.pathname === '/items') {
      return json(res, 200, (opts.items ?? []).map((i) => ({ ...i, path: '/x', maxAge: 86400, shareLimit: 5, shareCount: 0, created: 0, nextReboot: false, disabled: false, static: false })));
    }
    if (req.method === 'POST' && u.pathname === '/items') {
      const h = createHash('sha256');
      let size = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        size += c.length;
      });
      req.on('end', () => {
        published.push({ query: u.searchParams, sha256: h.digest('hex'), size });
        if (opts.publishStatus === 409) return json(res, 409, { error: { code: 'PASSIM_ITEM_EXISTS', message: 'exists' } });
        return json(res, 201, { hash: u.searchParams.get('sha256'), basename: u.searchParams.get('name'), size });
      });
      return;
    }
    json(res, 404, { error: { code: 'PASSIM_NOT_FOUND', message: 'no' } });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  return {
    socketPath,
    published,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'passim-fetch-'));
}

export function rmDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
}

/** Files in a dir that look like fetch temp files. */
export function tempFilesIn(d: string): string[] {
  return readdirSync(d).filter((f) => f.includes('.passim-') && f.endsWith('.tmp'));
}

/**
 * The servers and temp dirs a test file makes, all closed and removed by cleanup() (its `after`
 * hook): one place instead of a pair of arrays and a loop in every file.
 */
export class Fixtures {
  readonly servers: TestServer[] = [];
  readonly dirs: string[] = [];

  async server(kc: KeyCert, h: Handler): Promise<TestServer> {
    return this.track(await startServer(kc, h));
  }

  /** A server made elsewhere (startBlackhole …), closed with the rest. */
  track<T extends TestServer>(s: T): T {
    this.servers.push(s);
    return s;
  }

  dir(): string {
    const d = tempDir();
    this.dirs.push(d);
    return d;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.close()));
    for (const d of this.dirs) rmDir(d);
  }
}
