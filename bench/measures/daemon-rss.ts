/**
 * Daemon memory while serving the big file to 8 peers at once: 3 rounds of 8 concurrent
 * `curl -k -o /dev/null` from 8 namespace hosts; VmRSS / VmHWM of the daemon process (in its
 * namespace) sampled every 50 ms from /proc/<pid>/status.
 */
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Ctx } from '../lib/context.js';
import { seedItem } from '../lib/files.js';
import { memOf, run, sleep } from '../lib/proc.js';
import { MiB, fmtBytes, fmtRate } from '../lib/stats.js';
import type { Row } from '../lib/table.js';

export const name = 'daemon-rss';

export async function measure(ctx: Ctx): Promise<Row[]> {
  const big = await ctx.bigFile();
  const clients = 8;
  const rounds = 3;
  const lan = await ctx.lan(clients + 1);
  const A = lan.hosts[0]!;
  const root = await ctx.makeRoot();
  await seedItem(join(root, 'state'), big.path, big.sha256, 'big.bin', { shareLimit: 1_000_000 });
  const d = await ctx.daemon(A, { root, conf: `Cooldown=0\nMaxItemSize=${4 * big.size}` });
  const pid = d.proc.pid!;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  if (!cmdline.includes('passim.js')) throw new Error(`pid ${pid} is not the daemon: ${cmdline}`);
  const url = `https://${A.address}:27500/big.bin?sha256=${big.sha256}`;
  await sleep(500);
  const idle = (await memOf(pid))!;
  const perRound: Array<{ peak: number; after: number; ms: number; rate: number }> = [];
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
    const t = performance.now();
    const res = await Promise.all(lan.hosts.slice(1).map((h) =>
      run('curl', ['-sSk', '-o', '/dev/null', '-w', '%{size_download}', url], { ns: h.ns })));
    const ms = performance.now() - t;
    sampling = false;
    await sampler;
    for (const x of res) if (x.code !== 0 || Number(x.stdout) !== big.size) throw new Error(`curl: ${x.stderr || x.stdout}`);
    await sleep(1000);
    const after = (await memOf(pid))!.rss;
    perRound.push({ peak, after, ms, rate: (clients * big.size) / (ms / 1000) });
    ctx.log(`  round ${r + 1}: peak RSS ${fmtBytes(peak)}, after ${fmtBytes(after)}, ${clients} × ${fmtBytes(big.size)} in ${Math.round(ms)} ms (${fmtRate((clients * big.size) / (ms / 1000))})`);
  }
  const end = (await memOf(pid))!;
  const peak = Math.max(end.hwm, ...perRound.map((p) => p.peak));
  const growth = perRound.at(-1)!.after - perRound[0]!.after;
  const peakGrowth = perRound.at(-1)!.peak - perRound[0]!.peak;
  const tolerance = 8 * MiB;
  return [{
    group: name,
    measure: `daemon RSS serving ${fmtBytes(big.size)} to ${clients} peers at once, ${rounds} rounds`,
    value: `peak ${fmtBytes(peak)} (VmHWM); round peaks ${perRound.map((p) => fmtBytes(p.peak)).join(' / ')}; after ${perRound.map((p) => fmtBytes(p.after)).join(' / ')}`,
    baseline: `idle ${fmtBytes(idle.rss)}`,
    ratio: '—',
    target: `≤ 100 MiB peak, no growth (≤ ${fmtBytes(tolerance)})`,
    met: peak <= 100 * MiB && growth <= tolerance && peakGrowth <= tolerance,
    data: { idle, end, perRound, growth, peakGrowth },
  }];
}
