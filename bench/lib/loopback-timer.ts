/**
 * Runs inside a LAN namespace (`ip netns exec NS node --import tsx bench/lib/loopback-timer.ts JSON`):
 * times the loopback lookup fwupd uses, `GET https://127.0.0.1:PORT/NAME?sha256=HASH` on the
 * daemon of that host (ours or upstream passimd), over one kept-alive TLS connection (so the
 * handshake is not in the numbers), request sent → status line received. Redirects are not followed.
 * Prints one JSON line: { results: [{ ms: number[], statuses: number[], locations: string[] }] }.
 *
 * JSON: { port, jobs: [{ name, hashes: string[] (one request each, in order), gapMs }] }
 */
import { Client } from 'undici';

interface Job { name: string; hashes: string[]; gapMs: number }

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const { port, jobs } = JSON.parse(process.argv[2]!) as { port: number; jobs: Job[] };
const client = new Client(`https://127.0.0.1:${port}`, { connect: { rejectUnauthorized: false }, keepAliveTimeout: 60_000, headersTimeout: 30_000 });
const results = [];
for (const job of jobs) {
  const ms: number[] = [];
  const statuses: number[] = [];
  const locations: string[] = [];
  for (const hash of job.hashes) {
    const t0 = performance.now();
    const res = await client.request({ method: 'GET', path: `/${encodeURIComponent(job.name)}?sha256=${hash}` });
    ms.push(performance.now() - t0);
    statuses.push(res.statusCode);
    locations.push(String(res.headers.location ?? ''));
    await res.body.dump();
    await sleep(job.gapMs);
  }
  results.push({ ms, statuses, locations });
}
await client.close();
process.stdout.write(JSON.stringify({ results }) + '\n');
