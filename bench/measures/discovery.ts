/**
 * mDNS discovery in a namespace LAN of real `passim serve` daemons, timed by
 * bench/lib/browse-timer.ts on a client host with passim's own browser:
 *  - time to first peer when 1 peer / 10 peers hold the hash (N runs each, p50/p99);
 *  - no peer → decision to use the CDN: the browse ending with nothing found, and the fetch client
 *    (fetchFile, no local daemon) from its start to its first CDN request.
 */
import { join } from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import type { Ctx } from '../lib/context.js';
import { fmtMs, median, percentile } from '../lib/stats.js';
import { passim, run } from '../lib/proc.js';
import type { Row } from '../lib/table.js';

export const name = 'discovery';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function measure(ctx: Ctx): Promise<Row[]> {
  const peers = 10;
  const lan = await ctx.lan(peers + 2);
  const client = lan.hosts[peers]!;
  const cdnHost = lan.hosts[peers + 1]!;
  const daemons = await Promise.all(lan.hosts.slice(0, peers).map((h) => ctx.daemon(h)));
  const dir = join(ctx.work, 'discovery');
  await mkdir(dir, { recursive: true });
  const one = randomBytes(4096);
  const ten = randomBytes(4096);
  await writeFile(join(dir, 'one.bin'), one);
  await writeFile(join(dir, 'ten.bin'), ten);
  await passim(['publish', join(dir, 'one.bin'), '--socket', daemons[0]!.socket], { ns: lan.hosts[0]!.ns });
  await Promise.all(daemons.map((d, i) => passim(['publish', join(dir, 'ten.bin'), '--socket', d.socket], { ns: lan.hosts[i]!.ns })));
  const small = randomBytes(64 * 1024);
  await writeFile(join(dir, 'small.bin'), small);
  const cdn = await ctx.cdn(cdnHost, { '/small.bin': { file: join(dir, 'small.bin') } });
  const runs = ctx.quick ? 10 : 50;
  const decisionRuns = ctx.quick ? 5 : 20;
  const jobs = [
    { kind: 'first-peer', hash: sha(one), runs, gapMs: 60, expect: 1 },
    { kind: 'first-peer', hash: sha(ten), runs, gapMs: 60, expect: peers },
    { kind: 'no-peer', hash: sha(randomBytes(8)), runs: decisionRuns, gapMs: 20 },
    { kind: 'fetch-decision', hash: sha(small), name: 'small.bin', cdn: cdn.url('/small.bin'), runs: decisionRuns, gapMs: 20, dir },
  ];
  const r = await run(process.execPath, ['--import', 'tsx', 'bench/lib/browse-timer.ts', JSON.stringify({ jobs })],
    { ns: client.ns, env: { PASSIM_CDN_CA: cdn.cert }, timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`browse-timer: ${r.stderr}`);
  const [p1, p10, none, dec] = (JSON.parse(r.stdout.trim().split('\n').pop()!) as { results: any[] }).results as [
    { firstMs: number[]; allMs: number[]; misses: number },
    { firstMs: number[]; allMs: number[]; misses: number },
    { endMs: number[] },
    { tryCdnMs: number[]; totalMs: number[] },
  ];
  const lat = (what: string, x: { firstMs: number[]; allMs: number[]; misses: number }, extra = ''): Row => {
    const p50 = percentile(x.firstMs, 50);
    const p99 = percentile(x.firstMs, 99);
    return {
      group: name,
      measure: `time to first peer, ${what}`,
      value: `p50 ${fmtMs(p50)}, p99 ${fmtMs(p99)} (${x.firstMs.length} runs${x.misses ? `, ${x.misses} found none` : ''})${extra}`,
      baseline: '—',
      ratio: '—',
      target: 'p50 ≤ 50 ms, p99 ≤ 200 ms',
      met: x.misses === 0 && p50 <= 50 && p99 <= 200,
      data: x,
    };
  };
  const noneMed = median(none.endMs);
  const decMed = median(dec.tryCdnMs);
  return [
    lat('1 peer', p1),
    lat(`${peers} peers`, p10, `; all ${peers} found: p50 ${fmtMs(percentile(p10.allMs, 50))}`),
    {
      group: name,
      measure: 'no peer → decision to use the CDN (fetch client)',
      value: `${fmtMs(decMed)} median, max ${fmtMs(Math.max(...dec.tryCdnMs))} (${dec.tryCdnMs.length} runs)`,
      baseline: '—',
      ratio: '—',
      target: '≤ 500 ms',
      met: decMed <= 500,
      data: { fetchTryCdnMs: dec.tryCdnMs, fetchTotalMs: dec.totalMs, browseEndMs: none.endMs },
      note: `the browse alone (default timeout 500 ms) ends after ${fmtMs(noneMed)} median`,
    },
  ];
}
