/**
 * The loopback lookup fwupd uses (`GET https://127.0.0.1:27500/NAME?sha256=HASH` on its own host,
 * for a hash the daemon does not hold): 302 to a peer that has it, or 404. On a namespace LAN:
 * host A (our daemon) holds one file; the lookups run on host B (our daemon), p50/p99 of
 *  - 404 for an unknown hash (a new random hash each time: the cache cannot know it, one browse);
 *  - 302 for the file A announced (from B's peer cache: no query, no wait);
 *  - 404 again once A is gone and B knows it is alone on the LAN (no browse at all).
 * Side by side, when /work/upstream/READY exists (built outside the repo by another helper, never
 * part of it): the same lookups on host U running upstream passimd (with its Avahi), whose peer is
 * the same host A. Without it, the issue's upstream figure (1.0 s for a 404) is the reference.
 * Timed by bench/lib/loopback-timer.ts over one kept-alive TLS connection.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Ctx } from '../lib/context.js';
import type { LanHost } from '../../test/helpers/netns.js';
import { fmtMs, fmtRatio, percentile } from '../lib/stats.js';
import { passim, run, sleep } from '../lib/proc.js';
import type { Row } from '../lib/table.js';
import { LOOKUP_WINDOW_MS } from '../../lib/discovery/peer-lookup.js';

export const name = 'loopback-lookup';

const UPSTREAM_READY = '/work/upstream/READY';
const UPSTREAM_RUNNER = '/work/upstream/run-passimd-in-netns.sh';
/** issue 9: upstream passimd answers a loopback 404 after about 1.0 s */
const UPSTREAM_404_MS = 1000;

/** a ratio far below 1 reads better as a fraction: 0.002 → "1/460" */
const ratio = (r: number) => (r > 0 && r < 0.01 ? `1/${Math.round(1 / r)}` : fmtRatio(r));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const randomHashes = (n: number) => Array.from({ length: n }, () => sha(randomBytes(16)));

interface Sample { ms: number[]; statuses: number[]; locations: string[] }

