/**
 * Runs inside a bench namespace host on the same link as a peer holding the file: fetches it
 * `runs` times with the real fetch engine in this one process, alternating no extra finder and the
 * wide-area zone finder (mDNS answers in both), and prints each fetch's own ms as JSON
 * ({ on: number[], off: number[], misses: { on, off } }). One process for both conditions keeps
 * process start-up and module loading out of the comparison.
 */
import { fetchFile } from '../../lib/fetch/fetch.js';
import { zoneBrowseMany } from '../../lib/discovery/wide-area/lookup.js';

const cfg = JSON.parse(process.argv[2]!) as { sha256: string; name: string; zone: string; server: { address: string; port: number }; dir: string; runs: number };
const zone = zoneBrowseMany({ domain: cfg.zone, server: cfg.server });
const out = { on: [] as number[], off: [] as number[], misses: { on: 0, off: 0 } };
for (let i = 0; i < cfg.runs; i++) {
  for (const on of [false, true]) {
    try {
      const r = await fetchFile({
        name: cfg.name, sha256: cfg.sha256, cdn: [], output: `${cfg.dir}/zone-fetch-${i}-${on ? 'on' : 'off'}`, publish: false, useCdn: false,
        socketPath: `${cfg.dir}/none.sock`, extraFinders: on ? [zone] : [],
      });
      (on ? out.on : out.off).push(r.ms);
    } catch {
      out.misses[on ? 'on' : 'off']++;
    }
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(0);
