/**
 * Runs inside a LAN namespace (`ip netns exec NS node --import tsx bench/lib/wait-served.ts JSON`),
 * started just before a daemon: reports (epoch ms, one JSON line each) when an HTTPS URL first
 * answers 200, and when every one of a list of hashes has been found on mDNS by passim's browser.
 *
 * JSON: { url?: string, hashes?: string[], timeoutMs: number }
 * Prints {"up": epochMs} once loaded (start the daemon after it: node and tsx start slowly on a
 * busy machine, and that must not count as the daemon's time), then {"http": epochMs} and
 * {"advertised": epochMs, "found": n, "of": m}, then exits.
 */
import { request } from 'node:https';
import { browse } from '../../lib/discovery/browser.js';

const { url, hashes = [], timeoutMs } = JSON.parse(process.argv[2]!) as { url?: string; hashes?: string[]; timeoutMs: number };
const deadline = Date.now() + timeoutMs;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function status(u: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(u, { rejectUnauthorized: false, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function http(u: string) {
  while (Date.now() < deadline) {
    if ((await status(u)) === 200) {
      process.stdout.write(JSON.stringify({ http: Date.now() }) + '\n');
      return;
    }
    await sleep(20);
  }
}

async function advertised(list: string[]) {
  const missing = new Set(list);
  while (missing.size && Date.now() < deadline) {
    // every missing hash asked at once, each browse ending at its first answer or after 300 ms
    await Promise.all([...missing].map(async (h) => {
      const ac = new AbortController();
      for await (const _p of browse(h, { timeoutMs: 300, signal: ac.signal })) {
        missing.delete(h);
        ac.abort();
        break;
      }
    }));
  }
  process.stdout.write(JSON.stringify({ advertised: Date.now(), found: list.length - missing.size, of: list.length }) + '\n');
}

process.stdout.write(JSON.stringify({ up: Date.now() }) + '\n');
await Promise.all([url ? http(url) : undefined, hashes.length ? advertised(hashes) : undefined]);
process.exit(0);
