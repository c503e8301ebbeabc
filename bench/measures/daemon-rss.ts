/**
 * Daemon memory idle (empty store, one 1 GiB item, 10,000 items, a 10,000-file static dir), then
 * while serving the big file to 8 peers at once: 3 rounds of 8 concurrent
 * `curl -k -o /dev/null` from 8 namespace hosts; VmRSS / VmHWM of the daemon process (in its
 * namespace) sampled every 50 ms from /proc/<pid>/status, and the CPU time (user + sys) it used
 * per round. BENCH_IDLE_ONLY=1 measures only the idle rows, BENCH_SERVE_ONLY=1 only the serving one.
 */
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Ctx } from '../lib/context.js';
import { buildStaticDir, buildStore, seedItem } from '../lib/files.js';
import type { LanHost } from '../../test/helpers/netns.js';
import { ControlClient } from '../../lib/control/client.js';
import type { StatusReply } from '../../lib/control/api.js';
import { cpuOf, memOf, run, sleep } from '../lib/proc.js';
import { MiB, fmtBytes, fmtRate } from '../lib/stats.js';
import type { Row } from '../lib/table.js';

export const name = 'daemon-rss';

/** RSS of a daemon in `host` on `root`, `settleMs` after ready (and after `until` holds, polled on its status). */
async function idleRss(ctx: Ctx, host: LanHost, root: string, settleMs = 1500, until?: (s: StatusReply) => boolean): Promise<number> {
  const d = await ctx.daemon(host, { root });
  try {
    if (until) {
      const client = new ControlClient(d.socket);
      const deadline = Date.now() + 120_000;
      try {
        while (!until(await client.status()) && Date.now() < deadline) await sleep(100);
      } finally {
        await client.destroy();
      }
    }
    await sleep(settleMs);
    return (await memOf(d.proc.pid!))!.rss;
  } finally {
    await d.stop();
  }
}

/**
 * Idle RSS: an empty store (first start, which makes the TLS certificate, and second start), one
 * 1 GiB item, 10,000 small items in the data dir, and a 10,000-file static dir once hashed
 * (second start: checksums cached).
 */
async function idleRows(ctx: Ctx, host: LanHost, big: { path: string; sha256: string; size: number }): Promise<Row[]> {
  const count = ctx.quick ? 2000 : 10_000;
  const empty = await ctx.makeRoot();
  const emptyFirst = await idleRss(ctx, host, empty);
  const emptySecond = await idleRss(ctx, host, empty);
  const one = await ctx.makeRoot();
  await seedItem(join(one, 'state'), big.path, big.sha256, 'big.bin');
  await idleRss(ctx, host, one, 0);
  const oneBig = await idleRss(ctx, host, one);
  const many = await ctx.makeRoot();
  buildStore(join(many, 'state'), count);
  await idleRss(ctx, host, many, 0);
  const manyItems = await idleRss(ctx, host, many);
  const stat = await ctx.makeRoot();
  buildStaticDir(stat, count);
  const running = (s: StatusReply) => s.status === 'running';
  const staticFirst = await idleRss(ctx, host, stat, 1500, running);
  const staticSecond = await idleRss(ctx, host, stat, 1500, running);
  ctx.log(`  idle RSS: empty ${fmtBytes(emptyFirst)} (first start) / ${fmtBytes(emptySecond)}; one ${fmtBytes(big.size)} item ${fmtBytes(oneBig)}; ` +
    `${count} items ${fmtBytes(manyItems)}; ${count} static files ${fmtBytes(staticFirst)} (first start, hashed) / ${fmtBytes(staticSecond)}`);
  return [
    {
      group: name,
      measure: 'daemon RSS idle: empty store (first start / second start); one 1 GiB item',
      value: `${fmtBytes(emptyFirst)} / ${fmtBytes(emptySecond)}; ${fmtBytes(oneBig)}`,
      baseline: 'upstream 12 MB with one 1 GiB item (issue 10)',
      ratio: `${(oneBig / 12e6).toFixed(1)}×`,
      target: '≤ 60 MiB',
      met: Math.max(emptyFirst, emptySecond, oneBig) <= 60 * MiB,
      data: { emptyFirst, emptySecond, oneBig },
    },
    {
      group: name,
      measure: `daemon RSS idle with ${count} items (data dir; static dir first / second start)`,
      value: `${fmtBytes(manyItems)}; ${fmtBytes(staticFirst)} / ${fmtBytes(staticSecond)}`,
      baseline: 'upstream 17 MB with 10,000 items (issue 10)',
      ratio: `${(manyItems / 17e6).toFixed(1)}×`,
      target: '≤ 90 MiB',
      met: Math.max(manyItems, staticFirst, staticSecond) <= 90 * MiB,
      data: { count, manyItems, staticFirst, staticSecond },
    },
  ];
}

