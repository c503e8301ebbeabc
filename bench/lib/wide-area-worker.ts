/**
 * Runs inside a bench namespace host (subnet 2) against the router's named:
 *  1. registers `items` hashes at start with the real Registrar and times it until the server has
 *     acknowledged every update, counting the DNS bytes sent and received;
 *  2. `lookups` times: adds one more hash, and from the moment the server acknowledges that update
 *     times the zone lookup (a fresh Resolver: PTR, SRV + TXT, A) until the peer is found;
 *  3. removes everything (stop) and times that too.
 * The registration says the instance lives at `peerAddress` (host A on subnet 1); the lookups go
 * through the router like any host's on subnet 2. Prints one JSON line.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Registrar } from '../../lib/discovery/wide-area/registrar.js';
import { zoneBrowseMany } from '../../lib/discovery/wide-area/lookup.js';
import { silentLogger } from '../../lib/core/logger.js';

const cfg = JSON.parse(process.argv[2]!) as { server: { address: string; port: number }; zone: string; key: { name: string; secret: string }; peerAddress: string; items: number; lookups: number };
const key = { name: cfg.key.name, algorithm: 'hmac-sha256' as const, secret: Buffer.from(cfg.key.secret, 'base64') };
const hash = () => createHash('sha256').update(randomBytes(16)).digest('hex');

const reg = new Registrar({
  domain: cfg.zone, server: cfg.server, key, instance: 'Passim-BE0C', hostLabel: 'bench-be0c', port: 27500,
  addresses: () => [cfg.peerAddress], logger: silentLogger,
});
const hashes = Array.from({ length: cfg.items }, hash);
reg.setHashes(hashes);
const t0 = performance.now();
await reg.start();
await reg.whenIdle();
const registerMs = performance.now() - t0;
const st = reg.status();
if (st.state !== 'registered' || st.items !== cfg.items) throw new Error(`registration incomplete: ${JSON.stringify(st)}`);
const registerBytes = st.bytesSent + st.bytesReceived;

const browse = zoneBrowseMany({ domain: cfg.zone, server: cfg.server });
const afterAckMs: number[] = [];
const misses: number[] = [];
for (let i = 0; i < cfg.lookups; i++) {
  const h = hash();
  const acked = new Promise<number>((r) => reg.once('acked', () => r(performance.now())));
  reg.add(h);
  const ackAt = await acked;
  let foundAt = 0;
  await browse([h], { timeoutMs: 1000, onPeer: (_h, p) => { if (!foundAt && p.address === cfg.peerAddress) foundAt = performance.now(); } });
  if (foundAt) afterAckMs.push(foundAt - ackAt);
  else misses.push(i);
  await reg.whenIdle();
}
const t1 = performance.now();
await reg.stop(120_000);
const removeMs = performance.now() - t1;
process.stdout.write(JSON.stringify({ registerMs, registerBytes, items: cfg.items, sent: st.bytesSent, received: st.bytesReceived, afterAckMs, misses: misses.length, removeMs }) + '\n');
