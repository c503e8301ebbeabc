/**
 * A real avahi-daemon inside one LAN namespace host (test/helpers/netns.ts), for interop tests.
 *
 *   const av = await startAvahi(host, { hostName: 'avahi-x', services: [{ name: 'Passim-A1A1',
 *     type: '_cache._tcp', subtypes: [`_${hash.slice(0, 60)}._sub._cache._tcp`], port: 27500 }] });
 *   const r = await av.tool('avahi-browse', ['-rpt', '_cache._tcp']);
 *   await av.stop();
 *
 * Isolation (nothing touches the machine's real interfaces, system bus or /run):
 * - avahi-daemon runs under `ip netns exec NS`, so it only sees that host's lo + eth0 (its config
 *   also says allow-interfaces=eth0, use-ipv6=no);
 * - avahi 0.8 hard-codes /run/avahi-daemon (pid file, client socket) and /etc/avahi/services, so
 *   it runs in a private mount namespace (`unshare -m`, propagation private) in which a tmpfs
 *   covers /run and our temp services dir is bind-mounted over /etc/avahi/services; the mounts
 *   vanish with the process and never reach the real filesystem;
 * - each instance gets its own private dbus-daemon (configured like a system bus: default deny,
 *   root may own and talk to org.freedesktop.Avahi), which avahi-daemon and the avahi-* tools find
 *   through DBUS_SYSTEM_BUS_ADDRESS. One bus per instance because only one process can own
 *   org.freedesktop.Avahi on a bus.
 * start resolves once avahi logs "Server startup complete" (host name probed and established)
 * and every static service has logged "successfully established".
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import type { LanHost } from './netns.js';
import { systemBusConfig } from '../dbus/private-bus.js';

export interface AvahiService {
  /** instance name, e.g. Passim-A1A1 */
  name: string;
  /** e.g. _cache._tcp */
  type: string;
  /** full subtype names, e.g. _<60 hex>._sub._cache._tcp */
  subtypes?: string[];
  port: number;
  /** TXT strings (none = Avahi sends one empty string, as for upstream) */
  txt?: string[];
}

export interface ToolWatch {
  /** stdout lines so far */
  lines: string[];
  /** resolves with the first stdout line (from index `since`) matching pred */
  waitFor(pred: (line: string) => boolean, opts?: { since?: number; timeoutMs?: number; what?: string }): Promise<string>;
  stop(): Promise<void>;
}

export interface AvahiOptions {
  /** `host-name=` in [server]; omitted = Avahi uses the machine's host name (the real-world default) */
  hostName?: string;
  services?: AvahiService[];
  /** ms to wait for startup (default 15000) */
  timeoutMs?: number;
  /**
   * Give avahi a private UTS namespace with this machine host name (gethostname()), so that,
   * without `hostName`, it claims `<utsHostName>.local` as it would on a real machine.
   */
  utsHostName?: string;
}

