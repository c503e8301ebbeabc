/**
 * One UDP socket per (interface, family) for mDNS.
 *
 * - `port: 5353` (default): a multicast-dns socket bound to 0.0.0.0:5353 (or [::]:5353) with
 *   SO_REUSEADDR, so it shares the port with Avahi on the same host; joined to 224.0.0.251
 *   (ff02::fb) on this interface only, multicast sent out of this interface only, TTL 255.
 * - `port: 0`: a one-shot query socket on an ephemeral port (RFC 6762 §5.1), multicast out of
 *   this interface; responders answer it by unicast, straight back to this socket.
 *
 * Incoming datagrams are decoded by packets.decodeMessage; a malformed one emits 'malformed'.
 * Nothing a peer sends makes the 'message' handler throw; send() never rejects.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { makeMulticastDns } from './dns-packet.js';
import { decodeMessage, encodeMessage, MDNS_PORT, MDNS_V4, MDNS_V6, type Message, type OutMessage } from './packets.js';
import type { LinkAddress } from './interfaces.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';

export interface Destination { address: string; port: number }

export interface MdnsSocketOptions {
  link: LinkAddress;
  /** 5353 (default) or 0 for an ephemeral one-shot query socket */
  port?: number;
  /** receive our own multicast (needed when several passims share a host or loopback) */
  loopback?: boolean;
  logger?: Logger;
}

/** Creates the sockets a responder or browser uses (tests substitute in-process fakes). */
export type MdnsSocketFactory = (opts: MdnsSocketOptions) => MdnsSocket;

export const defaultSocketFactory: MdnsSocketFactory = (opts) => new MdnsSocket(opts);

export interface MdnsSocketEvents {
  message: [msg: Message, rinfo: dgram.RemoteInfo, size: number];
  malformed: [rinfo: dgram.RemoteInfo, size: number];
}

export class MdnsSocket extends EventEmitter<MdnsSocketEvents> {
  readonly link: LinkAddress;
  readonly group: Destination;
  #socket: dgram.Socket;
  #mdns: ReturnType<typeof makeMulticastDns> | undefined;
  #closed = false;
  readonly #port: number;
  readonly #log: Logger;
  readonly #loopback: boolean;

  constructor(opts: MdnsSocketOptions) {
    super();
    this.link = opts.link;
    this.#port = opts.port ?? MDNS_PORT;
    this.#log = opts.logger ?? silentLogger;
    this.#loopback = opts.loopback ?? true;
    const v6 = opts.link.family === 'IPv6';
    this.group = { address: v6 ? MDNS_V6 : MDNS_V4, port: MDNS_PORT };
    this.#socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: true });
    this.#socket.on('message', (buf, rinfo) => this.receive(buf, rinfo));
    this.#socket.on('error', (err) => this.#log.debug(`mdns ${this.link.name}: socket error: ${err.message}`));
  }

  /** The multicast interface argument Node wants: the IPv4 address, or "::%iface" for IPv6. */
  get #ifaceArg(): string {
    return this.link.family === 'IPv6' ? `::%${this.link.name}` : this.link.address;
  }

  get port(): number {
    try {
      return this.#socket.address().port;
    } catch {
      return 0;
    }
  }

  async open(): Promise<void> {
    const v6 = this.link.family === 'IPv6';
    if (this.#port === 0) {
      await new Promise<void>((resolve, reject) => {
        this.#socket.once('error', reject);
        this.#socket.bind(0, v6 ? '::' : '0.0.0.0', () => {
          this.#socket.off('error', reject);
          resolve();
        });
      });
      this.#socket.setMulticastTTL(255);
      this.#socket.setMulticastLoopback(this.#loopback);
      this.#socket.setMulticastInterface(this.#ifaceArg);
      return;
    }
    const ours = new Set(this.#socket.listeners('message'));
    const mdns = makeMulticastDns({
      socket: this.#socket,
      type: v6 ? 'udp6' : 'udp4',
      ip: this.group.address,
      port: this.#port,
      interface: this.#ifaceArg,
      bind: v6 ? '::' : '0.0.0.0',
      reuseAddr: true,
      loopback: this.#loopback,
      multicast: true,
    });
    this.#mdns = mdns;
    // multicast-dns decodes every datagram itself (for events we do not use): a second full
    // decode per packet, without our pre-checks (claimed counts of 65535 cost ~2 MB each). We only
    // use it to bind and keep the group membership, so its 'message' listener goes.
    for (const l of this.#socket.listeners('message')) if (!ours.has(l)) this.#socket.off('message', l as (...a: unknown[]) => void);
    mdns.on('warning', (err: Error) => this.#log.debug(`mdns ${this.link.name}: ${err.message}`));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => { mdns.off('ready', onReady); reject(err); };
      const onReady = () => { mdns.off('error', onError); resolve(); };
      mdns.once('error', onError);
      mdns.once('ready', onReady);
    });
    mdns.on('error', (err: Error) => this.#log.warn(`mdns ${this.link.name}: ${err.message}`));
  }

  /**
   * Handles one received datagram: decodes it and emits 'message' (or 'malformed'). Public as the
   * seam through which tests feed packets in-process (no sockets); never throws.
   */
  receive(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    try {
      const msg = decodeMessage(buf);
      if (!msg) {
        this.emit('malformed', rinfo, buf.length);
        return;
      }
      this.emit('message', msg, rinfo, buf.length);
    } catch (err) {
      this.#log.debug(`mdns ${this.link.name}: dropped packet from ${rinfo.address}: ${(err as Error).message}`);
    }
  }

  /** Sends to the multicast group (default) or a unicast destination. Never rejects. */
  send(m: OutMessage, dest?: Destination): Promise<void> {
    let buf: Buffer;
    try {
      buf = encodeMessage(m);
    } catch (err) {
      this.#log.warn(`mdns ${this.link.name}: cannot encode message: ${(err as Error).message}`);
      return Promise.resolve();
    }
    return this.sendRaw(buf, dest);
  }

  sendRaw(buf: Buffer, dest: Destination = this.group): Promise<void> {
    if (this.#closed) return Promise.resolve();
    let address = dest.address;
    if (this.link.family === 'IPv6' && address.toLowerCase().startsWith('ff02:') && !address.includes('%')) address += `%${this.link.name}`;
    return new Promise((resolve) => {
      try {
        this.#socket.send(buf, dest.port, address, (err) => {
          if (err) this.#log.debug(`mdns ${this.link.name}: send to ${address}:${dest.port} failed: ${err.message}`);
          resolve();
        });
      } catch (err) {
        this.#log.debug(`mdns ${this.link.name}: send failed: ${(err as Error).message}`);
        resolve();
      }
    });
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => {
      try {
        if (this.#mdns) this.#mdns.destroy(() => resolve());
        else this.#socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
