/**
 * A throw-away LAN of network namespaces for multi-host tests (root + iproute2).
 *
 *   const lan = await createLan(3);
 *   const out = await lan.hosts[0].exec('ip', ['-br', 'addr']);
 *   const child = lan.hosts[1].spawn('node', ['--import', 'tsx', 'script.ts']);
 *   await lan.destroy();
 *
 * One namespace holds a bridge (mcast_snooping 0); each host namespace gets a veth whose host end
 * is `eth0` (10.98.0.<i+1>/16), `lo` up, and a route for 224.0.0.0/4 via eth0. Namespace names
 * are `pz<pid>x<n>-<i>` (bridge: `-br`), unique per run. destroy() kills every process spawned
 * through the LAN and deletes every namespace; it is idempotent and also runs on process exit,
 * SIGINT and SIGTERM, so a failing test still cleans up.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { execa, type ResultPromise, type Options } from 'execa';
import { requires, requiresRoot } from './requires.js';

export interface LanHost {
  ns: string;
  /** IPv4 address on eth0 */
  address: string;
  /** runs a command to completion inside the namespace */
  exec(cmd: string, args?: string[], opts?: Options): Promise<{ stdout: string; stderr: string; exitCode?: number }>;
  /** starts a long-running process inside the namespace; killed by lan.destroy() */
  spawn(cmd: string, args?: string[], opts?: Options): ResultPromise;
}

export interface Lan {
  bridgeNs: string;
  hosts: LanHost[];
  destroy(): Promise<void>;
}

export interface LanOptions {
  /** second octet of 10.X.0.0/16 (default 98) */
  net?: number;
  /** IPv6: leave addresses without DAD so link-local is usable at once (default true) */
  ipv6?: boolean;
}

/** Root and `ip` available (netns tests can run). */
export function canUseNetns(): boolean {
  if (process.platform !== 'linux' || typeof process.getuid !== 'function' || process.getuid() !== 0) return false;
  const ip = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some((p) => existsSync(p));
  if (!ip) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** For node:test `skip`: false when netns works; a reason otherwise; throws in CI (CI=true), where skipping would hide a failure. */
export function netnsSkip(): false | string {
  const missing = requiresRoot('a LAN of network namespaces') || requires('ip');
  if (missing) return missing;
  if (canUseNetns()) return false;
  if (process.env.CI === 'true') throw new Error('netns tests cannot run in CI: `ip netns list` fails');
  return '`ip netns list` fails here: network namespaces unavailable';
}

let lanCounter = 0;
const live = new Set<LanImpl>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const lan of live) lan.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const lan of live) lan.destroySync();
      process.kill(process.pid, sig);
    });
  }
}

class LanImpl implements Lan {
  hosts: LanHost[] = [];
  readonly children = new Set<ResultPromise>();
  readonly namespaces: string[] = [];
  #destroyed = false;

  constructor(readonly bridgeNs: string) {}

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    live.delete(this);
    const waits: Promise<unknown>[] = [];
    for (const c of this.children) {
      if (c.exitCode === null && !c.killed) {
        c.kill('SIGTERM');
        const t = setTimeout(() => c.kill('SIGKILL'), 2000);
        waits.push(c.catch(() => undefined).finally(() => clearTimeout(t)));
      }
    }
    await Promise.all(waits);
    for (const ns of [...this.namespaces].reverse()) {
      await execa('ip', ['netns', 'del', ns], { reject: false });
    }
  }

  destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    live.delete(this);
    for (const c of this.children) {
      try {
        if (c.pid && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const ns of [...this.namespaces].reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  }
}

async function ip(args: string[]): Promise<void> {
  const r = await execa('ip', args, { reject: false });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || `exit ${r.exitCode}`}`);
}

/** Creates a bridge namespace and n host namespaces on it. */
export async function createLan(n: number, opts: LanOptions = {}): Promise<Lan> {
  if (!canUseNetns()) throw new Error('createLan needs root and iproute2 (ip netns)');
  if (!Number.isInteger(n) || n < 1 || n > 250) throw new Error(`createLan: bad host count ${n}`);
  hookExit();
  const prefix = `pz${process.pid}x${lanCounter++}`;
  const br = `${prefix}-br`;
  const lan = new LanImpl(br);
  live.add(lan);
  const net = opts.net ?? 98;
  try {
    await ip(['netns', 'add', br]);
    lan.namespaces.push(br);
    await ip(['-n', br, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    await ip(['-n', br, 'link', 'set', 'br0', 'up']);
    for (let i = 0; i < n; i++) {
      const ns = `${prefix}-${i}`;
      await ip(['netns', 'add', ns]);
      lan.namespaces.push(ns);
      const address = `10.${net}.${Math.floor((i + 1) / 256)}.${(i + 1) % 256}`;
      if (opts.ipv6 !== false) {
        // no DAD: link-local usable at once
        await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'], { reject: false });
      }
      await ip(['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${i}`, 'netns', br]);
      await ip(['-n', br, 'link', 'set', `v${i}`, 'master', 'br0']);
      await ip(['-n', br, 'link', 'set', `v${i}`, 'up']);
      await ip(['-n', ns, 'addr', 'add', `${address}/16`, 'dev', 'eth0']);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      await ip(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
      const host = lanHost(lan, ns, address);
      lan.hosts.push(host);
    }
  } catch (err) {
    await lan.destroy();
    throw err;
  }
  return lan;
}

