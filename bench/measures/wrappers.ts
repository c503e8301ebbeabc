/**
 * The contrib wrappers (issue 9, item 4): `contrib/ci/passim-ci-fetch URL SHA256 …` of 30 files of
 * 20 KB – 2 MB (log-spaced; --quick: 10 of 20 – 600 KB) on a namespace LAN whose mirror
 * (bench/lib/slow-mirror.ts) adds ~20 ms per request and shares 100 Mbit/s. The wrapper is one
 * `passim fetch --from -` (contrib/lib/passim-batch.sh), like apt-passim and dnf-passim.
 * - mirror: one `curl` of every URL in sequence over one connection (what a package manager does
 *   without passim; the baseline of both ratios below);
 * - per-file: one `passim fetch NAME --sha256 H --cdn URL` process per file, in sequence — what
 *   the wrappers did before;
 * - warm: host A's daemon holds every file; host B runs the wrapper (0 mirror requests expected);
 * - cold: nobody holds anything; B runs the wrapper (mirror, then published to B's daemon).
 * Each run uses fresh files (new hashes), so nothing an earlier run published serves a later one.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Ctx } from '../lib/context.js';
import { slowMirror } from '../lib/slow-mirror.js';
import { fmtBytes, fmtMs, fmtRatio, median } from '../lib/stats.js';
import { BIN, ROOT, passim, run, runOk } from '../lib/proc.js';
import type { Row } from '../lib/table.js';
import { ControlClient } from '../../lib/control/client.js';

export const name = 'wrappers';

const WRAPPER = join(ROOT, 'contrib/ci/passim-ci-fetch');

interface FileSet { urls: string[]; names: string[]; paths: string[]; hashes: string[] }

export async function measure(ctx: Ctx): Promise<Row[]> {
  const n = ctx.quick ? 10 : 30;
  const hi = ctx.quick ? 600_000 : 2_000_000;
  const sizes = Array.from({ length: n }, (_, i) => Math.round(20_000 * (hi / 20_000) ** (i / (n - 1))));
  const total = sizes.reduce((a, b) => a + b, 0);
  const runs = ctx.quick ? 1 : 3;
  const lan = await ctx.lan(3);
  const [A, B, M] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0], typeof lan.hosts[0]];
  const root = join(ctx.work, 'wrappers-mirror');
  await mkdir(root, { recursive: true });
  const [dA, dB] = await Promise.all([ctx.daemon(A), ctx.daemon(B)]);
  const mirror = await slowMirror(M, { root });
  // `passim` on PATH for the wrapper, and node for its #! line
  const bin = join(ctx.work, 'wrappers-bin');
  await mkdir(bin, { recursive: true });
  await symlink(BIN, join(bin, 'passim'));
  const env = { PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH}`, PASSIM_SOCKET: dB.socket };

  let setNo = 0;
  const makeSet = async (): Promise<FileSet> => {
    const sub = `w${setNo++}`;
    await mkdir(join(root, sub));
    const set: FileSet = { urls: [], names: [], paths: [], hashes: [] };
    for (let i = 0; i < n; i++) {
      const data = randomBytes(sizes[i]!);
      const fname = `pkg${i}_1.0_all.deb`;
      const p = join(root, sub, fname);
      await writeFile(p, data);
      set.urls.push(mirror.url(`/${sub}/${fname}`));
      set.names.push(fname);
      set.paths.push(p);
      set.hashes.push(createHash('sha256').update(data).digest('hex'));
    }
    return set;
  };
  const outDir = async (tag: string) => {
    const d = join(ctx.work, `wrappers-out-${tag}-${setNo}`);
    await mkdir(d);
    return d;
  };
  const holdOnA = async (set: FileSet) => {
    const c = new ControlClient(dA.socket);
    try {
      for (const p of set.paths) await c.publish(p, { shareLimit: 0 });
    } finally {
      await c.destroy();
    }
  };
  /** the mirror's requests for a set's files during fn */
  const counted = async <T extends { ms: number }>(fn: () => Promise<T>) => {
    const before = mirror.hits.length;
    const r = await fn();
    return { ms: r.ms, mirror: mirror.hits.length - before };
  };
  const wrapper = (set: FileSet, tag: string) => counted(async () => {
    const args = ['-o', await outDir(tag), ...set.urls.flatMap((u, i) => [u, set.hashes[i]!])];
    return runOk(WRAPPER, args, { ns: B.ns, env, timeoutMs: 600_000 });
  });
  const perFile = (set: FileSet, tag: string) => counted(async () => {
    const out = await outDir(tag);
    let ms = 0;
    for (let i = 0; i < n; i++) {
      const r = await passim(['fetch', set.names[i]!, '--sha256', set.hashes[i]!, '--cdn', set.urls[i]!, '-o', join(out, set.names[i]!), '--socket', dB.socket],
        { ns: B.ns, timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`passim fetch ${set.names[i]} exit ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' / ')}`);
      ms += r.ms;
    }
    return { ms };
  });
  const curlAll = (set: FileSet) => counted(async () => {
    const out = await outDir('curl');
    const cfg = join(ctx.work, `wrappers-curl-${setNo}.cfg`);
    await writeFile(cfg, set.urls.map((u, i) => `url = "${u}"\noutput = "${join(out, set.names[i]!)}"\n`).join(''));
    return runOk('curl', ['-sS', '--fail', '-K', cfg], { ns: B.ns, timeoutMs: 300_000 });
  });

  const res = { mirror: [] as number[], warm: [] as Array<{ ms: number; mirror: number }>, cold: [] as Array<{ ms: number; mirror: number }>,
    perFileWarm: [] as Array<{ ms: number; mirror: number }>, perFileCold: [] as Array<{ ms: number; mirror: number }> };
  try {
    for (let r = 0; r < runs; r++) {
      res.mirror.push((await curlAll(await makeSet())).ms);
      const w1 = await makeSet();
      const w2 = await makeSet();
      await holdOnA(w1);
      await holdOnA(w2);
      res.perFileWarm.push(await perFile(w1, 'perfile-warm'));
      res.warm.push(await wrapper(w2, 'warm'));
      res.perFileCold.push(await perFile(await makeSet(), 'perfile-cold'));
      res.cold.push(await wrapper(await makeSet(), 'cold'));
      ctx.log(`  run ${r + 1}: mirror ${fmtMs(res.mirror.at(-1)!)}, warm ${fmtMs(res.warm.at(-1)!.ms)} (mirror requests ${res.warm.at(-1)!.mirror}), `
        + `per-file warm ${fmtMs(res.perFileWarm.at(-1)!.ms)}, cold ${fmtMs(res.cold.at(-1)!.ms)}, per-file cold ${fmtMs(res.perFileCold.at(-1)!.ms)}`);
    }
  } finally {
    await mirror.stop();
  }
  const curlVersion = (await run('curl', ['--version'])).stdout.split('\n')[0] ?? 'curl';
  const m = median(res.mirror);
  const warm = median(res.warm.map((x) => x.ms));
  const cold = median(res.cold.map((x) => x.ms));
  const pfw = median(res.perFileWarm.map((x) => x.ms));
  const pfc = median(res.perFileCold.map((x) => x.ms));
  const warmMirror = Math.max(...res.warm.map((x) => x.mirror));
  const what = `${n} files, ${fmtBytes(total)}`;
  return [
    {
      group: name,
      measure: `passim-ci-fetch warm (one passim fetch --from; a LAN peer holds all) vs one curl from the mirror, ${what}`,
      value: `${fmtMs(warm)} (mirror requests ${warmMirror})`,
      baseline: `curl ${fmtMs(m)}`,
      ratio: fmtRatio(warm / m),
      target: '≤ 0.25×, 0 mirror requests',
      met: warm / m <= 0.25 && warmMirror === 0,
      data: { n, sizes, runs: res, curlVersion },
    },
    {
      group: name,
      measure: `passim-ci-fetch cold (nobody holds anything) vs one curl from the mirror, ${what}`,
      value: fmtMs(cold),
      baseline: `curl ${fmtMs(m)}`,
      ratio: fmtRatio(cold / m),
      target: '≤ 1.15×',
      met: cold / m <= 1.15,
    },
    {
      group: name,
      measure: `wrapper batch vs one passim fetch process per file (the wrappers before), warm | cold, ${what}`,
      value: `${fmtMs(warm)} | ${fmtMs(cold)}`,
      baseline: `${fmtMs(pfw)} | ${fmtMs(pfc)}`,
      ratio: `${fmtRatio(warm / pfw)} | ${fmtRatio(cold / pfc)}`,
      target: '—',
      met: null,
    },
  ];
}
