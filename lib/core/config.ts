/**
 * passim.conf: the [daemon] group of SPEC §3, validated. A bad value is a ConfigError naming file,
 * line and key (the daemon does not start); an unknown key or group is a warning.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { ConfigError } from './errors.js';
import { parseKeyFile, type KeyEntry } from './keyfile.js';
import { parseServerAddress } from './server-address.js';
import { DEFAULT_CARBON_COST, DEFAULT_COOLDOWN, DEFAULT_MAX_ITEM_SIZE, DEFAULT_PORT } from './defaults.js';

export interface DaemonConfig {
  port: number;
  ipv6: boolean;
  /** store directory override (upstream's Path=); undefined = <state>/data */
  path?: string;
  maxItemSize: number;
  /** kg CO2e per GB */
  carbonCost: number;
  /** seconds a non-loopback peer must wait before re-requesting the same hash */
  cooldown: number;
  /** addresses to listen on; empty = all */
  bind: string[];
  localhostOnly: boolean;
  /** concurrent uploads to peers at most (total) */
  maxUploads: number;
  /** concurrent uploads to peers at most per peer address */
  maxUploadsPerPeer: number;
  /** interfaces mDNS runs on; empty = all up multicast-capable ones */
  interfaces: string[];
  /** metered network: stop advertising, keep serving */
  metered: boolean;
  /** wide-area DNS-SD zone (lib/discovery/wide-area/); '' = off */
  domain: string;
  /** DNS server for updates and lookups, "ADDR[:PORT]"; undefined = SOA primary / system resolver */
  dnsServer?: string;
  /** TSIG key file (tsig-keygen format) for the zone's updates; without it the zone is only looked up */
  dnsKeyFile?: string;
}

export const DEFAULT_CONFIG: Readonly<DaemonConfig> = Object.freeze({
  port: DEFAULT_PORT,
  ipv6: false,
  path: undefined,
  maxItemSize: DEFAULT_MAX_ITEM_SIZE,
  carbonCost: DEFAULT_CARBON_COST,
  cooldown: DEFAULT_COOLDOWN,
  bind: [],
  localhostOnly: false,
  maxUploads: 16,
  maxUploadsPerPeer: 2,
  interfaces: [],
  metered: false,
  domain: '',
  dnsServer: undefined,
  dnsKeyFile: undefined,
});

export interface ConfigLoadResult {
  config: DaemonConfig;
  warnings: string[];
  /** false when the file does not exist (defaults used) */
  found: boolean;
}

type Parser = (e: KeyEntry, key: string, file: string) => unknown;

const bad = (file: string, e: KeyEntry, key: string, what: string) =>
  new ConfigError(`key "${key}": ${what}, got ${JSON.stringify(e.value.slice(0, 80))}`, file, e.line, key);

export function parseBool(e: KeyEntry, key: string, file: string): boolean {
  const v = e.value.trim().toLowerCase();
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  throw bad(file, e, key, 'expected true or false');
}

function intIn(min: number, max: number): Parser {
  return (e, key, file) => {
    const v = e.value.trim();
    if (!/^\d+$/.test(v)) throw bad(file, e, key, `expected a whole number from ${min} to ${max}`);
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw bad(file, e, key, `expected a whole number from ${min} to ${max}`);
    return n;
  };
}

function nonNegativeFloat(e: KeyEntry, key: string, file: string): number {
  const v = e.value.trim();
  if (!/^\d+(\.\d+)?([eE][-+]?\d+)?$/.test(v)) throw bad(file, e, key, 'expected a number ≥ 0');
  const n = Number(v);
  if (!Number.isFinite(n)) throw bad(file, e, key, 'expected a finite number ≥ 0');
  return n;
}

function list(e: KeyEntry): string[] {
  return e.value.split(/[;,]/).map((s) => s.trim()).filter(Boolean);
}

function bindList(e: KeyEntry, key: string, file: string): string[] {
  const items = list(e);
  for (const a of items) if (!isIP(a)) throw bad(file, e, key, `"${a}" is not an IP address`);
  return items;
}

function ifaceList(e: KeyEntry, key: string, file: string): string[] {
  const items = list(e);
  for (const i of items) if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(i)) throw bad(file, e, key, `"${i}" is not an interface name`);
  return items;
}

