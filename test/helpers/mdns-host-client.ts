/**
 * Drives a test/helpers/mdns-host.ts process inside a LAN namespace: request/reply over JSON
 * lines, plus a log of the events (captured packets) it reports, which tests can wait for.
 */
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import dnsPacket from 'dns-packet';
import type { LanHost } from './netns.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../..');
const SCRIPT = resolve(here, 'mdns-host.ts');

export interface HostEvent {
  event: string;
  hex: string;
  from: string;
  port: number;
  size: number;
  t: number;
  /** decoded packet (undefined when it does not decode) */
  packet?: dnsPacket.DecodedPacket;
}

export class MdnsHost {
  readonly events: HostEvent[] = [];
  readonly stderr: string[] = [];
  #next = 1;
  #pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  #waiters = new Set<() => void>();
  #child: ReturnType<LanHost['spawn']>;
  #ready: Promise<void>;

  private constructor(readonly host: LanHost) {
    this.#child = host.spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
      cwd: ROOT, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: false,
    });
    let readyResolve!: () => void;
    this.#ready = new Promise((r) => (readyResolve = r));
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      let msg: any;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.event === 'ready') return readyResolve();
      if (msg.event) {
        const ev = msg as HostEvent;
        try {
          ev.packet = dnsPacket.decode(Buffer.from(ev.hex, 'hex'));
        } catch {
          // malformed on purpose (tests send some)
        }
        this.events.push(ev);
        for (const w of [...this.#waiters]) w();
        return;
      }
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`${host.ns}: ${msg.error}`));
    });
    createInterface({ input: this.#child.stderr! }).on('line', (l) => this.stderr.push(l));
    void this.#child.then(() => {
      for (const p of this.#pending.values()) p.reject(new Error(`${host.ns}: mdns-host exited: ${this.stderr.slice(-5).join('\n')}`));
      this.#pending.clear();
    });
  }

  static async start(host: LanHost): Promise<MdnsHost> {
    const h = new MdnsHost(host);
    await Promise.race([
      h.#ready,
      new Promise((_, rej) => setTimeout(() => rej(new Error(`${host.ns}: mdns-host did not start: ${h.stderr.join('\n')}`)), 15000)),
    ]);
    return h;
  }

  call<T = any>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#child.stdin!.write(JSON.stringify({ id, cmd, ...args }) + '\n');
    });
  }

  /** Index to pass as `since` to only consider events after now. */
  mark(): number {
    return this.events.length;
  }

  /** Waits for an event matching pred (among events from index `since`), or rejects at the deadline. */
  waitFor(pred: (e: HostEvent) => boolean, opts: { since?: number; timeoutMs?: number; what?: string } = {}): Promise<HostEvent> {
    const since = opts.since ?? 0;
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = since; i < this.events.length; i++) {
          if (pred(this.events[i]!)) {
            cleanup();
            resolve(this.events[i]!);
            return true;
          }
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${opts.what ?? 'an event'} on ${this.host.ns}`));
      }, opts.timeoutMs ?? 5000);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      const waiter = () => void check();
      this.#waiters.add(waiter);
      check();
    });
  }

  /** Collects matching events arriving within ms (for "nothing arrives" assertions). */
  async collect(pred: (e: HostEvent) => boolean, ms: number, since = this.mark()): Promise<HostEvent[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.events.slice(since).filter(pred);
  }

  async close(): Promise<void> {
    try {
      await Promise.race([this.call('exit'), new Promise((r) => setTimeout(r, 3000))]);
    } catch {
      // already gone
    }
    this.#child.stdin?.end();
  }
}
