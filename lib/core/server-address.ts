/** "ADDR[:PORT]" as config files and flags give a DNS server (DnsServer=, --dns-server). */
import { isIP } from 'node:net';

export interface ServerAddress { address: string; port: number }

/** "ADDR", "ADDR:PORT", "V6", "[V6]:PORT" → address and port (default `defaultPort`). Throws Error with a reason. */
export function parseServerAddress(text: string, defaultPort = 53): ServerAddress {
  const t = text.trim();
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(t) ?? /^([^:]+)(?::(\d{1,5}))?$/.exec(t) ?? [t, t, undefined];
  const address = m[1]!;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!isIP(address)) throw new Error(`"${text}" is not an IP address with an optional :PORT ([V6]:PORT for IPv6)`);
  if (port < 1 || port > 65535) throw new Error(`bad port in "${text}"`);
  return { address, port };
}

export function formatServerAddress(s: ServerAddress): string {
  return isIP(s.address) === 6 ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`;
}
