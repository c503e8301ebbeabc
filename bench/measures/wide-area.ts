/**
 * Wide-area DNS-SD (issue 11) on two subnets joined by a router namespace running a real BIND 9
 * `named` with the README's zone (test/helpers/named.ts):
 *  - B (subnet 2) finds A's item after the server acknowledged A's update (target ≤ 100 ms);
 *  - registering 10,000 items at start: time until every update is acknowledged (≤ 5 s) and DNS
 *    bytes per 1,000 items (≤ 1 MB), by bench/lib/wide-area-worker.ts with the real Registrar;
 *  - what a zone lookup adds to a fetch when mDNS also answers (≤ 10 ms): the fetch engine in one
 *    process on the peer's link (bench/lib/zone-fetch-worker.ts), alternating without and with the
 *    zone finder, medians side by side.
 */
import { join } from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { execa } from 'execa';
import type { Ctx } from '../lib/context.js';
import { fmtMs, median, percentile } from '../lib/stats.js';
import { passim, run } from '../lib/proc.js';
import type { Row } from '../lib/table.js';
import { createRoutedNet, type LanHost } from '../../test/helpers/netns.js';
import { startDaemon, type TestDaemon } from '../../test/helpers/daemon.js';
import { NAMED, startNamed } from '../../test/helpers/named.js';

export const name = 'wide-area';
const ZONE = 'cache.test';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function measure(ctx: Ctx): Promise<Row[]> {
  if (!existsSync(NAMED)) throw new Error('needs bind9 (named) and bind9-dnsutils');
  const net = await createRoutedNet([2, 1]);
  const daemons: TestDaemon[] = [];
  let named: Awaited<ReturnType<typeof startNamed>> | undefined;
  try {
    const [A, C] = net.subnets[0]!;
    const B = net.subnets[1]![0]!;
    const keyText = (await execa('tsig-keygen', ['-a', 'hmac-sha256', 'passim'])).stdout;
    const secret = /secret "([^"]+)"/.exec(keyText)![1]!;
    named = await startNamed(net.router, { zone: ZONE, address: net.router.addresses[0]!, keyName: 'passim', secret });
    const server = { address: named.address, port: named.port };
    const items = ctx.quick ? 2000 : 10_000;
    const lookups = ctx.quick ? 10 : 50;
    const w = await run(process.execPath, ['--import', 'tsx', 'bench/lib/wide-area-worker.ts',
      JSON.stringify({ server, zone: ZONE, key: { name: 'passim', secret }, peerAddress: A!.address, items, lookups })],
    { ns: B.ns, timeoutMs: 600_000 });
    if (w.code !== 0) throw new Error(`wide-area worker: ${w.stderr}`);
    const r = JSON.parse(w.stdout.trim().split('\n').pop()!) as { registerMs: number; registerBytes: number; items: number; afterAckMs: number[]; misses: number; removeMs: number; sent: number; received: number };
    const per1000 = (r.registerBytes / r.items) * 1000;
    const p50 = percentile(r.afterAckMs, 50);
    const p99 = percentile(r.afterAckMs, 99);
    const rows: Row[] = [
      {
        group: name, measure: 'B finds A\'s item after the server acked it (zone lookup through the router)',
        value: `p50 ${fmtMs(p50)}, p99 ${fmtMs(p99)} (${r.afterAckMs.length} runs${r.misses ? `, ${r.misses} not found` : ''})`,
        baseline: '—', ratio: '—', target: '≤ 100 ms', met: r.misses === 0 && p99 <= 100, data: { afterAckMs: r.afterAckMs, misses: r.misses },
      },
      {
        group: name, measure: `registering ${r.items} items at start (all updates acked)`,
        value: `${fmtMs(r.registerMs)}; ${(per1000 / 1e6).toFixed(3)} MB DNS traffic per 1,000 items`,
        baseline: '—', ratio: '—', target: '≤ 5 s (10,000), ≤ 1 MB / 1,000', met: r.registerMs <= 5000 * (r.items / 10_000) && per1000 <= 1e6,
        data: { registerMs: r.registerMs, bytes: r.registerBytes, sent: r.sent, received: r.received, removeMs: r.removeMs },
        note: `removing them all at shutdown took ${fmtMs(r.removeMs)}`,
      },
    ];

    // what the zone lookup adds to a fetch that mDNS answers (peer A and client C on one link; A is
    // registered in the zone too, as every daemon with a key is)
    try {
      rows.push(await zoneAddedLatency(ctx, { A: A!, C: C!, server, secret, daemons }));
    } catch (err) {
      rows.push({ group: name, measure: 'fetch from a same-link peer, zone lookup on vs off', value: 'failed', baseline: '—', ratio: '—', target: '≤ +10 ms', met: false, note: (err as Error).message.split('\n')[0] });
    }
    return rows;
  } finally {
    await Promise.all(daemons.map(async (d) => { await d.stop().catch(() => undefined); await d.cleanup().catch(() => undefined); }));
    await named?.stop();
    await net.destroy();
  }
}

async function zoneAddedLatency(ctx: Ctx, o: { A: LanHost; C: LanHost; server: { address: string; port: number }; secret: string; daemons: TestDaemon[] }): Promise<Row> {
  const { A, C, server } = o;
  const root = await ctx.makeRoot();
  const keyFile = join(root, 'dns.key');
  await writeFile(keyFile, `key "passim" {\n\talgorithm hmac-sha256;\n\tsecret "${o.secret}";\n};\n`, { mode: 0o600 });
  // Cooldown=0: the client asks A for the same hash in every run
  await writeFile(join(root, 'config', 'passim.conf'), `[daemon]\nCooldown=0\nDomain=${ZONE}\nDnsServer=${server.address}:${server.port}\nDnsKeyFile=${keyFile}\n`);
  const dA = await startDaemon({ host: A, root, readyTimeout: 60_000 });
  o.daemons.push(dA);
  const dir = join(ctx.work, 'wide-area');
  await mkdir(dir, { recursive: true });
  const data = randomBytes(64 * 1024);
  await writeFile(join(dir, 'f.bin'), data);
  // a share-limit above the number of runs, or A deletes the item midway
  await passim(['publish', join(dir, 'f.bin'), '--share-limit', '0', '--socket', dA.socket], { ns: A.ns });
  const runs = ctx.quick ? 6 : 30;
  const w = await run(process.execPath, ['--import', 'tsx', 'bench/lib/zone-fetch-worker.ts',
    JSON.stringify({ sha256: sha(data), name: 'f.bin', zone: ZONE, server, dir, runs })], { ns: C.ns, timeoutMs: 600_000 });
  if (w.code !== 0) throw new Error(`zone-fetch worker: ${w.stderr}`);
  const { on, off, misses } = JSON.parse(w.stdout.trim().split('\n').pop()!) as { on: number[]; off: number[]; misses: { on: number; off: number } };
  const added = median(on) - median(off);
  return {
    group: name, measure: 'fetch from a same-link peer (64 KiB), zone lookup on vs off (one process, alternating)',
    value: `${fmtMs(median(on))} vs ${fmtMs(median(off))} median (${runs} runs each${misses.on + misses.off ? `; no peer found: ${misses.on} on, ${misses.off} off` : ''})`,
    baseline: 'zone off', ratio: `${added >= 0 ? '+' : ''}${fmtMs(added)}`, target: '≤ +10 ms', met: added <= 10 && misses.on === 0,
    data: { onMs: on, offMs: off, misses },
  };
}