// ---------------------------------------------------------------- several subnets and a router

export interface RoutedNet {
  /** the router namespace: one address per subnet (10.<net>.0.254), IPv4 forwarding on, no multicast routing */
  router: LanHost & { addresses: string[] };
  /** subnets[i][j]: host j of subnet i (10.<98+i>.0.<j+1>/16, default route via the router) */
  subnets: LanHost[][];
  destroy(): Promise<void>;
}

function lanHost(lan: LanImpl, ns: string, address: string): LanHost {
  return {
    ns,
    address,
    exec: async (cmd, args = [], o = {}) => {
      const r = await execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false, ...o });
      return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode };
    },
    spawn: (cmd, args = [], o = {}) => {
      const child = execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false, ...o }) as ResultPromise;
      lan.children.add(child);
      void child.catch(() => undefined).finally(() => lan.children.delete(child));
      return child;
    },
  };
}

/**
 * Subnets joined by a router (at most two: 10.98/16 and 10.99/16). Each subnet's bridge lives in
 * the router namespace with the router's address on it; the router forwards unicast between them
 * and nothing else (link-local multicast such as mDNS never crosses). Hosts are set up as in
 * createLan, plus a default route via their router address.
 */
export async function createRoutedNet(sizes: number[]): Promise<RoutedNet> {
  if (!canUseNetns()) throw new Error('createRoutedNet needs root and iproute2 (ip netns)');
  if (sizes.length < 1 || sizes.length > 2 || sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 200)) {
    throw new Error(`createRoutedNet: bad subnet sizes ${JSON.stringify(sizes)}`);
  }
  hookExit();
  const prefix = `pz${process.pid}x${lanCounter++}`;
  const rns = `${prefix}-rt`;
  const lan = new LanImpl(rns);
  live.add(lan);
  try {
    await ip(['netns', 'add', rns]);
    lan.namespaces.push(rns);
    await ip(['-n', rns, 'link', 'set', 'lo', 'up']);
    await execa('ip', ['netns', 'exec', rns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'], { reject: false });
    const routerAddrs: string[] = [];
    const subnets: LanHost[][] = [];
    for (let s = 0; s < sizes.length; s++) {
      const net = 98 + s;
      const br = `br${s}`;
      const gw = `10.${net}.0.254`;
      routerAddrs.push(gw);
      await ip(['-n', rns, 'link', 'add', br, 'type', 'bridge', 'mcast_snooping', '0']);
      await ip(['-n', rns, 'addr', 'add', `${gw}/16`, 'dev', br]);
      await ip(['-n', rns, 'link', 'set', br, 'up']);
      const hosts: LanHost[] = [];
      for (let i = 0; i < sizes[s]!; i++) {
        const ns = `${prefix}-${s}h${i}`;
        await ip(['netns', 'add', ns]);
        lan.namespaces.push(ns);
        const address = `10.${net}.0.${i + 1}`;
        await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'], { reject: false });
        await ip(['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${s}h${i}`, 'netns', rns]);
        await ip(['-n', rns, 'link', 'set', `v${s}h${i}`, 'master', br]);
        await ip(['-n', rns, 'link', 'set', `v${s}h${i}`, 'up']);
        await ip(['-n', ns, 'addr', 'add', `${address}/16`, 'dev', 'eth0']);
        await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
        await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
        await ip(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
        await ip(['-n', ns, 'route', 'add', 'default', 'via', gw]);
        hosts.push(lanHost(lan, ns, address));
      }
      subnets.push(hosts);
    }
    lan.hosts = subnets.flat();
    const router = Object.assign(lanHost(lan, rns, routerAddrs[0]!), { addresses: routerAddrs });
    return { router, subnets, destroy: () => lan.destroy() };
  } catch (err) {
    await lan.destroy();
    throw err;
  }
}
