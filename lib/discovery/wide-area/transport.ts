/**
 * Sends a DNS message to one server and waits for the answer with the same ID: over UDP for small
 * messages (retried on loss; TCP when the answer comes back truncated), over one TCP connection
 * (2-byte length prefix, one message at a time) for large ones and for batches. Counts the bytes
 * it sends and receives, for `passim dump` and the bench.
 */
import { createSocket } from 'node:dgram';
import { connect, isIPv6, type Socket } from 'node:net';
import { formatServerAddress, type ServerAddress } from '../../core/server-address.js';
import { readHeader } from './update-message.js';

/** Largest message sent over UDP: no fragmentation on any usual path (the EDNS default of DNS flag day 2020). */
export const MAX_UDP = 1232;

export type { ServerAddress };

export interface TrafficCounter { sent: number; received: number }

export class DnsTimeoutError extends Error {}

export async function exchangeUdp(server: ServerAddress, msg: Buffer, opts: { timeoutMs: number; tries?: number; traffic?: TrafficCounter }): Promise<Buffer> {
  const sock = createSocket(isIPv6(server.address) ? 'udp6' : 'udp4');
  const id = msg.readUInt16BE(0);
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      let tries = opts.tries ?? 3;
      let timer: NodeJS.Timeout | undefined;
      const send = () => {
        if (tries-- <= 0) { reject(new DnsTimeoutError(`no answer from ${fmt(server)} in ${opts.timeoutMs * (opts.tries ?? 3)} ms`)); return; }
        sock.send(msg, server.port, server.address, (err) => {
          if (err) { reject(err); return; }
          if (opts.traffic) opts.traffic.sent += msg.length;
        });
        timer = setTimeout(send, opts.timeoutMs);
      };
      sock.on('error', (err) => { clearTimeout(timer); reject(err); });
      sock.on('message', (reply, rinfo) => {
        if (rinfo.port !== server.port || reply.length < 12 || reply.readUInt16BE(0) !== id) return;
        if (opts.traffic) opts.traffic.received += reply.length;
        clearTimeout(timer);
        resolve(reply);
      });
      send();
    });
  } finally {
    sock.close();
  }
}

/** One TCP connection to the server; send() waits for each answer before the next message goes. */
export class TcpSession {
  private sock?: Socket;
  private buf = Buffer.alloc(0);
  private waiter?: { id: number; resolve(b: Buffer): void; reject(e: Error): void };
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private failure?: Error;

  constructor(private readonly server: ServerAddress, private readonly opts: { timeoutMs: number; traffic?: TrafficCounter }) {}

  private open(): Promise<Socket> {
    if (this.sock && !this.sock.destroyed) return Promise.resolve(this.sock);
    this.failure = undefined;
    this.buf = Buffer.alloc(0);
    return new Promise((resolve, reject) => {
      const s = connect({ host: this.server.address, port: this.server.port });
      const t = setTimeout(() => { s.destroy(); reject(new DnsTimeoutError(`TCP connect to ${fmt(this.server)} timed out`)); }, this.opts.timeoutMs);
      s.once('connect', () => { clearTimeout(t); this.sock = s; resolve(s); });
      s.on('error', (err) => {
        clearTimeout(t);
        this.failure = err;
        this.waiter?.reject(err);
        this.waiter = undefined;
        reject(err);
      });
      s.on('close', () => {
        const w = this.waiter;
        this.waiter = undefined;
        w?.reject(this.failure ?? new Error(`${fmt(this.server)} closed the TCP connection`));
      });
      s.on('data', (d: Buffer) => this.onData(d));
    });
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 2) {
      const len = this.buf.readUInt16BE(0);
      if (this.buf.length < 2 + len) return;
      const msg = this.buf.subarray(2, 2 + len);
      this.buf = this.buf.subarray(2 + len);
      if (this.opts.traffic) this.opts.traffic.received += len + 2;
      if (this.waiter && msg.length >= 12 && msg.readUInt16BE(0) === this.waiter.id) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(Buffer.from(msg));
      }
    }
  }

  send(msg: Buffer): Promise<Buffer> {
    const run = async () => {
      if (this.closed) throw new Error('TCP session closed');
      if (msg.length > 0xffff) throw new Error(`DNS message of ${msg.length} bytes is too large for TCP`);
      const s = await this.open();
      return new Promise<Buffer>((resolve, reject) => {
        const t = setTimeout(() => {
          this.waiter = undefined;
          s.destroy();
          reject(new DnsTimeoutError(`no answer from ${fmt(this.server)} over TCP in ${this.opts.timeoutMs} ms`));
        }, this.opts.timeoutMs);
        this.waiter = {
          id: msg.readUInt16BE(0),
          resolve: (b) => { clearTimeout(t); resolve(b); },
          reject: (e) => { clearTimeout(t); reject(e); },
        };
        const len = Buffer.alloc(2);
        len.writeUInt16BE(msg.length);
        s.write(Buffer.concat([len, msg]));
        if (this.opts.traffic) this.opts.traffic.sent += msg.length + 2;
      });
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  close(): void {
    this.closed = true;
    this.sock?.destroy();
  }
}

/** UDP when it fits, TCP otherwise or when the UDP answer is truncated. */
export async function exchange(server: ServerAddress, msg: Buffer, opts: { timeoutMs: number; traffic?: TrafficCounter; tcp?: TcpSession }): Promise<Buffer> {
  if (msg.length <= MAX_UDP && !opts.tcp) {
    const reply = await exchangeUdp(server, msg, opts);
    if ((reply.readUInt16BE(2) & 0x0200) === 0) return reply;
  }
  const own = opts.tcp === undefined;
  const tcp = opts.tcp ?? new TcpSession(server, opts);
  try {
    return await tcp.send(msg);
  } finally {
    if (own) tcp.close();
  }
}

export const fmt = formatServerAddress;

export function isResponseTo(reply: Buffer, id: number): boolean {
  const h = readHeader(reply);
  return h.qr && h.id === id;
}