async function time(host: LanHost, port: number, jobs: Array<{ name: string; hashes: string[]; gapMs: number }>): Promise<Sample[]> {
  const r = await run(process.execPath, ['--import', 'tsx', 'bench/lib/loopback-timer.ts', JSON.stringify({ port, jobs })], { ns: host.ns, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`loopback-timer on ${host.ns}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { results: Sample[] }).results;
}

/** Upstream passimd (with its own Avahi and system bus) in host U; resolves once it owns its bus name, with a stop. */
async function startUpstream(ctx: Ctx, host: LanHost): Promise<() => Promise<void>> {
  const dir = join(ctx.work, 'upstream-state');
  await mkdir(dir, { recursive: true });
  const child = host.spawn('sh', [UPSTREAM_RUNNER, host.ns, dir], { buffer: false, stdin: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('upstream passimd did not start within 60 s')), 60_000);
    // GLib writes passimd's debug and info lines to stdout
    for (const input of [child.stdout!, child.stderr!]) {
      createInterface({ input }).on('line', (l) => {
        if (l.includes('acquired name: org.freedesktop.Passim')) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    const exited = () => reject(new Error('upstream passimd exited'));
    void child.then(exited, exited);
  });
  return async () => {
    child.kill('SIGTERM');
    await child.catch(() => undefined);
  };
}

function stats(s: Sample, want: number) {
  const wrong = s.statuses.filter((c) => c !== want).length;
  return { p50: percentile(s.ms, 50), p99: percentile(s.ms, 99), max: Math.max(...s.ms), n: s.ms.length, wrong };
}

export async function measure(ctx: Ctx): Promise<Row[]> {
  const withUpstream = existsSync(UPSTREAM_READY) && existsSync(UPSTREAM_RUNNER);
  const lan = await ctx.lan(withUpstream ? 3 : 2);
  const [A, B, U] = lan.hosts as [LanHost, LanHost, LanHost | undefined];
  const [dA, dB] = await Promise.all([ctx.daemon(A), ctx.daemon(B)]);
  const stopUpstream = withUpstream ? await startUpstream(ctx, U!) : undefined;
  if (!withUpstream) ctx.log(`  ${UPSTREAM_READY} missing: upstream is the issue's ${UPSTREAM_404_MS} ms`);

  const dir = join(ctx.work, 'loopback');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'firmware.cab');
  const data = randomBytes(16 * 1024);
  await writeFile(file, data);
  const hash = sha(data);
  const pub = await passim(['publish', file, '--socket', dA.socket], { ns: A.ns });
  if (pub.code !== 0) throw new Error(`publish on A: ${pub.stderr}`);
  // B hears A's announcement: wait until its cache lists A (what the 302 numbers are about)
  for (let i = 0; ; i++) {
    const r = await run('curl', ['-s', '--unix-socket', dB.socket, '-X', 'POST', '--data-binary', JSON.stringify({ hashes: [hash] }), 'http://localhost/peers'], { ns: B.ns });
    if (r.code === 0 && (JSON.parse(r.stdout) as { peers: Record<string, unknown[]> }).peers[hash]) break;
    if (i > 200) throw new Error('B never heard A announce the file');
    await sleep(50);
  }

  const runs404 = ctx.quick ? 5 : 20;
  const runs302 = ctx.quick ? 50 : 200;
  const jobs = [
    { name: 'firmware.cab', hashes: randomHashes(runs404), gapMs: 20 },
    { name: 'firmware.cab', hashes: Array.from({ length: runs302 }, () => hash), gapMs: 5 },
  ];
  const [ours404, ours302] = await time(B, dB.port, jobs);
  let up404: Sample | undefined;
  let up302: Sample | undefined;
  if (withUpstream) {
    // fewer runs: each takes about a second
    [up404, up302] = await time(U!, 27500, [
      { ...jobs[0]!, hashes: jobs[0]!.hashes.slice(0, ctx.quick ? 3 : 10) },
      { ...jobs[1]!, hashes: jobs[1]!.hashes.slice(0, ctx.quick ? 5 : 20) },
    ]);
  }
  // B alone on the LAN (A and upstream gone, their goodbyes heard): nobody to ask, 404 at once
  await Promise.all([dA.stop(), stopUpstream?.()]);
  let alone = false;
  for (let i = 0; i < 200 && !alone; i++) {
    const r = await run('curl', ['-s', '--unix-socket', dB.socket, '-X', 'POST', '--data-binary', JSON.stringify({ hashes: [hash] }), 'http://localhost/peers'], { ns: B.ns });
    alone = r.code === 0 && (JSON.parse(r.stdout) as { alone?: boolean }).alone === true;
    if (!alone) await sleep(100);
  }
  const [alone404] = alone ? await time(B, dB.port, [{ ...jobs[0]!, hashes: randomHashes(runs404) }]) : [undefined];
  const o404 = stats(ours404!, 404);
  const o302 = stats(ours302!, 302);
  const u404 = up404 && stats(up404, 404);
  const u302 = up302 && stats(up302, 302);
  const badLocation = ours302!.locations.filter((l) => !l.startsWith(`https://${A.address}:27500/`)).length;
  const fmt = (s: ReturnType<typeof stats>) => `p50 ${fmtMs(s.p50)}, p99 ${fmtMs(s.p99)} (${s.n} runs${s.wrong ? `, ${s.wrong} wrong status` : ''})`;
  const base404 = u404 ? u404.p50 : UPSTREAM_404_MS;
  return [
    {
      group: name,
      measure: 'loopback 404, unknown hash',
      value: fmt(o404),
      baseline: u404 ? `upstream ${fmt(u404)}` : `upstream ${fmtMs(UPSTREAM_404_MS)} (issue 9)`,
      ratio: ratio(o404.p50 / base404),
      target: '≤ 500 ms',
      met: o404.wrong === 0 && o404.max <= 500,
      data: { ours: ours404, upstream: up404 ?? null, upstreamMeasured: Boolean(u404) },
      note: `max ${fmtMs(o404.max)}; one browse of ${LOOKUP_WINDOW_MS} ms (lib/discovery/peer-lookup.ts)`,
    },
    {
      group: name,
      measure: 'loopback 404, unknown hash, the daemon alone on its LAN',
      value: alone404 ? fmt(stats(alone404, 404)) : 'B never said it was alone',
      baseline: u404 ? `upstream ${fmt(u404)}` : `upstream ${fmtMs(UPSTREAM_404_MS)} (issue 9)`,
      ratio: alone404 ? ratio(stats(alone404, 404).p50 / base404) : '—',
      target: '≤ 500 ms',
      met: alone404 ? stats(alone404, 404).wrong === 0 && stats(alone404, 404).max <= 500 : false,
      data: { ours: alone404 ?? null },
      note: 'no other instance heard on the LAN: no browse (peer-cache.ts alone())',
    },
    {
      group: name,
      measure: 'loopback 302, hash a peer announced',
      value: fmt(o302),
      baseline: u302 ? `upstream ${fmt(u302)}` : '—',
      ratio: u302 ? ratio(o302.p50 / u302.p50) : '—',
      target: 'p50 ≤ 10 ms',
      met: o302.wrong === 0 && badLocation === 0 && o302.p50 <= 10,
      data: { ours: ours302, upstream: up302 ?? null },
      note: `from the peer cache (no query); ${badLocation} redirects not to A`,
    },
  ];
}
