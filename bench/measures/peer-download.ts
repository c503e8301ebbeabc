/**
 * Peer download + verify of the big file, host A → host B in a namespace LAN: `passim fetch` on B
 * (mDNS discovery, HTTPS, sha256 while streaming, temp file + fsync + rename) against
 * `curl -k URL | sha256sum` of the same URL, interleaved in the same run. A serves with
 * Cooldown=0 and a share-limit high enough for every run.
 */
import { join } from 'node:path';
import { mkdir, rm } from 'node:fs/promises';
import type { Ctx } from '../lib/context.js';
import { seedItem } from '../lib/files.js';
import { passim, run } from '../lib/proc.js';
import { fmtBytes, fmtRate, fmtRatio, median } from '../lib/stats.js';
import type { Row } from '../lib/table.js';

export const name = 'peer-download';

export async function measure(ctx: Ctx): Promise<Row[]> {
  const big = await ctx.bigFile();
  const lan = await ctx.lan(2);
  const [A, B] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0]];
  const root = await ctx.makeRoot();
  await seedItem(join(root, 'state'), big.path, big.sha256, 'big.bin', { shareLimit: 1_000_000 });
  await ctx.daemon(A, { root, conf: `Cooldown=0\nMaxItemSize=${4 * big.size}` });
  const url = `https://${A.address}:27500/big.bin?sha256=${big.sha256}`;
  const outDir = join(ctx.work, 'peer-out');
  await mkdir(outDir, { recursive: true });
  const reps = ctx.quick ? 2 : 3;
  const curlMs: number[] = [];
  const passimMs: number[] = [];
  const passimInnerMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c = await run('sh', ['-c', `curl -sSk '${url}' | sha256sum`], { ns: B.ns });
    if (c.code !== 0 || c.stdout.split(' ')[0] !== big.sha256) throw new Error(`curl | sha256sum failed: ${c.stderr || c.stdout}`);
    curlMs.push(c.ms);
    const out = join(outDir, 'big.bin');
    const p = await passim(['fetch', 'big.bin', '--sha256', big.sha256, '-o', out, '--no-publish', '--no-cdn', '--json',
      '--socket', join(outDir, 'no-daemon.sock')], { ns: B.ns });
    if (p.code !== 0) throw new Error(`passim fetch failed: ${p.stderr}`);
    const j = JSON.parse(p.stdout) as { source: string; ms: number };
    if (j.source !== 'peer') throw new Error(`passim fetch used ${j.source}, not the peer`);
    passimMs.push(p.ms);
    passimInnerMs.push(j.ms);
    await rm(out, { force: true });
    ctx.log(`  run ${i + 1}/${reps}: curl|sha256sum ${Math.round(c.ms)} ms, passim fetch ${Math.round(p.ms)} ms (in-process ${j.ms} ms)`);
  }
  const curlRate = big.size / (median(curlMs) / 1000);
  const passimRate = big.size / (median(passimMs) / 1000);
  const ratio = passimRate / curlRate;
  return [{
    group: name,
    measure: `peer download + verify, ${fmtBytes(big.size)}, A→B netns (passim fetch)`,
    value: `${fmtRate(passimRate)} (median of ${reps}, wall incl. start)`,
    baseline: `curl -k | sha256sum ${fmtRate(curlRate)}`,
    ratio: fmtRatio(ratio),
    target: '≥ 1.0×',
    met: ratio >= 1.0,
    data: { size: big.size, curlMs, passimMs, passimInnerMs, curlRate, passimRate, ratio },
  }];
}
