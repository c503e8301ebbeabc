/**
 * Shared pieces of the mDNS hardening tests: an in-process socket (no network), a logger that
 * notices swallowed exceptions, a counted fast-check runner with a fixed seed, and raw packet
 * builders for malformed input.
 */
import { EventEmitter } from 'node:events';
import type { RemoteInfo } from 'node:dgram';
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import { MdnsSocket, type Destination, type MdnsSocketOptions } from '../../lib/discovery/mdns-socket.js';
import type { Logger } from '../../lib/core/logger.js';

/** Fixed seed (PASSIM_FUZZ_SEED overrides it to explore). */
export const SEED = Number(process.env.PASSIM_FUZZ_SEED ?? 20240611);
/** Cases per input class: at least 10,000 (PASSIM_FUZZ_RUNS may raise it). */
export const RUNS = Math.max(10_000, Number(process.env.PASSIM_FUZZ_RUNS ?? 10_000));

export interface Sent { buf: Buffer; dest: Destination | undefined; t: number }

/**
 * An MdnsSocket that never binds: open() resolves at once, everything sent is recorded (and
 * announced with a 'sent' event); tests inject datagrams with receive(buf, rinfo), the same path
 * real datagrams take.
 */
export class FakeSocket extends MdnsSocket {
  readonly sent: Sent[] = [];
  readonly events = new EventEmitter();
  readonly opts: MdnsSocketOptions;

  constructor(opts: MdnsSocketOptions) {
    super(opts);
    this.opts = opts;
  }

  override open(): Promise<void> {
    return Promise.resolve();
  }

  override sendRaw(buf: Buffer, dest?: Destination): Promise<void> {
    const s = { buf, dest, t: Date.now() };
    this.sent.push(s);
    this.events.emit('sent', s);
    return Promise.resolve();
  }

  /** Resolves with the first send (from now on) matching pred. */
  waitSent(pred: (s: Sent) => boolean, timeoutMs = 5000, what = 'a packet'): Promise<Sent> {
    return new Promise((resolve, reject) => {
      const on = (s: Sent) => {
        if (!pred(s)) return;
        clearTimeout(t);
        this.events.off('sent', on);
        resolve(s);
      };
      const t = setTimeout(() => {
        this.events.off('sent', on);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.events.on('sent', on);
    });
  }
}

/** A factory that keeps the sockets it made. */
export function fakeFactory(): { sockets: FakeSocket[]; factory: (o: MdnsSocketOptions) => MdnsSocket; made: EventEmitter } {
  const sockets: FakeSocket[] = [];
  const made = new EventEmitter();
  return {
    sockets,
    made,
    factory: (o) => {
      const s = new FakeSocket(o);
      sockets.push(s);
      made.emit('socket', s);
      return s;
    },
  };
}

/**
 * A logger that records the messages the packet paths log when they catch an exception (so a
 * throw swallowed by a catch-all still counts as a failure) and anything at warn/error.
 */
export function trapLogger(): Logger & { caught: string[] } {
  const caught: string[] = [];
  const isCatch = (m: string) => /ignoring packet|dropped packet|cannot encode/.test(m);
  return {
    caught,
    error: (m) => caught.push(`error: ${m}`),
    warn: (m) => { if (isCatch(m)) caught.push(`warn: ${m}`); },
    info: () => {},
    debug: (m) => { if (isCatch(m)) caught.push(`debug: ${m}`); },
  };
}

export function rinfo(address: string, port = 5353, size = 0): RemoteInfo {
  return { address, family: address.includes(':') ? 'IPv6' : 'IPv4', port, size };
}

export interface ClassResult { label: string; cases: number; failures: number; extra: string }

/**
 * Runs one input class with the fixed seed: `pred` returns nothing or throws. Counts cases and
 * failures, prints them as a diagnostic and returns them (fast-check shrinks the first failure and
 * reports it with its seed and path).
 */
export async function runClass<T>(t: TestContext, label: string, arb: fc.Arbitrary<T>, pred: (v: T) => void | Promise<void>, extra: () => string = () => ''): Promise<ClassResult> {
  let cases = 0;
  let failures = 0;
  let error: unknown;
  try {
    await fc.assert(fc.asyncProperty(arb, async (v) => {
      cases++;
      try {
        await pred(v);
      } catch (err) {
        failures++;
        throw err;
      }
    }), { seed: SEED, numRuns: RUNS, endOnFailure: true });
  } catch (err) {
    error = err;
    const cause = (err as { cause?: unknown }).cause;
    t.diagnostic(`${label}: failure: ${cause instanceof Error ? cause.message : String(cause ?? err)}`.slice(0, 2000));
  }
  const res = { label, cases, failures, extra: extra() };
  t.diagnostic(`${label}: ${cases} cases, ${failures} failures${res.extra ? ` (${res.extra})` : ''}`);
  if (error) throw error;
  return res;
}

// ------------------------------------------------------------------ raw packet building

export function header(o: { id?: number; flags?: number; qd?: number; an?: number; ns?: number; ar?: number }): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(o.id ?? 0, 0);
  b.writeUInt16BE(o.flags ?? 0, 2);
  b.writeUInt16BE(o.qd ?? 0, 4);
  b.writeUInt16BE(o.an ?? 0, 6);
  b.writeUInt16BE(o.ns ?? 0, 8);
  b.writeUInt16BE(o.ar ?? 0, 10);
  return b;
}

export const RESPONSE_FLAGS = 0x8400;

/** Uncompressed wire form of a name, labels as given (no length checks: tests build bad names). */
export function rawName(labels: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = Buffer.isBuffer(l) ? l : Buffer.from(l);
    parts.push(Buffer.from([b.length & 0xff]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff, 0);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export const TYPE = { A: 1, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, ANY: 255 } as const;

/** A raw resource record: name bytes, type, class IN (+ cache-flush), ttl, rdata bytes. */
export function rawRR(name: Buffer, type: number, ttl: number, rdata: Buffer, flush = false): Buffer {
  return Buffer.concat([name, u16(type), u16(flush ? 0x8001 : 1), u32(ttl), u16(rdata.length), rdata]);
}

/** Encodes with dns-packet (valid packets). */
export function encode(p: dnsPacket.Packet): Buffer {
  return dnsPacket.encode(p);
}

/** Whether an IPv4/IPv6 address is one no peer can be reached at from another host. */
export function unusableFromLan(addr: string): boolean {
  const a = addr.split('%')[0]!.toLowerCase();
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (m) {
    const o = Number(m[1]);
    return o === 0 || o === 127 || o >= 224;
  }
  return a === '::' || a === '::1' || a.startsWith('ff');
}
