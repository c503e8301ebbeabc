/**
 * Which network interfaces mDNS runs on, and noticing when they change.
 *
 * Default: every interface that is up, multicast-capable and not loopback, with an IPv4 address
 * (and IPv6 when enabled). Pinning by name (`--interface`) also allows loopback, which single-host
 * tests use. Flags come from /sys/class/net/<name>/flags on Linux (os.networkInterfaces() has none).
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 'IPv4' | 'IPv6';

export interface LinkAddress {
  /** interface name, e.g. "eth0" */
  name: string;
  family: Family;
  address: string;
  /** prefix length */
  prefix: number;
  /** IPv6 scope id (interface index) for link-local addresses */
  scopeid?: number;
  internal: boolean;
}

export interface InterfaceSelection {
  /** pin to these interface names (loopback allowed when named) */
  interfaces?: string[];
  ipv6?: boolean;
}

const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
const IFF_MULTICAST = 0x1000;

function linkFlags(name: string): number | undefined {
  try {
    return Number.parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16);
  } catch {
    return undefined;
  }
}

/**
 * One address per (interface, family) to run mDNS on: IPv4 first address; IPv6 prefers the
 * link-local address (mDNS is link-local), else the first one.
 */
export function listLinks(sel: InterfaceSelection = {}): LinkAddress[] {
  const pinned = sel.interfaces && sel.interfaces.length > 0 ? new Set(sel.interfaces) : undefined;
  const out: LinkAddress[] = [];
  const all = networkInterfaces();
  for (const [name, addrs] of Object.entries(all)) {
    if (!addrs) continue;
    if (pinned && !pinned.has(name)) continue;
    const flags = linkFlags(name);
    if (flags !== undefined) {
      if (!(flags & IFF_UP)) continue;
      const loop = (flags & IFF_LOOPBACK) !== 0;
      if (!pinned && loop) continue;
      // loopback usually lacks IFF_MULTICAST but multicast on it works when pinned (tests)
      if (!loop && !(flags & IFF_MULTICAST)) continue;
    }
    const v4 = addrs.find((a) => a.family === 'IPv4');
    if (v4 && (pinned || !v4.internal)) {
      out.push({ name, family: 'IPv4', address: v4.address, prefix: prefixOf(v4.cidr, v4.netmask), internal: v4.internal });
    }
    if (sel.ipv6) {
      const v6s = addrs.filter((a) => a.family === 'IPv6');
      const v6 = v6s.find((a) => a.address.toLowerCase().startsWith('fe80:')) ?? v6s[0];
      if (v6 && (pinned || !v6.internal)) {
        out.push({
          name, family: 'IPv6', address: v6.address, prefix: prefixOf(v6.cidr, v6.netmask),
          scopeid: v6.scopeid, internal: v6.internal,
        });
      }
    }
  }
  return out;
}

/** Every address of this host (all interfaces), to recognise our own records coming back. */
export function ownAddresses(): Set<string> {
  const s = new Set<string>();
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) s.add(a.address.toLowerCase());
  return s;
}

/** All IPv4/IPv6 subnets of one interface, to classify which interface a packet came from. */
export function subnetsOf(name: string): Array<{ family: Family; address: string; prefix: number }> {
  return (networkInterfaces()[name] ?? []).map((a) => ({ family: a.family as Family, address: a.address, prefix: prefixOf(a.cidr, a.netmask) }));
}

function prefixOf(cidr: string | null | undefined, netmask: string): number {
  if (cidr) {
    const p = Number(cidr.split('/')[1]);
    if (Number.isInteger(p)) return p;
  }
  // count bits of the netmask
  if (isIPv4(netmask)) return netmask.split('.').reduce((n, o) => n + bitCount(Number(o)), 0);
  return 64;
}

function bitCount(n: number): number {
  let c = 0;
  for (; n; n >>= 1) c += n & 1;
  return c;
}

function v4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => (n * 256 + Number(o)) >>> 0, 0);
}

function v6ToBytes(a: string): number[] | undefined {
  const addr = a.split('%')[0]!;
  if (!isIPv6(addr)) return undefined;
  let [head, tail] = addr.includes('::') ? addr.split('::') as [string, string] : [addr, undefined];
  const conv = (s: string) => (s ? s.split(':') : []).flatMap((g) => {
    if (g.includes('.')) { const v = v4ToInt(g); return [(v >>> 16) & 0xffff, v & 0xffff]; }
    return [Number.parseInt(g, 16)];
  });
  const h = conv(head);
  const t = tail === undefined ? [] : conv(tail);
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/** True when `addr` lies in `net/prefix` (same family). */
export function inSubnet(addr: string, net: string, prefix: number): boolean {
  if (isIPv4(addr) && isIPv4(net)) {
    if (prefix <= 0) return true;
    const mask = prefix >= 32 ? 0xffffffff : (~((1 << (32 - prefix)) - 1)) >>> 0;
    return ((v4ToInt(addr) & mask) >>> 0) === ((v4ToInt(net) & mask) >>> 0);
  }
  const a = v6ToBytes(addr);
  const b = v6ToBytes(net);
  if (!a || !b) return false;
  for (let i = 0, bits = prefix; bits > 0; i++, bits -= 8) {
    const m = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[i]! & m) !== (b[i]! & m)) return false;
  }
  return true;
}

/**
 * Whether a packet source belongs on interface `name` (on-link). IPv6 link-local sources carry
 * `%iface` (a name or an index). Callers on a hot path pass the subnets and index they looked up
 * once per link, so no packet costs a read of /sys.
 */
export function isOnLink(source: string, name: string, subnets = subnetsOf(name), index = ifIndex(name)): boolean {
  const [addr, zone] = source.split('%') as [string, string | undefined];
  if (zone !== undefined) return zone === name || zone === String(index);
  return subnets.some((s) => inSubnet(addr, s.address, s.prefix));
}

/** The kernel's index of an interface (what a numeric `%zone` names). */
export function ifIndex(name: string): number | undefined {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
  } catch {
    return undefined;
  }
}

export function linkKey(l: LinkAddress): string {
  return `${l.name}/${l.family}/${l.address}`;
}

/** Polls the interface list and reports links (interface+family+address) that appear and go. */
export class LinkWatcher {
  #timer: NodeJS.Timeout | undefined;
  #known = new Map<string, LinkAddress>();

  constructor(
    private readonly sel: InterfaceSelection,
    private readonly onChange: (added: LinkAddress[], removed: LinkAddress[]) => void,
    private readonly intervalMs = 3000,
  ) {}

  /** Returns the current links and starts polling. */
  start(): LinkAddress[] {
    const now = listLinks(this.sel);
    this.#known = new Map(now.map((l) => [linkKey(l), l]));
    this.#timer = setInterval(() => this.poll(), this.intervalMs);
    this.#timer.unref();
    return now;
  }

  poll(): void {
    let now: LinkAddress[];
    try {
      now = listLinks(this.sel);
    } catch {
      return;
    }
    const next = new Map(now.map((l) => [linkKey(l), l]));
    const added = now.filter((l) => !this.#known.has(linkKey(l)));
    const removed = [...this.#known.values()].filter((l) => !next.has(linkKey(l)));
    this.#known = next;
    if (added.length || removed.length) this.onChange(added, removed);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
