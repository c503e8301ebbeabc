/**
 * Runs inside a LAN namespace (`ip netns exec NS node --import tsx bench/lib/browse-timer.ts JSON`):
 * times mDNS discovery with passim's own browser (lib/discovery/browser.ts), and the fetch client's
 * "no peer → use the CDN" decision (lib/fetch/fetch.ts). Prints one JSON line with the samples.
 *
 * JSON: { jobs: [
 *   { kind: 'first-peer', hash, runs, gapMs, expect? }   → firstMs[] (and allMs[] when expect peers came)
 *   { kind: 'no-peer', hash, runs, gapMs }                → endMs[] (browse with its default timeout ends)
 *   { kind: 'fetch-decision', hash, name, cdn, runs, gapMs, dir } → tryCdnMs[] (fetchFile start → CDN tried)
 * ] }
 */
import { browse } from '../../lib/discovery/browser.js';
import { fetchFile } from '../../lib/fetch/fetch.js';
import { rm } from 'node:fs/promises';

type Job =
  | { kind: 'first-peer'; hash: string; runs: number; gapMs: number; expect?: number }
  | { kind: 'no-peer'; hash: string; runs: number; gapMs: number }
  | { kind: 'fetch-decision'; hash: string; name: string; cdn: string; runs: number; gapMs: number; dir: string };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function firstPeer(job: Extract<Job, { kind: 'first-peer' }>) {
  const firstMs: number[] = [];
  const allMs: number[] = [];
  let misses = 0;
  for (let i = 0; i < job.runs; i++) {
    const t0 = performance.now();
    let n = 0;
    const ac = new AbortController();
    for await (const _p of browse(job.hash, { timeoutMs: 500, signal: ac.signal })) {
      n++;
      if (n === 1) firstMs.push(performance.now() - t0);
      if (n >= (job.expect ?? 1)) {
        allMs.push(performance.now() - t0);
        break;
      }
    }
    if (n === 0) misses++;
    await sleep(job.gapMs);
  }
  return { firstMs, allMs, misses };
}

async function noPeer(job: Extract<Job, { kind: 'no-peer' }>) {
  const endMs: number[] = [];
  for (let i = 0; i < job.runs; i++) {
    const t0 = performance.now();
    for await (const _p of browse(job.hash, {})) { /* none expected */ }
    endMs.push(performance.now() - t0);
    await sleep(job.gapMs);
  }
  return { endMs };
}

async function fetchDecision(job: Extract<Job, { kind: 'fetch-decision' }>) {
  const tryCdnMs: number[] = [];
  const totalMs: number[] = [];
  for (let i = 0; i < job.runs; i++) {
    const t0 = performance.now();
    const out = `${job.dir}/decision-${i}.bin`;
    await fetchFile({
      name: job.name,
      sha256: job.hash,
      cdn: [job.cdn],
      output: out,
      publish: false,
      socketPath: `${job.dir}/no-daemon.sock`,
      onProgress: (ev) => { if (ev.type === 'try' && ev.source === 'cdn') tryCdnMs.push(performance.now() - t0); },
    });
    totalMs.push(performance.now() - t0);
    await rm(out, { force: true });
    await sleep(job.gapMs);
  }
  return { tryCdnMs, totalMs };
}

const { jobs } = JSON.parse(process.argv[2]!) as { jobs: Job[] };
const results: unknown[] = [];
for (const job of jobs) {
  if (job.kind === 'first-peer') results.push(await firstPeer(job));
  else if (job.kind === 'no-peer') results.push(await noPeer(job));
  else results.push(await fetchDecision(job));
}
process.stdout.write(JSON.stringify({ results }) + '\n');
process.exit(0);
