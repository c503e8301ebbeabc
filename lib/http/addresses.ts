/** Peer addresses: normalisation (IPv4-mapped IPv6 → IPv4), the loopback test, URL host formatting. */
import { isIPv4, isIPv6 } from 'node:net';

/** "::ffff:10.0.0.1" → "10.0.0.1"; anything else unchanged. */
export function normaliseAddress(addr: string | undefined): string {
  if (!addr) return '';
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(addr);
  return m ? m[1] : addr;
}

/** 127.0.0.0/8, ::1 and ::ffff:127.x.x.x are loopback. */
export function isLoopbackAddress(addr: string | undefined): boolean {
  const a = normaliseAddress(addr);
  if (isIPv4(a)) return a.startsWith('127.');
  if (isIPv6(a)) {
    const lower = a.toLowerCase();
    return lower === '::1' || lower === '0:0:0:0:0:0:0:1';
  }
  return false;
}

/** An address as the host part of a URL: IPv6 in brackets with its zone id escaped ("%" → "%25"). */
export function urlHost(addr: string): string {
  if (isIPv4(addr)) return addr;
  if (addr.includes(':')) return `[${addr.replace("%", "%25")}]`;
  return addr;
}
