/**
 * dns-packet and multicast-dns, loaded with require(): imported as ES modules, Node first scans
 * each CommonJS file for the names it exports, which cost the daemon ~20–40 ms between spawn and
 * its first mDNS probe.
 */
import { createRequire } from 'node:module';
import type * as DnsPacket from 'dns-packet';
import type makeMdns from 'multicast-dns';

const require = createRequire(import.meta.url);

export const dnsPacket = require('dns-packet') as typeof DnsPacket;
export const makeMulticastDns = require('multicast-dns') as typeof makeMdns;
export type { DnsPacket };
