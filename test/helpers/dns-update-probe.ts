/**
 * Sends one RFC 2136 update built and signed by lib/discovery/wide-area (run inside a test
 * namespace): `node --import tsx test/helpers/dns-update-probe.ts JSON` with JSON =
 * { server: {address, port}, zone, key: {name, secret (base64)}, updates: UpdateOp[] (TXT data as
 * strings), prerequisites?, lease?, tcp? }. Prints one JSON line: { rcode, rcodeName, tsigError,
 * verified, reason? } — verified: the server's signed answer passed our TSIG check (its MAC
 * covers our request's MAC).
 */
import { randomInt } from 'node:crypto';
import { encodeUpdate, readHeader, rcodeName, type UpdateOp } from '../../lib/discovery/wide-area/update-message.js';
import { sign, verify, tsigErrorName } from '../../lib/discovery/wide-area/tsig.js';
import { exchangeUdp, TcpSession } from '../../lib/discovery/wide-area/transport.js';

const cfg = JSON.parse(process.argv[2]!) as {
  server: { address: string; port: number }; zone: string; key: { name: string; secret: string };
  updates: UpdateOp[]; prerequisites?: Array<{ name: string; type: 'PTR' | 'SRV' | 'TXT' | 'A' | 'AAAA'; present: boolean }>;
  lease?: number; tcp?: boolean;
};
const key = { name: cfg.key.name, algorithm: 'hmac-sha256' as const, secret: Buffer.from(cfg.key.secret, 'base64') };
const updates = cfg.updates.map((u) => (u.op !== 'delete-rrset' && u.type === 'TXT' ? { ...u, data: (u.data as unknown as string[]).map((s) => Buffer.from(s)) } : u)) as UpdateOp[];
const signed = sign(encodeUpdate({ id: randomInt(0, 0x10000), zone: cfg.zone, updates, prerequisites: cfg.prerequisites, lease: cfg.lease }), key);
let reply: Buffer;
if (cfg.tcp) {
  const s = new TcpSession(cfg.server, { timeoutMs: 3000 });
  reply = await s.send(signed.message);
  s.close();
} else {
  reply = await exchangeUdp(cfg.server, signed.message, { timeoutMs: 1000 });
}
const h = readHeader(reply);
const v = verify(reply, key, { requestMac: signed.mac });
process.stdout.write(JSON.stringify({
  rcode: h.rcode, rcodeName: rcodeName(h.rcode), bytes: signed.message.length,
  tsigError: v.ok ? tsigErrorName(v.error) : undefined, verified: v.ok && v.error === 0, reason: v.ok ? undefined : v.reason,
}) + '\n');
