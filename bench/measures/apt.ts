/**
 * apt through passim's method (issue 9): on a namespace LAN, a WAN-like mirror M
 * (bench/lib/slow-mirror.ts: +20 ms per request, 100 Mbit/s shared) serving a repository of 30
 * .debs of 20 KB – 2 MB; host B runs `apt-get download` of all 30 into an empty dir:
 *   - plain: apt's own http method, from the mirror (the baseline);
 *   - cold, alone: through the method, no other passim host on the LAN (B's daemon knows it is
 *     alone: straight to the mirror via the batch engine, then published to B's daemon);
 *   - cold, with a peer: the same while an empty daemon runs on the mirror host (B is not alone:
 *     the LAN is asked first, and the herd's claims window runs);
 *   - warm: through the method, peer A holds all 30 (0 mirror requests for .debs expected).
 * Between runs B's daemon is emptied, so each method run is cold or warm as named. Runs
 * alternate plain / method; medians. `apt-get update` is done once per sandbox and not timed.
 * With env BENCH_CPU_PROF=DIR the method processes write V8 CPU profiles there; with
 * BENCH_APT_TRACE=FILE each method run's timeline (PASSIM_APT_TRACE) is appended to FILE.
 */
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Ctx } from '../lib/context.js';
import { seedItem } from '../lib/files.js';
import { passim, run } from '../lib/proc.js';
import { slowMirror, WAN } from '../lib/slow-mirror.js';
import { fmtBytes, fmtMs, fmtRatio, median } from '../lib/stats.js';
import type { Row } from '../lib/table.js';
import { aptSandbox, buildRepo, type AptSandbox } from '../../test/apt/repo.js';

export const name = 'apt';

/**
 * Payload sizes from `lo` to `hi`, many small and a few large (lo + (hi − lo)·t^2.75): for 30 from
 * 20 KB to 2 MB they add up to about 16.8 MB, issue 9's repository.
 */
export function debSizes(n = 30, lo = 20_000, hi = 2_000_000): number[] {
  return Array.from({ length: n }, (_, i) => Math.round(lo + (hi - lo) * (i / (n - 1)) ** 2.75));
}