export interface Avahi {
  host: LanHost;
  dir: string;
  /** avahi-daemon's log so far (stderr) */
  log(): string;
  /** resolves with the first log line matching re (already logged lines count) */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** The host name Avahi settled on (from "Server startup complete. Host name is X.local."). */
  hostName: string;
  /** runs an avahi client tool (avahi-browse, avahi-resolve, …) in the host namespace on this instance's bus */
  tool(cmd: string, args: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** starts a long-running client tool (e.g. `avahi-browse -rp TYPE`); stopped by stop() at the latest */
  watch(cmd: string, args: string[]): ToolWatch;
  stop(): Promise<void>;
}

function busConfig(socket: string): string {
  // the system bus configuration plus avahi's avahi-dbus.conf, reduced to what the tests need
  return systemBusConfig(socket, `  <policy user="root">
    <allow own="org.freedesktop.Avahi"/>
    <allow send_destination="org.freedesktop.Avahi"/>
    <allow receive_sender="org.freedesktop.Avahi"/>
  </policy>`);
}

function daemonConfig(o: AvahiOptions): string {
  return [
    '[server]',
    ...(o.hostName ? [`host-name=${o.hostName}`] : []),
    'domain-name=local',
    'use-ipv4=yes',
    'use-ipv6=no',
    'allow-interfaces=eth0',
    'enable-dbus=yes',
    'ratelimit-interval-usec=1000000',
    'ratelimit-burst=1000',
    '[wide-area]',
    'enable-wide-area=no',
    '[publish]',
    'publish-hinfo=no',
    'publish-workstation=no',
    '[reflector]',
    'enable-reflector=no',
    '[rlimits]',
    '',
  ].join('\n');
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function serviceFile(s: AvahiService): string {
  return `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>${xmlEscape(s.name)}</name>
  <service protocol="ipv4">
    <type>${xmlEscape(s.type)}</type>
${(s.subtypes ?? []).map((t) => `    <subtype>${xmlEscape(t)}</subtype>\n`).join('')}    <port>${s.port}</port>
${(s.txt ?? []).map((t) => `    <txt-record>${xmlEscape(t)}</txt-record>\n`).join('')}  </service>
</service-group>
`;
}

/** Every process this module started and has not yet stopped, with its temp dir: killed on exit. */
const live = new Map<ChildProcess, string>();
let hooked = false;

function killAllSync(): void {
  for (const [p, dir] of live) {
    try {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    } catch {
      // gone
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  live.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAllSync();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

/** Kills a child we started and waits for it (SIGKILL after 2 s). */
async function end(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) {
    live.delete(p);
    return;
  }
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(t);
  live.delete(p);
}

export async function startAvahi(host: LanHost, opts: AvahiOptions = {}): Promise<Avahi> {
  const timeoutMs = opts.timeoutMs ?? 15000;
  for (const n of [opts.hostName, opts.utsHostName]) if (n !== undefined && !/^[A-Za-z0-9-]{1,63}$/.test(n)) throw new Error(`bad host name ${n}`);
  const dir = await mkdtemp(join(tmpdir(), 'passim-avahi-'));
  await chmod(dir, 0o755);
  const services = join(dir, 'services');
  await mkdir(services);
  for (const [i, s] of (opts.services ?? []).entries()) await writeFile(join(services, `s${i}.service`), serviceFile(s));
  const conf = join(dir, 'avahi-daemon.conf');
  await writeFile(conf, daemonConfig(opts));
  const busSocket = join(dir, 'system_bus_socket');
  const busConf = join(dir, 'bus.conf');
  await writeFile(busConf, busConfig(busSocket));

  hookExit();
  const procs = { push: (p: ChildProcess) => { live.set(p, dir); list.push(p); } };
  const list: ChildProcess[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const p of [...list].reverse()) await end(p);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    // the private bus (a Unix socket in our temp dir; no network, so no namespace needed)
    const bus = spawn('dbus-daemon', [`--config-file=${busConf}`, '--nofork', '--nopidfile', '--print-address=1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(bus);
    let busErr = '';
    bus.stderr!.setEncoding('utf8').on('data', (d: string) => { busErr += d; });
    const address = await new Promise<string>((res, rej) => {
      const rl = createInterface({ input: bus.stdout! });
      rl.once('line', (l) => { rl.close(); res(l.trim()); });
      bus.once('exit', (c) => rej(new Error(`dbus-daemon exited (${c}): ${busErr}`)));
      bus.once('error', (e) => rej(e));
    });
    const env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: address, DBUS_SESSION_BUS_ADDRESS: '' };

    // avahi in the host's network namespace and a private mount namespace of its own
    const script = [
      'set -e',
      ...(opts.utsHostName ? [`hostname "${opts.utsHostName}"`] : []),
      'mount --make-rprivate /',
      'mount -t tmpfs -o mode=0755 passim-avahi-run /run',
      'mkdir -p /run/avahi-daemon',
      `mount --bind "${services}" /etc/avahi/services`,
      `exec avahi-daemon -f "${conf}" --no-drop-root --no-chroot --no-rlimits --no-proc-title`,
    ].join('\n');
    const av = spawn('ip', ['netns', 'exec', host.ns, 'unshare', '-m', ...(opts.utsHostName ? ['-u'] : []), '--propagation', 'private', 'sh', '-c', script], {
      stdio: ['ignore', 'pipe', 'pipe'], env,
    });
    procs.push(av);
    let log = '';
    const waiters = new Set<() => void>();
    const onText = (d: string) => {
      log += d;
      for (const w of [...waiters]) w();
    };
    av.stdout!.setEncoding('utf8').on('data', onText);
    av.stderr!.setEncoding('utf8').on('data', onText);
    let exitInfo: string | undefined;
    av.once('exit', (code, sig) => {
      exitInfo = `avahi-daemon exited (${code ?? sig})`;
      for (const w of [...waiters]) w();
    });

    const waitForLog = (re: RegExp, ms = timeoutMs) =>
      new Promise<string>((res, rej) => {
        const check = () => {
          const line = log.split('\n').find((l) => re.test(l));
          if (line !== undefined) { done(); res(line); return; }
          if (exitInfo) { done(); rej(new Error(`${exitInfo} before logging ${re}:\n${log}`)); }
        };
        const timer = setTimeout(() => { done(); rej(new Error(`${host.ns}: avahi did not log ${re} within ${ms} ms:\n${log}`)); }, ms);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });

    const startup = await waitForLog(/Server startup complete\. Host name is /);
    const hostName = /Host name is (\S+?)\.local\./.exec(startup)?.[1] ?? '';
    for (const s of opts.services ?? []) await waitForLog(new RegExp(`Service "${s.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" \\(.*\\) successfully established`));

    return {
      host,
      dir,
      hostName,
      log: () => log,
      waitForLog,
      async tool(cmd, args, ms = 10000) {
        const r = await execa('ip', ['netns', 'exec', host.ns, cmd, ...args], { env, reject: false, timeout: ms, extendEnv: false });
        return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) + (r.timedOut ? `\n(timed out after ${ms} ms)` : '') };
      },
      watch(cmd, args) {
        const p = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
        procs.push(p);
        const lines: string[] = [];
        let err = '';
        const ws = new Set<() => void>();
        createInterface({ input: p.stdout! }).on('line', (l) => { lines.push(l); for (const w of [...ws]) w(); });
        p.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
        p.once('exit', () => { for (const w of [...ws]) w(); });
        return {
          lines,
          waitFor(pred, o = {}) {
            return new Promise((res, rej) => {
              const check = () => {
                const l = lines.slice(o.since ?? 0).find(pred);
                if (l !== undefined) { fin(); res(l); } else if (p.exitCode !== null || p.signalCode !== null) {
                  fin();
                  rej(new Error(`${cmd} exited before ${o.what ?? 'the expected line'}: ${err}\n${lines.join('\n')}`));
                }
              };
              const timer = setTimeout(() => { fin(); rej(new Error(`timed out waiting for ${o.what ?? 'a line'} from ${cmd}:\n${lines.join('\n')}\n${err}`)); }, o.timeoutMs ?? 10000);
              const fin = () => { clearTimeout(timer); ws.delete(check); };
              ws.add(check);
              check();
            });
          },
          stop: () => end(p),
        };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The same namespace host, but every process it spawns or execs runs in a private UTS namespace
 * whose host name is `name` (what `os.hostname()` returns there). Our daemon takes its mDNS host
 * name from os.hostname(), so daemons on different LAN hosts stop sharing the machine's name.
 */
export function withHostName(host: LanHost, name: string): LanHost {
  if (!/^[A-Za-z0-9-]{1,63}$/.test(name)) throw new Error(`bad host name ${name}`);
  const wrap = (cmd: string, args: string[]) => ['-u', 'sh', '-c', 'hostname "$0" && exec "$@"', name, cmd, ...args];
  return {
    ns: host.ns,
    address: host.address,
    exec: (cmd, args = [], o) => host.exec('unshare', wrap(cmd, args), o),
    spawn: (cmd, args = [], o) => host.spawn('unshare', wrap(cmd, args), o),
  };
}

export interface BrowseLine {
  event: '+' | '=' | '-';
  iface: string;
  protocol: string;
  name: string;
  type: string;
  domain: string;
  host?: string;
  address?: string;
  port?: number;
  txt?: string;
}

/** Decodes avahi-browse's `\DDD` escapes (decimal byte values) in -p output. */
function unescapeAvahi(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && /^\d{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(Number(s.slice(i + 1, i + 4)));
      i += 3;
    } else {
      bytes.push(...Buffer.from(s[i]!));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parses `avahi-browse -p` (parsable) output: `+;eth0;IPv4;name;type;domain` and resolved `=;…;host;address;port;txt`. */
export function parseBrowse(stdout: string): BrowseLine[] {
  const out: BrowseLine[] = [];
  for (const line of stdout.split('\n')) {
    const f = line.split(';');
    if (!['+', '=', '-'].includes(f[0]!) || f.length < 6) continue;
    const l: BrowseLine = { event: f[0] as BrowseLine['event'], iface: f[1]!, protocol: f[2]!, name: unescapeAvahi(f[3]!), type: f[4]!, domain: f[5]! };
    if (l.event === '=' && f.length >= 9) {
      l.host = f[6];
      l.address = f[7];
      l.port = Number(f[8]);
      l.txt = f.slice(9).join(';');
    }
    out.push(l);
  }
  return out;
}
