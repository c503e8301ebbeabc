/**
 * The mDNS browser: finds peers advertising one hash.
 *
 * A one-shot querier (RFC 6762 §5.1): per interface it sends from an ephemeral UDP port, so
 * every responder (ours, and Avahi for upstream passimd) answers immediately by unicast straight
 * to this socket, whatever else is bound to 5353 on this host. It also listens on 5353 (shared,
 * SO_REUSEADDR) when it can, so answers that come by multicast count too.
 *
 * 1. PTR query for `_<hash[0:60]>._sub._cache._tcp.local` at 0 ms, again at ~100 and ~300 ms
 *    (or for a claim subtype `_b…`/`_f…` with `kind`, names.ts);
 * 2. for each instance found, SRV+TXT query (unless the answer carried them as additionals, as
 *    ours does; Avahi does not), then A (+AAAA) for the SRV target; unanswered ones retried;
 * 3. a Peer is yielded as soon as its address and port are known; instances in
 *    `excludeInstances` are skipped; a PTR goodbye (TTL 0) drops an instance not yet yielded;
 * 4. the iteration ends `timeoutMs` (default 500) after the last new answer, at the latest after
 *    10 × timeoutMs, or when `signal` aborts (then it just ends, without an error).
 *
 * Hostile answers: responses from a source port other than 5353 are ignored (RFC 6762 §6); at most `maxInstances` (default 256) instances are tracked per browse, and at
 * most `maxInstancesPerSource` (default 32) learnt from one source address, so one host sending
 * thousands of fake instances costs neither memory nor queries and cannot crowd out the real
 * peers answering from other addresses; addresses are kept
 * only for the SRV targets of tracked instances (≤ 16 each); SRV port 0 and unusable addresses
 * (0.0.0.0/8, multicast, 240/4 and 255.255.255.255, the link's broadcast address, ::, ff00::/8,
 * and loopback unless the answer itself came from a loopback address) are never yielded.
 */
import type { Browse, BrowseOptions, Peer } from './types.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { claimSubtypeName, instanceOf, nameKey, subtypeName } from './names.js';
import { inSubnet, listLinks, type LinkAddress } from './interfaces.js';
import { defaultSocketFactory, type MdnsSocket, type MdnsSocketFactory } from './mdns-socket.js';
import { MDNS_PORT, type Message } from './packets.js';
import type { RR } from './records.js';
import { applyAddressRecords, applySrvRecords } from './peer-records.js';

export interface BrowserConfig extends BrowseOptions {
  logger?: Logger;
  /** when to (re)send the PTR query, ms after start (default [0, 100, 300]) */
  queryScheduleMs?: number[];
  /** also listen on UDP 5353 for multicast answers (default true) */
  listenMulticast?: boolean;
  /** hard limit on the whole browse, ms (default 10 × timeoutMs) */
  maxMs?: number;
  /** most instances tracked per browse (default 256) */
  maxInstances?: number;
  /** most instances tracked from one answering address (default 32) */
  maxInstancesPerSource?: number;
  /** creates the sockets (tests: in-process fakes) */
  socketFactory?: MdnsSocketFactory;
  /** every response this browse receives from port 5353 (the daemon feeds its peer cache with them) */
  onResponse?: (msg: Message, from: { address: string; link: LinkAddress }) => void;
}

interface InstanceState {
  instance: string;
  fqdn: string;
  link: LinkState;
  gone: boolean;
  srv?: { port: number; target: string };
  srvQueries: number;
  srvAskedAt: number;
  addrQueries: number;
  addrAskedAt: number;
  yielded: Set<string>;
}

interface LinkState {
  link: LinkAddress;
  query: MdnsSocket;
  listen?: MdnsSocket;
}

const RESOLVE_RETRY_MS = 150;
const RESOLVE_TRIES = 3;

function v4Octets(a: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  return o.every((x) => x <= 255) ? o : undefined;
}

export function isLoopbackSource(addr: string): boolean {
  const a = addr.split('%')[0]!.toLowerCase();
  return a.startsWith('127.') || a === '::1' || a.startsWith('::ffff:127.');
}

/**
 * Whether an address from an A/AAAA answer can be a peer: not unspecified, multicast, reserved or
 * broadcast (also the link's own subnet broadcast), and loopback only when the answer came over
 * loopback (a host on the LAN saying "127.0.0.1" means us).
 */