export async function measure(ctx: Ctx): Promise<Row[]> {
  const big = await ctx.bigFile();
  const clients = 8;
  const rounds = 3;
  const lan = await ctx.lan(clients + 1);
  const A = lan.hosts[0]!;
  // BENCH_SERVE_ONLY=1 skips the (slow) idle rows and measures only serving
  const idleTable = process.env.BENCH_SERVE_ONLY ? [] : await idleRows(ctx, A, big);
  if (process.env.BENCH_IDLE_ONLY) return idleTable;
  const root = await ctx.makeRoot();
  await seedItem(join(root, 'state'), big.path, big.sha256, 'big.bin', { shareLimit: 1_000_000 });
  const d = await ctx.daemon(A, { root, conf: `Cooldown=0\nMaxItemSize=${4 * big.size}` });
  const pid = d.proc.pid!;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  if (!cmdline.includes('passim.js')) throw new Error(`pid ${pid} is not the daemon: ${cmdline}`);
  const url = `https://${A.address}:27500/big.bin?sha256=${big.sha256}`;
  await sleep(500);
  const idle = (await memOf(pid))!;
  const perRound: Array<{ peak: number; after: number; ms: number; rate: number; cpu: number }> = [];
  for (let r = 0; r < rounds; r++) {
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const m = await memOf(pid);
        if (m) peak = Math.max(peak, m.rss);
        await sleep(50);
      }
    })();
    const cpu0 = (await cpuOf(pid))!;
    const t = performance.now();
    const res = await Promise.all(lan.hosts.slice(1).map((h) =>
      run('curl', ['-sSk', '-o', '/dev/null', '-w', '%{size_download}', url], { ns: h.ns })));
    const ms = performance.now() - t;
    const cpu = (await cpuOf(pid))! - cpu0;
    sampling = false;
    await sampler;
    for (const x of res) if (x.code !== 0 || Number(x.stdout) !== big.size) throw new Error(`curl: ${x.stderr || x.stdout}`);
    await sleep(1000);
    const after = (await memOf(pid))!.rss;
    perRound.push({ peak, after, ms, rate: (clients * big.size) / (ms / 1000), cpu });
    ctx.log(`  round ${r + 1}: peak RSS ${fmtBytes(peak)}, after ${fmtBytes(after)}, ${clients} × ${fmtBytes(big.size)} in ${Math.round(ms)} ms ` +
      `(${fmtRate((clients * big.size) / (ms / 1000))}; daemon CPU ${cpu.toFixed(1)} s)`);
  }
  const end = (await memOf(pid))!;
  const peak = Math.max(end.hwm, ...perRound.map((p) => p.peak));
  const growth = perRound.at(-1)!.after - perRound[0]!.after;
  const peakGrowth = perRound.at(-1)!.peak - perRound[0]!.peak;
  const tolerance = 8 * MiB;
  return [...idleTable, {
    group: name,
    measure: `daemon RSS serving ${fmtBytes(big.size)} to ${clients} peers at once, ${rounds} rounds`,
    value: `peak ${fmtBytes(peak)} (VmHWM); round peaks ${perRound.map((p) => fmtBytes(p.peak)).join(' / ')}; after ${perRound.map((p) => fmtBytes(p.after)).join(' / ')}`,
    baseline: `idle ${fmtBytes(idle.rss)}`,
    ratio: '—',
    target: `≤ 80 MiB peak, no growth (≤ ${fmtBytes(tolerance)})`,
    met: peak <= 80 * MiB && growth <= tolerance && peakGrowth <= tolerance,
    data: { idle, end, perRound, growth, peakGrowth },
  }];
}
