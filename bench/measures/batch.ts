/**
 * Batch fetch (issue 9): `passim fetch --from LIST` of 100 × 10 KB files on a namespace LAN whose
 * mirror (bench/lib/slow-mirror.ts) adds ~20 ms per request and shares 100 Mbit/s.
 * - warm: host A's daemon holds every file (published before the run, so host B's daemon heard
 *   them announced); B fetches the list. Wall time of the whole command (start-up included) per
 *   file, and the mirror's requests for the files (should be 0).
 * - cold: nobody holds anything; B fetches the list (from the mirror, publishing to its daemon),
 *   against `curl --parallel` of the same URLs on the same host, as a ratio.
 * Each run uses fresh files (new hashes), so no run is served by what an earlier one published.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Ctx } from '../lib/context.js';
import { slowMirror } from '../lib/slow-mirror.js';
import { fmtMs, fmtRatio, median } from '../lib/stats.js';
import { passim, run, runOk } from '../lib/proc.js';
import type { Row } from '../lib/table.js';
import { ControlClient } from '../../lib/control/client.js';

export const name = 'batch';

interface FileSet { dir: string; list: string; urls: string[]; paths: string[]; hashes: string[] }

export async function measure(ctx: Ctx): Promise<Row[]> {
  const n = ctx.quick ? 30 : 100;
  const size = 10_000;
  const runs = ctx.quick ? 2 : 3;
  const lan = await ctx.lan(3);
  const [A, B, M] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0], typeof lan.hosts[0]];
  const root = join(ctx.work, 'batch-mirror');
  await mkdir(root, { recursive: true });
  const [dA, dB] = await Promise.all([ctx.daemon(A), ctx.daemon(B)]);
  const mirror = await slowMirror(M, { root });
  let setNo = 0;
  const makeSet = async (): Promise<FileSet> => {
    const sub = `s${setNo++}`;
    const dir = join(root, sub);
    await mkdir(dir);
    const set: FileSet = { dir, list: '', urls: [], paths: [], hashes: [] };
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const data = randomBytes(size);
      const fname = `f${i}.deb`;
      const p = join(dir, fname);
      await writeFile(p, data);
      const h = createHash('sha256').update(data).digest('hex');
      const url = mirror.url(`/${sub}/${fname}`);
      set.urls.push(url);
      set.paths.push(p);
      set.hashes.push(h);
      lines.push(`${h} ${fname} ${url}`);
    }
    set.list = join(ctx.work, `batch-list-${sub}`);
    await writeFile(set.list, lines.join('\n') + '\n');
    return set;
  };
  const outDir = async (tag: string) => {
    const d = join(ctx.work, `batch-out-${tag}-${setNo}`);
    await mkdir(d);
    return d;
  };
  const fetchList = async (set: FileSet, tag: string) => {
    const before = mirror.hits.length;
    const r = await passim(['fetch', '--from', set.list, '-o', await outDir(tag), '--json', '--socket', dB.socket], { ns: B.ns, timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`passim fetch --from (${tag}) exit ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' / ')}`);
    const sources: Record<string, number> = {};
    for (const l of r.stdout.trim().split('\n')) {
      const s = (JSON.parse(l) as { source: string }).source;
      sources[s] = (sources[s] ?? 0) + 1;
    }
    return { ms: r.ms, mirrorHits: mirror.hits.length - before, sources };
  };

  const warm: Array<Awaited<ReturnType<typeof fetchList>>> = [];
  const cold: Array<Awaited<ReturnType<typeof fetchList>>> = [];
  const curl: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      // warm: A holds the set (B's daemon hears the announcements)
      const ws = await makeSet();
      const c = new ControlClient(dA.socket);
      try {
        for (const p of ws.paths) await c.publish(p, { shareLimit: 0 });
      } finally {
        await c.destroy();
      }
      warm.push(await fetchList(ws, 'warm'));
      ctx.log(`  warm run ${i + 1}: ${fmtMs(warm.at(-1)!.ms)}, sources ${JSON.stringify(warm.at(-1)!.sources)}, mirror requests ${warm.at(-1)!.mirrorHits}`);

      // cold: a fresh set nobody holds; curl --parallel of the same URLs first (it publishes nothing)
      const cs = await makeSet();
      const cfg = join(ctx.work, `curl-${setNo}.cfg`);
      const cdir = await outDir('curl');
      await writeFile(cfg, cs.urls.map((u, k) => `url = "${u}"\noutput = "${join(cdir, `f${k}.deb`)}"\n`).join(''));
      const cr = await runOk('curl', ['--parallel', '--parallel-max', '50', '-sS', '--fail', '-K', cfg], { ns: B.ns, timeoutMs: 300_000 });
      curl.push(cr.ms);
      cold.push(await fetchList(cs, 'cold'));
      ctx.log(`  cold run ${i + 1}: passim ${fmtMs(cold.at(-1)!.ms)}, curl --parallel ${fmtMs(cr.ms)}, sources ${JSON.stringify(cold.at(-1)!.sources)}`);
    }
  } finally {
    await mirror.stop();
  }
  const curlVersion = (await run('curl', ['--version'])).stdout.split('\n')[0] ?? 'curl';
  const warmPerFile = median(warm.map((w) => w.ms)) / n;
  const coldMs = median(cold.map((c) => c.ms));
  const curlMs = median(curl);
  const warmMirror = Math.max(...warm.map((w) => w.mirrorHits));
  return [
    {
      group: name,
      measure: `batch warm: passim fetch --from, ${n} × 10 KB, a LAN peer holds all (wall incl. start-up, per file)`,
      value: `${fmtMs(warmPerFile)}/file (${fmtMs(median(warm.map((w) => w.ms)))} total; mirror requests ${warmMirror})`,
      baseline: '—',
      ratio: '—',
      target: '≤ 10 ms/file, 0 mirror requests',
      met: warmPerFile <= 10 && warmMirror === 0,
      data: { n, size, runs: warm },
    },
    {
      group: name,
      measure: `batch cold: passim fetch --from vs curl --parallel, ${n} × 10 KB from a 20 ms / 100 Mbit/s mirror`,
      value: fmtMs(coldMs),
      baseline: `curl --parallel ${fmtMs(curlMs)}`,
      ratio: fmtRatio(coldMs / curlMs),
      target: '≤ 1.15×',
      met: coldMs / curlMs <= 1.15,
      data: { n, size, runs: cold, curl, curlVersion },
    },
  ];
}