export function usablePeerAddress(addr: string, link: LinkAddress | undefined, fromLoopback: boolean): boolean {
  const a = addr.split('%')[0]!.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  const o = v4Octets(mapped ? mapped[1]! : a);
  if (o) {
    if (o[0] === 0 || o[0]! >= 224) return false;
    if (o[0] === 127 && !fromLoopback) return false;
    if (link && link.family === 'IPv4' && link.prefix < 31 && inSubnet(a, link.address, link.prefix)) {
      const hostBits = 32 - link.prefix;
      const n = ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
      const mask = hostBits >= 32 ? 0xffffffff : (2 ** hostBits - 1);
      if ((n & mask) === mask) return false;
    }
    return true;
  }
  if (!a.includes(':')) return false;
  if (a === '::' || a.startsWith('ff')) return false;
  if (a === '::1' && !fromLoopback) return false;
  return true;
}

export const browse: Browse = (sha256: string, opts: BrowserConfig = {}): AsyncIterable<Peer> => {
  // throws InvalidHashError now, not at the first next()
  const name = opts.kind === 'bid' || opts.kind === 'fetching' ? claimSubtypeName(sha256, opts.kind) : subtypeName(sha256);
  return run(name, opts);
};

/** Every peer found for a hash within the browse window. */
export async function findPeers(sha256: string, opts: BrowserConfig = {}): Promise<Peer[]> {
  const out: Peer[] = [];
  for await (const p of browse(sha256, opts)) out.push(p);
  return out;
}