export async function measure(ctx: Ctx): Promise<Row[]> {
  const sizes = ctx.quick ? debSizes(10, 20_000, 600_000) : debSizes();
  const dir = join(ctx.work, 'apt');
  const t = performance.now();
  const repo = await buildRepo(dir, sizes, 'bench-pkg');
  const total = repo.debs.reduce((s, d) => s + d.bytes.length, 0);
  ctx.log(`  built ${repo.debs.length} .debs (${fmtBytes(total)}) in ${Math.round(performance.now() - t)} ms`);
  const lan = await ctx.lan(3);
  const [M, A, B] = lan.hosts as [typeof lan.hosts[0], typeof lan.hosts[0], typeof lan.hosts[0]];
  const mirror = await slowMirror(M, { root: repo.root });
  try {
    const dB = await ctx.daemon(B, { conf: 'Cooldown=0' });
    const source = `deb [trusted=yes] ${mirror.url('/debian')} stable main`;
    const prof: Record<string, string> = process.env.BENCH_CPU_PROF ? { PASSIM_APT_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${process.env.BENCH_CPU_PROF}` } : {};
    const plainSb = await aptSandbox(await mkdtemp(join(dir, 'plain-')), source, { method: null });
    const traceFile = process.env.BENCH_APT_TRACE;
    const trace: Record<string, string> = traceFile ? { PASSIM_APT_TRACE: '1' } : {};
    const passimSb = await aptSandbox(await mkdtemp(join(dir, 'passim-')), source, { env: { PASSIM_SOCKET: dB.socket, ...prof, ...trace } });
    const pkgs = repo.debs.map((d) => d.pkg);

    const aptGet = async (sb: AptSandbox, args: string[], cwd: string) => {
      const r = await run('apt-get', args, { ns: B.ns, env: sb.env, cwd, timeoutMs: 300_000 });
      if (r.code !== 0) throw new Error(`apt-get ${args[0]} failed (${r.code}): ${(r.stdout + r.stderr).trim().split('\n').slice(-5).join(' / ')}`);
      return r;
    };
    for (const sb of [plainSb, passimSb]) await aptGet(sb, ['update'], sb.root);

    /** one timed `apt-get download` of every package into a fresh dir; returns ms and the mirror's .deb requests */
    const download = async (sb: AptSandbox, label = 'plain') => {
      const out = await mkdtemp(join(dir, 'dl-'));
      const before = mirror.countMatching(/\.deb$/);
      const r = await aptGet(sb, ['download', ...pkgs], out);
      if (traceFile && sb === passimSb) await appendFile(traceFile, `# ${label}: ${Math.round(r.ms)} ms\n${r.stderr}`);
      const got = (await readdir(out)).filter((n) => n.endsWith('.deb'));
      if (got.length !== repo.debs.length) throw new Error(`apt-get download left ${got.length} of ${repo.debs.length} .debs`);
      await rm(out, { recursive: true, force: true });
      return { ms: r.ms, mirrorDebs: mirror.countMatching(/\.deb$/) - before };
    };
    /** empties B's daemon, so the next method run starts from nothing */
    const clearB = async () => {
      const d = await passim(['dump', '--json', '--socket', dB.socket]);
      const items = (JSON.parse(d.stdout) as { items: Array<{ hash: string }> }).items;
      const { ControlClient } = await import('../../lib/control/client.js');
      const c = new ControlClient(dB.socket);
      try {
        for (const it of items) await c.unpublish(it.hash).catch(() => undefined);
      } finally {
        await c.close();
      }
    };

    const reps = ctx.quick ? 1 : 3;
    const plain: number[] = [];
    const cold: number[] = [];
    const coldPeer: number[] = [];
    const warm: number[] = [];
    const coldMirror: number[] = [];
    const coldPeerMirror: number[] = [];
    const warmMirror: number[] = [];
    /** B's daemon hears nobody else (POST /peers says alone): the cold runs are the lone-host case */
    const aloneB = async () => {
      const { ControlClient } = await import('../../lib/control/client.js');
      const c = new ControlClient(dB.socket);
      try {
        for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
          if ((await c.peers(['00'.repeat(32)])).alone) return true;
        }
        return false;
      } finally {
        await c.close();
      }
    };
    // warm-up: the mirror's page cache, apt's caches
    await download(plainSb);
    const wasAlone = await aloneB();
    for (let i = 0; i < reps; i++) {
      await clearB();
      plain.push((await download(plainSb)).ms);
      const c = await download(passimSb, `cold ${i + 1}`);
      cold.push(c.ms);
      coldMirror.push(c.mirrorDebs);
      ctx.log(`  cold, alone ${i + 1}/${reps}: plain apt ${Math.round(plain.at(-1)!)} ms, method ${Math.round(c.ms)} ms (${c.mirrorDebs} .debs from the mirror)`);
    }
    // a passim host on the LAN that holds nothing: B is no longer alone
    await ctx.daemon(M, { conf: 'Cooldown=0' });
    for (let i = 0; i < reps; i++) {
      await clearB();
      plain.push((await download(plainSb)).ms);
      const c = await download(passimSb, `cold with a peer ${i + 1}`);
      coldPeer.push(c.ms);
      coldPeerMirror.push(c.mirrorDebs);
      ctx.log(`  cold, with a peer ${i + 1}/${reps}: plain apt ${Math.round(plain.at(-1)!)} ms, method ${Math.round(c.ms)} ms (${c.mirrorDebs} .debs from the mirror)`);
    }
    // A now holds every .deb (seeded into its store before it starts; any number of shares, no cooldown)
    const rootA = await ctx.makeRoot();
    for (const d of repo.debs) await seedItem(join(rootA, 'state'), join(repo.root, 'debian', d.poolPath), d.sha256, d.file, { shareLimit: 1_000_000 });
    await ctx.daemon(A, { root: rootA, conf: 'Cooldown=0' });
    for (let i = 0; i < reps; i++) {
      await clearB();
      plain.push((await download(plainSb)).ms);
      const w = await download(passimSb, `warm ${i + 1}`);
      warm.push(w.ms);
      warmMirror.push(w.mirrorDebs);
      ctx.log(`  warm ${i + 1}/${reps}: plain apt ${Math.round(plain.at(-1)!)} ms, method ${Math.round(w.ms)} ms (${w.mirrorDebs} .debs from the mirror)`);
    }

    const base = median(plain);
    const what = `apt-get download of ${repo.debs.length} .debs (${fmtBytes(total)}), mirror +${WAN.latencyMs} ms/request, ${Math.round((WAN.bytesPerSec * 8) / 1e6)} Mbit/s shared`;
    const data = { sizes, total, plain, cold, coldPeer, warm, coldMirror, coldPeerMirror, warmMirror, wasAlone };
    return [
      { group: name, measure: `${what}: plain apt (apt's http method)`, value: `${fmtMs(base)} (median of ${plain.length})`, baseline: '—', ratio: '—', target: '—', met: null, data },
      {
        group: name, measure: `${what}: through the passim method, warm (peer A holds all)`, value: `${fmtMs(median(warm))} (median of ${reps})`,
        baseline: `plain ${fmtMs(base)}`, ratio: fmtRatio(median(warm) / base), target: '≤ 0.25×, 0 mirror .debs',
        met: median(warm) / base <= 0.25 && warmMirror.every((n) => n === 0), note: `mirror .deb requests per warm run: ${warmMirror.join(', ')}`,
      },
      {
        group: name, measure: `${what}: through the passim method, cold, alone (no other passim host on the LAN)`, value: `${fmtMs(median(cold))} (median of ${reps})`,
        baseline: `plain ${fmtMs(base)}`, ratio: fmtRatio(median(cold) / base), target: '≤ 1.15×', met: median(cold) / base <= 1.15,
        note: `mirror .deb requests per cold run: ${coldMirror.join(', ')}; B's daemon said alone before the runs: ${wasAlone}`,
      },
      {
        group: name, measure: `${what}: through the passim method, cold, with a peer (an empty daemon on the LAN)`, value: `${fmtMs(median(coldPeer))} (median of ${reps})`,
        baseline: `plain ${fmtMs(base)}`, ratio: fmtRatio(median(coldPeer) / base), target: '≤ 1.15×', met: median(coldPeer) / base <= 1.15,
        note: `mirror .deb requests per cold run: ${coldPeerMirror.join(', ')}`,
      },
    ];
  } finally {
    await mirror.stop();
  }
}

