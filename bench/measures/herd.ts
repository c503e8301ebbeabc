/**
 * Herd: 20 hosts, each with its own daemon, run `passim fetch` for the same file at the same moment
 * against a counting stand-in CDN (test/helpers/https-file-server.ts prints `hit <path>` per
 * request). Without any cache every host goes to the CDN (20 hits); herd suppression aims at ≤ 2.
 * When `passim fetch` has `--no-herd`, a first round with it (and --no-publish) on another file
 * measures the no-suppression baseline in the same run.
 */
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { LanHost } from '../../test/helpers/netns.js';
import type { Ctx } from '../lib/context.js';
import { MiB, fmtMs, median } from '../lib/stats.js';
import { passim } from '../lib/proc.js';
import type { Row } from '../lib/table.js';

export const name = 'herd';

export async function measure(ctx: Ctx): Promise<Row[]> {
  const n = ctx.quick ? 8 : 20;
  const size = ctx.quick ? 4 * MiB : 16 * MiB;
  const help = await passim(['fetch', '--help']);
  const hasNoHerd = /--no-herd|--herd/.test(help.stdout);
  const lan = await ctx.lan(n + 1);
  const hosts = lan.hosts.slice(0, n);
  const cdnHost = lan.hosts[n]!;
  // 20 daemons starting at once on 2 cores (each probing mDNS) can take minutes: 4 at a time
  const daemons: Awaited<ReturnType<Ctx['daemon']>>[] = [];
  for (let i = 0; i < hosts.length; i += 4) {
    daemons.push(...(await Promise.all(hosts.slice(i, i + 4).map((h) => ctx.daemon(h, { readyTimeout: 120_000 })))));
  }
  const a = await ctx.randomFile(size);
  const b = await ctx.randomFile(size + 1);
  const cdn = await ctx.cdn(cdnHost, { '/herd/a.bin': { file: a.path }, '/herd/b.bin': { file: b.path } });
  const dir = join(ctx.work, 'herd');
  await mkdir(dir, { recursive: true });

  const round = async (file: { sha256: string }, path: string, extra: string[]) => {
    const before = cdn.hits.filter((h) => h === path).length;
    const t = performance.now();
    const res = await Promise.all(hosts.map((h: LanHost, i) => passim(['fetch', path.split('/').pop()!, '--sha256', file.sha256,
      '--cdn', cdn.url(path), '-o', join(dir, `${i}-${path.split('/').pop()}`), '--json', '--socket', daemons[i]!.socket, ...extra],
    { ns: h.ns, env: { PASSIM_CDN_CA: cdn.cert }, timeoutMs: 180_000 })));
    const wall = performance.now() - t;
    const failed = res.filter((r) => r.code !== 0);
    const sources: Record<string, number> = {};
    for (const r of res) {
      if (r.code !== 0) continue;
      const s = (JSON.parse(r.stdout) as { source: string }).source;
      sources[s] = (sources[s] ?? 0) + 1;
    }
    const hits = cdn.hits.filter((h) => h === path).length - before;
    return { hits, wall, failed: failed.length, firstError: failed[0]?.stderr.trim().split('\n')[0], sources, procMs: res.map((r) => r.ms) };
  };

  let baseline: Awaited<ReturnType<typeof round>> | undefined;
  if (hasNoHerd) {
    baseline = await round(a, '/herd/a.bin', ['--no-herd', '--no-publish']);
    ctx.log(`  --no-herd: ${baseline.hits} CDN hits, sources ${JSON.stringify(baseline.sources)}, ${baseline.failed} failed`);
  }
  const herd = await round(b, '/herd/b.bin', []);
  ctx.log(`  default: ${herd.hits} CDN hits, sources ${JSON.stringify(herd.sources)}, ${herd.failed} failed${herd.firstError ? ` (${herd.firstError})` : ''}`);
  return [{
    group: name,
    measure: `CDN hits, ${n} hosts run passim fetch (${size / MiB} MiB) at once`,
    value: `${herd.hits} hits (sources ${Object.entries(herd.sources).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}${herd.failed ? `, ${herd.failed} failed` : ''}; wall p50 ${fmtMs(median(herd.procMs))})`,
    baseline: baseline ? `--no-herd: ${baseline.hits} hits` : `${n} (no cache; --no-herd not available)`,
    ratio: '—',
    target: '≤ 2',
    met: herd.failed === 0 && herd.hits <= 2,
    data: { hosts: n, size, hasNoHerd, herd, baseline },
    note: hasNoHerd ? undefined : 'herd suppression not in this build (no --no-herd flag on passim fetch): measured as is',
  }];
}
