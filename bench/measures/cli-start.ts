/**
 * CLI start-up: `passim --version` and `passim dump` (against a running loopback daemon) against
 * `node -e 0`, run alternately, on the machine (no namespace, so `ip netns exec` adds nothing).
 */
import type { Ctx } from '../lib/context.js';
import { passim, run } from '../lib/proc.js';
import { fmtMs, median } from '../lib/stats.js';
import type { Row } from '../lib/table.js';

export const name = 'cli-start';

export async function measure(ctx: Ctx): Promise<Row[]> {
  const d = await ctx.daemon(undefined);
  const reps = ctx.quick ? 5 : 15;
  const node: number[] = [];
  const version: number[] = [];
  const dump: number[] = [];
  const dumpJson: number[] = [];
  const ok = (r: { code: number | null; stderr: string }, what: string) => {
    if (r.code !== 0) throw new Error(`${what}: exit ${r.code}: ${r.stderr}`);
  };
  // one warm-up of each (page cache), not counted
  await run(process.execPath, ['-e', '0']);
  await passim(['--version']);
  await passim(['dump', '--socket', d.socket]);
  for (let i = 0; i < reps; i++) {
    const n = await run(process.execPath, ['-e', '0']);
    ok(n, 'node -e 0');
    node.push(n.ms);
    const v = await passim(['--version']);
    ok(v, 'passim --version');
    version.push(v.ms);
    const du = await passim(['dump', '--socket', d.socket]);
    ok(du, 'passim dump');
    dump.push(du.ms);
    const dj = await passim(['dump', '--json', '--socket', d.socket]);
    ok(dj, 'passim dump --json');
    dumpJson.push(dj.ms);
  }
  const base = median(node);
  const row = (what: string, xs: number[]): Row => {
    const extra = median(xs) - base;
    return {
      group: name,
      measure: `CLI start: ${what}`,
      value: `${fmtMs(median(xs))} (median of ${reps})`,
      baseline: `node -e 0 ${fmtMs(base)}`,
      ratio: `+${fmtMs(extra)}`,
      target: '≤ +120 ms',
      met: extra <= 120,
      data: { samplesMs: xs, nodeMs: node, extraMs: extra },
    };
  };
  return [row('passim --version', version), row('passim dump', dump), row('passim dump --json', dumpJson)];
}