async function* run(subtype: string, opts: BrowserConfig): AsyncGenerator<Peer> {
  const log = opts.logger ?? silentLogger;
  const timeoutMs = opts.timeoutMs ?? 500;
  const maxMs = opts.maxMs ?? timeoutMs * 10;
  const maxInstances = opts.maxInstances ?? 256;
  const maxPerSource = opts.maxInstancesPerSource ?? 32;
  /** answering address → instances first learnt from it */
  const perSource = new Map<string, number>();
  const newSocket = opts.socketFactory ?? defaultSocketFactory;
  let capLogged = false;
  const exclude = new Set((opts.excludeInstances ?? []).map((s) => s.toLowerCase()));
  const subKey = nameKey(subtype);
  const ipv6 = opts.ipv6 ?? false;

  const instances = new Map<string, InstanceState>();
  /** host name → address → link it was learnt on */
  const addresses = new Map<string, Map<string, LinkState>>();
  const queue: Peer[] = [];
  const links: LinkState[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let done = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const finish = () => {
    done = true;
    poke();
  };
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!done) fn();
    }, ms);
    timers.add(t);
    return t;
  };
  let idle: NodeJS.Timeout | undefined;
  const news = () => {
    if (idle) {
      clearTimeout(idle);
      timers.delete(idle);
    }
    idle = later(timeoutMs, finish);
  };

  const onAbort = () => finish();
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const askResolve = (st: InstanceState, now: number) => {
    if (!st.srv) {
      if (st.srvQueries < RESOLVE_TRIES && now - st.srvAskedAt >= RESOLVE_RETRY_MS) {
        st.srvQueries++;
        st.srvAskedAt = now;
        void st.link.query.send({ response: false, questions: [{ name: st.fqdn, type: 'SRV' }, { name: st.fqdn, type: 'TXT' }] });
      }
      return;
    }
    const target = nameKey(st.srv.target);
    if ((addresses.get(target)?.size ?? 0) > 0) return;
    if (st.addrQueries < RESOLVE_TRIES && now - st.addrAskedAt >= RESOLVE_RETRY_MS) {
      st.addrQueries++;
      st.addrAskedAt = now;
      const questions = [{ name: st.srv.target, type: 'A' }];
      if (ipv6) questions.push({ name: st.srv.target, type: 'AAAA' });
      void st.link.query.send({ response: false, questions });
    }
  };

  const emitReady = (st: InstanceState) => {
    if (st.gone || !st.srv) return;
    const addrs = addresses.get(nameKey(st.srv.target));
    if (!addrs) return;
    for (const [addr, ls] of addrs) {
      const isV6 = addr.includes(':');
      if (isV6 && !ipv6) continue;
      const address = isV6 && addr.toLowerCase().startsWith('fe80:') ? `${addr}%${ls.link.name}` : addr;
      if (st.yielded.has(address)) continue;
      st.yielded.add(address);
      queue.push({ address, port: st.srv.port, instance: st.instance, host: st.srv.target });
      news();
      poke();
    }
  };

  const ingest = (ls: LinkState, msg: Message, source: string, sourcePort: number) => {
    // RFC 6762 §6: responses not sent from port 5353 are ignored
    if (done || !msg.response || sourcePort !== MDNS_PORT) return;
    try {
      opts.onResponse?.(msg, { address: source, link: ls.link });
    } catch (err) {
      log.debug(`mDNS browse: response listener: ${(err as Error).message}`);
    }
    source = source.split('%')[0]!.toLowerCase();
    const fromLoopback = isLoopbackSource(source);
    const recs: RR[] = [...msg.answers, ...msg.additionals];
    let changed = false;
    // PTRs first, so SRV/A in the same message (additionals) apply to new instances
    for (const rr of recs) {
      if (rr.type !== 'PTR' || nameKey(rr.name) !== subKey) continue;
      const inst = instanceOf(rr.data);
      if (!inst || exclude.has(inst.toLowerCase())) continue;
      const key = nameKey(rr.data);
      let st = instances.get(key);
      if (rr.ttl === 0) {
        if (st && !st.gone) {
          st.gone = true;
          changed = true;
        }
        continue;
      }
      if (!st) {
        const fromHere = perSource.get(source) ?? 0;
        if (instances.size >= maxInstances || fromHere >= maxPerSource) {
          if (!capLogged) log.debug(`mDNS browse: too many instances answered (from ${source}); ignoring the rest`);
          capLogged = true;
          continue;
        }
        st = { instance: inst, fqdn: rr.data, link: ls, gone: false, srvQueries: 0, srvAskedAt: -Infinity, addrQueries: 0, addrAskedAt: -Infinity, yielded: new Set() };
        instances.set(key, st);
        perSource.set(source, fromHere + 1);
        changed = true;
      } else if (st.gone) {
        st.gone = false;
        changed = true;
      }
    }
    if (applySrvRecords(recs, (key) => instances.get(key))) changed = true;
    // addresses only for the SRV targets of tracked instances (after the SRVs of this message)
    if (applyAddressRecords(recs, instances.values(), addresses, ls, (a) => usablePeerAddress(a, ls.link, fromLoopback))) changed = true;
    if (!changed) return;
    news();
    const now = Date.now();
    for (const st of instances.values()) {
      if (st.gone) continue;
      emitReady(st);
      askResolve(st, now);
    }
  };

  try {
    if (opts.signal?.aborted) return;
    const found = listLinks({ interfaces: opts.interfaces, ipv6 });
    for (const link of found) {
      const query = newSocket({ link, port: 0, logger: log });
      try {
        await query.open();
      } catch (err) {
        log.debug(`mDNS browse: cannot use ${link.name} (${link.address}): ${(err as Error).message}`);
        await query.close();
        continue;
      }
      const ls: LinkState = { link, query };
      query.on('message', (msg, rinfo) => ingest(ls, msg, rinfo.address, rinfo.port));
      if (opts.listenMulticast !== false) {
        const listen = newSocket({ link, logger: log });
        try {
          await listen.open();
          listen.on('message', (msg, rinfo) => ingest(ls, msg, rinfo.address, rinfo.port));
          ls.listen = listen;
        } catch (err) {
          log.debug(`mDNS browse: not listening on 5353 on ${link.name}: ${(err as Error).message}`);
          await listen.close();
        }
      }
      links.push(ls);
    }
    if (!links.length) {
      log.debug('mDNS browse: no usable network interface');
      return;
    }
    if (done) return;
    const sendPtr = () => {
      for (const ls of links) void ls.query.send({ response: false, questions: [{ name: subtype, type: 'PTR' }] });
    };
    for (const at of opts.queryScheduleMs ?? [0, 100, 300]) {
      if (at <= 0) sendPtr();
      else later(at, sendPtr);
    }
    // retries of unanswered SRV / A questions
    const tick = () => {
      const now = Date.now();
      for (const st of instances.values()) if (!st.gone) askResolve(st, now);
      later(RESOLVE_RETRY_MS, tick);
    };
    later(RESOLVE_RETRY_MS, tick);
    news();
    later(maxMs, finish);

    for (;;) {
      while (queue.length) {
        const p = queue.shift()!;
        const st = instances.get(nameKey(`${p.instance}._cache._tcp.local`));
        if (st?.gone) continue;
        yield p;
        if (done && opts.signal?.aborted) return;
      }
      if (done) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    done = true;
    opts.signal?.removeEventListener('abort', onAbort);
    for (const t of timers) clearTimeout(t);
    timers.clear();
    await Promise.all(links.flatMap((ls) => [ls.query.close(), ls.listen?.close()]));
  }
}
