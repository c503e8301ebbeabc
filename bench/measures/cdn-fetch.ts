/**
 * `passim fetch` from the CDN only (10 MiB, no peer on the LAN, no local daemon) against
 * `curl -o` of the same URL, both verifying TLS against the stand-in CDN's certificate, run
 * alternately. Shown twice: the default (mDNS discovery first, which waits for its timeout when
 * nobody answers) and `--no-peers` (the cost of the client itself).
 */
import { join } from 'node:path';
import { mkdir, rm } from 'node:fs/promises';
import type { Ctx } from '../lib/context.js';
import { MiB, fmtMs, fmtRatio, median } from '../lib/stats.js';
import { passim, run } from '../lib/proc.js';
import type { Row } from '../lib/table.js';

export const name = 'cdn-fetch';

export async function measure(ctx: Ctx): Promise<Row[]> {
  const f = await ctx.randomFile(10 * MiB);
  const lan = await ctx.lan(2);
  const [C, cdnHost] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0]];
  const cdn = await ctx.cdn(cdnHost, { '/files/cdn.bin': { file: f.path } });
  const url = cdn.url('/files/cdn.bin');
  const dir = join(ctx.work, 'cdn-out');
  await mkdir(dir, { recursive: true });
  const out = join(dir, 'cdn.bin');
  const env = { PASSIM_CDN_CA: cdn.cert };
  const reps = ctx.quick ? 3 : 9;
  const curl: number[] = [];
  const dflt: number[] = [];
  const noPeers: number[] = [];
  const inner: number[] = [];
  const fetch = async (extra: string[]) => {
    const r = await passim(['fetch', 'cdn.bin', '--sha256', f.sha256, '--cdn', url, '-o', out, '--no-publish', '--json',
      '--socket', join(dir, 'no-daemon.sock'), ...extra], { ns: C.ns, env });
    if (r.code !== 0) throw new Error(`passim fetch: ${r.stderr}`);
    const j = JSON.parse(r.stdout) as { source: string; ms: number };
    if (j.source !== 'cdn') throw new Error(`passim fetch used ${j.source}`);
    await rm(out);
    return { ms: r.ms, inner: j.ms };
  };
  // warm-up (page cache, the CDN's first TLS handshake)
  await run('curl', ['-sS', '--cacert', cdn.cert, '-o', out, url], { ns: C.ns });
  await rm(out, { force: true });
  for (let i = 0; i < reps; i++) {
    const c = await run('curl', ['-sS', '--cacert', cdn.cert, '-o', out, url], { ns: C.ns });
    if (c.code !== 0) throw new Error(`curl: ${c.stderr}`);
    curl.push(c.ms);
    await rm(out);
    const a = await fetch([]);
    dflt.push(a.ms);
    inner.push(a.inner);
    noPeers.push((await fetch(['--no-peers'])).ms);
  }
  const base = median(curl);
  const row = (what: string, xs: number[], data: Record<string, unknown> = {}): Row => ({
    group: name,
    measure: `passim fetch from CDN, 10 MiB, ${what}`,
    value: `${fmtMs(median(xs))} (median of ${reps})`,
    baseline: `curl -o ${fmtMs(base)}`,
    ratio: fmtRatio(median(xs) / base),
    target: '≤ 1.3× wall',
    met: median(xs) / base <= 1.3,
    data: { samplesMs: xs, curlMs: curl, ...data },
  });
  return [
    row('no peers on the LAN (default: discovery first)', dflt, { innerMs: inner }),
    row('--no-peers (client cost alone)', noPeers),
  ];
}
