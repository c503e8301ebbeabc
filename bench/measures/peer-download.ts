/**
 * Peer download + verify, host A → host B in a namespace LAN, at 256 MiB and 1 GiB side by side:
 * `passim fetch` on B (process start-up, mDNS discovery, HTTPS, sha256, temp file + fsync + rename)
 * against `curl -k URL | tee FILE | sha256sum` of the same URL (download, write and hash too, no
 * fsync), interleaved in one run (each round alternates which goes first). Wall time from spawn to
 * exit for both, so passim's start-up counts. A serves both items with Cooldown=0 and a share
 * limit high enough for every run. passim runs twice per round: as shipped (big bodies hashed and
 * written by a worker thread) and with PASSIM_FETCH_HASHING=inline (all on the main thread), so one
 * run shows whether the second core helps on this machine.
 */
import { join } from 'node:path';
import { mkdir, rm, stat } from 'node:fs/promises';
import type { Ctx } from '../lib/context.js';
import { seedItem } from '../lib/files.js';
import { passim, run } from '../lib/proc.js';
import { fmtBytes, fmtMs, fmtRate, fmtRatio, median, MiB } from '../lib/stats.js';
import type { Row } from '../lib/table.js';

export const name = 'peer-download';

interface Case {
  size: number;
  reps: number;
  /** passim's throughput ÷ curl|tee|sha256sum's, wall time including start-up */
  target: number;
}

export async function measure(ctx: Ctx): Promise<Row[]> {
  const cases: Case[] = ctx.quick
    ? [{ size: 16 * MiB, reps: 2, target: 1.2 }, { size: ctx.bigSize, reps: 2, target: 1.5 }]
    : [{ size: 256 * MiB, reps: 5, target: 1.2 }, { size: ctx.bigSize, reps: 3, target: 1.5 }];
  const files = await Promise.all(cases.map((c) => ctx.randomFile(c.size)));
  const lan = await ctx.lan(2);
  const [A, B] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0]];
  const root = await ctx.makeRoot();
  for (const [i, f] of files.entries()) await seedItem(join(root, 'state'), f.path, f.sha256, `f${i}.bin`, { shareLimit: 1_000_000 });
  const maxSize = Math.max(...files.map((f) => f.size));
  await ctx.daemon(A, { root, conf: `Cooldown=0\nMaxItemSize=${4 * maxSize}` });
  const outDir = join(ctx.work, 'peer-out');
  await mkdir(outDir, { recursive: true });

  const rows: Row[] = [];
  for (const [i, c] of cases.entries()) {
    const f = files[i]!;
    const file = `f${i}.bin`;
    const url = `https://${A.address}:27500/${file}?sha256=${f.sha256}`;
    const out = join(outDir, file);
    const curlMs: number[] = [];
    const passimMs: number[] = [];
    const passimInnerMs: number[] = [];
    const inlineMs: number[] = [];

    const curl = async () => {
      const r = await run('sh', ['-c', `curl -sSk '${url}' | tee '${out}' | sha256sum`], { ns: B.ns });
      if (r.code !== 0 || r.stdout.split(' ')[0] !== f.sha256) throw new Error(`curl | tee | sha256sum failed: ${r.stderr || r.stdout}`);
      if ((await stat(out)).size !== f.size) throw new Error('curl | tee wrote a short file');
      await rm(out, { force: true });
      curlMs.push(r.ms);
      return r.ms;
    };
    const fetchWith = async (hashing: 'worker' | 'inline') => {
      const r = await passim(['fetch', file, '--sha256', f.sha256, '-o', out, '--no-publish', '--no-cdn', '--json',
        '--socket', join(outDir, 'no-daemon.sock')], { ns: B.ns, env: hashing === 'inline' ? { PASSIM_FETCH_HASHING: 'inline' } : {} });
      if (r.code !== 0) throw new Error(`passim fetch failed: ${r.stderr}`);
      const j = JSON.parse(r.stdout) as { source: string; ms: number };
      if (j.source !== 'peer') throw new Error(`passim fetch used ${j.source}, not the peer`);
      await rm(out, { force: true });
      if (hashing === 'inline') inlineMs.push(r.ms);
      else {
        passimMs.push(r.ms);
        passimInnerMs.push(j.ms);
      }
      return r.ms;
    };
    const fetch = async () => {
      await fetchWith('worker');
      await fetchWith('inline');
    };

    // one untimed round of each first: page cache of A's file, TLS session setup paths, dist/ in cache
    await curl();
    await fetch();
    curlMs.length = 0;
    passimMs.length = 0;
    passimInnerMs.length = 0;
    inlineMs.length = 0;
    for (let rep = 0; rep < c.reps; rep++) {
      const first = rep % 2 === 0 ? curl : fetch;
      const second = rep % 2 === 0 ? fetch : curl;
      await first();
      await second();
      ctx.log(`  ${fmtBytes(c.size)} run ${rep + 1}/${c.reps}: curl|tee|sha256sum ${Math.round(curlMs.at(-1)!)} ms, ` +
        `passim fetch ${Math.round(passimMs.at(-1)!)} ms (in-process ${passimInnerMs.at(-1)} ms), ` +
        `same with PASSIM_FETCH_HASHING=inline ${Math.round(inlineMs.at(-1)!)} ms`);
    }
    const curlRate = c.size / (median(curlMs) / 1000);
    const passimRate = c.size / (median(passimMs) / 1000);
    const ratio = passimRate / curlRate;
    const startup = median(passimMs) - median(passimInnerMs);
    rows.push({
      group: name,
      measure: `peer download + verify, ${fmtBytes(c.size)}, A→B netns (passim fetch, wall incl. start-up)`,
      value: `${fmtRate(passimRate)} (${fmtMs(median(passimMs))}, median of ${c.reps}; start-up+exit ${fmtMs(startup)})`,
      baseline: `curl -k | tee FILE | sha256sum ${fmtRate(curlRate)} (${fmtMs(median(curlMs))})`,
      ratio: fmtRatio(ratio),
      target: `≥ ${c.target.toFixed(1)}×`,
      met: ratio >= c.target,
      data: { size: c.size, curlMs, passimMs, passimInnerMs, curlRate, passimRate, ratio, target: c.target },
    });
    const inlineRate = c.size / (median(inlineMs) / 1000);
    rows.push({
      group: name,
      measure: `  same, ${fmtBytes(c.size)}, hashing on the main thread (PASSIM_FETCH_HASHING=inline)`,
      value: `${fmtRate(inlineRate)} (${fmtMs(median(inlineMs))}, median of ${c.reps})`,
      baseline: `curl -k | tee FILE | sha256sum ${fmtRate(curlRate)}`,
      ratio: fmtRatio(inlineRate / curlRate),
      target: '—',
      met: null,
      data: { size: c.size, inlineMs, inlineRate, ratio: inlineRate / curlRate },
    });
  }
  return rows;
}