function absPath(e: KeyEntry, key: string, file: string): string {
  const v = e.value.trim();
  if (!v.startsWith('/')) throw bad(file, e, key, 'expected an absolute path');
  // a NUL would only surface later as a TypeError from the first fs call on the path
  if (v.includes('\0')) throw bad(file, e, key, 'a path must not contain NUL');
  return v;
}

/**
 * A wide-area DNS-SD domain (Domain=, --domain): lower-cased, no trailing dot; '' = off. Labels of
 * letters, digits, '-' and '_' (≤ 63 bytes), ≤ 200 bytes in all (room for the 60-hex subtype), not
 * under .local. Throws Error with the reason.
 */
export function parseDomainName(text: string): string {
  const v = text.trim().toLowerCase().replace(/\.$/, '');
  if (v === '') return '';
  if (v.length > 200 || !v.split('.').every((l) => /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l)) || v === 'local' || v.endsWith('.local')) {
    throw new Error(`expected a DNS domain name such as cache.example.com (not under .local), got ${JSON.stringify(text.slice(0, 80))}`);
  }
  return v;
}

function domainName(e: KeyEntry, key: string, file: string): string {
  try {
    return parseDomainName(e.value);
  } catch {
    throw bad(file, e, key, 'expected a DNS domain name such as cache.example.com (not under .local)');
  }
}

/** "ADDR[:PORT]" or "[V6]:PORT". */
function dnsServer(e: KeyEntry, key: string, file: string): string | undefined {
  const v = e.value.trim();
  if (v === '') return undefined;
  try {
    parseServerAddress(v);
  } catch {
    throw bad(file, e, key, 'expected ADDR or ADDR:PORT ([V6]:PORT for IPv6)');
  }
  return v;
}

const DAEMON_KEYS: Record<string, [keyof DaemonConfig, Parser]> = {
  Port: ['port', intIn(1, 65535)],
  IPv6: ['ipv6', parseBool],
  Path: ['path', absPath],
  MaxItemSize: ['maxItemSize', intIn(1, Number.MAX_SAFE_INTEGER)],
  CarbonCost: ['carbonCost', nonNegativeFloat],
  Cooldown: ['cooldown', intIn(0, 10 * 365 * 86400)],
  Bind: ['bind', bindList],
  LocalhostOnly: ['localhostOnly', parseBool],
  MaxUploads: ['maxUploads', intIn(1, 100000)],
  MaxUploadsPerPeer: ['maxUploadsPerPeer', intIn(1, 100000)],
  Interfaces: ['interfaces', ifaceList],
  Metered: ['metered', parseBool],
  Domain: ['domain', domainName],
  DnsServer: ['dnsServer', dnsServer],
  DnsKeyFile: ['dnsKeyFile', absPath],
};

/** Parses passim.conf text. Nothing is applied unless the whole file is valid. */
export function parseDaemonConfig(text: string, file: string): { config: DaemonConfig; warnings: string[] } {
  const kf = parseKeyFile(text, file);
  const config: DaemonConfig = { ...DEFAULT_CONFIG, bind: [], interfaces: [] };
  const warnings: string[] = [];
  for (const [group, entries] of kf) {
    if (group !== 'daemon') {
      const first = entries.values().next().value as KeyEntry | undefined;
      warnings.push(`${file}${first ? `:${first.line - 1}` : ''}: unknown group [${group.length > 80 ? `${group.slice(0, 80)}…` : group}] ignored`);
      continue;
    }
    for (const [key, entry] of entries) {
      const spec = DAEMON_KEYS[key];
      if (!spec) {
        warnings.push(`${file}:${entry.line}: unknown key "${key.length > 80 ? `${key.slice(0, 80)}…` : key}" in [daemon] ignored`);
        continue;
      }
      const [field, parse] = spec;
      (config as unknown as Record<string, unknown>)[field] = parse(entry, key, file);
    }
  }
  return { config, warnings };
}

export async function loadDaemonConfig(file: string, mustExist = false): Promise<ConfigLoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !mustExist) return { config: { ...DEFAULT_CONFIG, bind: [], interfaces: [] }, warnings: [], found: false };
    throw new ConfigError(`cannot read config: ${(err as Error).message}`, file);
  }
  return { ...parseDaemonConfig(text, file), found: true };
}
