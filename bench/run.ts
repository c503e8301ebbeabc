/**
 * `npm run bench` (as root: the multi-host measures use network namespaces). Runs every measure of
 * issue 5 side by side in one run, prints the table and writes bench/results.json.
 *
 *   npm run bench -- [--only NAME[,NAME…]] [--quick] [--keep-going]
 *
 * --quick: smaller sizes and fewer runs (a smoke run; its numbers are not the targets' sizes).
 * Every LAN, daemon and temp dir is removed at the end, on failure and on SIGINT/SIGTERM.
 */
import { existsSync, statSync, readdirSync, rmSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { createCtx, type Ctx } from './lib/context.js';
import { ROOT, runOk } from './lib/proc.js';
import { renderTable, type Row } from './lib/table.js';
import * as cliStart from './measures/cli-start.js';
import * as hashing from './measures/hashing.js';
import * as cdnFetch from './measures/cdn-fetch.js';
import * as discovery from './measures/discovery.js';
import * as peerDownload from './measures/peer-download.js';
import * as daemonRss from './measures/daemon-rss.js';
import * as manyItems from './measures/many-items.js';
import * as herd from './measures/herd.js';
import * as wideArea from './measures/wide-area.js';
import * as loopbackLookup from './measures/loopback-lookup.js';
import * as batch from './measures/batch.js';
import * as apt from './measures/apt.js';
import * as wrappers from './measures/wrappers.js';

interface Measure { name: string; measure(ctx: Ctx): Promise<Row[]> }
const MEASURES: Measure[] = [cliStart, hashing, cdnFetch, discovery, peerDownload, daemonRss, manyItems, herd, loopbackLookup, batch, apt, wrappers, wideArea];

function usage(msg?: string): never {
  if (msg) process.stderr.write(`bench: ${msg}\n`);
  process.stderr.write(`usage: npm run bench -- [--only ${MEASURES.map((m) => m.name).join('|')}[,…]] [--quick]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]) {
  let only: string[] | undefined;
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--only') only = (argv[++i] ?? usage('--only needs a name')).split(',');
    else if (a.startsWith('--only=')) only = a.slice(7).split(',');
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown argument ${a}`);
  }
  for (const n of only ?? []) if (!MEASURES.some((m) => m.name === n)) usage(`no measure named ${n}`);
  return { only, quick };
}

/** dist/ is what bin/passim.js runs: build it when missing or older than lib/. */
async function ensureBuilt(): Promise<void> {
  const newest = (dir: string): number => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }
    return t;
  };
  const main = join(ROOT, 'dist/cli/main.js');
  if (existsSync(main) && newest(join(ROOT, 'dist')) >= newest(join(ROOT, 'lib'))) return;
  process.stderr.write('building dist/ (npx tsc -p tsconfig.json)…\n');
  await runOk('npx', ['tsc', '-p', 'tsconfig.json']);
}

async function machine() {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return {
    nproc: cpus().length,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    date: new Date().toISOString(),
  };
}

async function main() {
  const { only, quick } = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) usage('run as root (network namespaces)');
  await ensureBuilt();
  const log = (m: string) => process.stderr.write(m + '\n');
  const ctx = await createCtx(quick, log);
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await ctx.cleanup().catch(() => undefined);
    await rm(ctx.work, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`\nbench: ${sig}, cleaning up`);
      // test/helpers/netns.ts kills what runs in the namespaces and deletes them (synchronously, in
      // its own handler, which then re-raises the signal): remove the work dir now, synchronously
      cleaned = true;
      rmSync(ctx.work, { recursive: true, force: true });
      void ctx.cleanup().finally(() => process.exit(130));
    });
  }
  const info = await machine();
  log(`passim bench${quick ? ' (--quick)' : ''}: ${info.nproc} × ${info.cpu}, ${info.memoryGiB} GiB, Linux ${info.kernel}, Node ${info.node}, ${info.date}`);
  const rows: Row[] = [];
  const errors: Record<string, string> = {};
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  try {
    for (const m of MEASURES) {
      if (only && !only.includes(m.name)) continue;
      log(`== ${m.name}`);
      const t = performance.now();
      try {
        rows.push(...(await m.measure(ctx)));
      } catch (err) {
        const msg = (err as Error).stack ?? String(err);
        errors[m.name] = msg;
        log(`  FAILED: ${msg}`);
        rows.push({ group: m.name, measure: m.name, value: 'failed', baseline: '—', ratio: '—', target: '—', met: false, note: (err as Error).message.split('\n')[0] });
      } finally {
        await ctx.cleanup();
        timings[m.name] = Math.round(performance.now() - t);
        log(`  (${(timings[m.name]! / 1000).toFixed(1)} s)`);
      }
    }
  } finally {
    await cleanup();
  }
  const total = Math.round(performance.now() - t0);
  const table = renderTable(rows);
  process.stdout.write(`\npassim bench${quick ? ' (--quick: reduced sizes)' : ''} — ${info.date}\n` +
    `machine: ${info.nproc} × ${info.cpu}, ${info.memoryGiB} GiB RAM, Linux ${info.kernel}, Node ${info.node}; total ${(total / 1000).toFixed(0)} s\n\n${table}\n`);
  await writeFile(join(ROOT, 'bench/results.json'), JSON.stringify({ machine: info, quick, totalMs: total, timings, rows, errors }, null, 2) + '\n');
  log('wrote bench/results.json');
  process.exitCode = Object.keys(errors).length ? 1 : 0;
}

await main();
