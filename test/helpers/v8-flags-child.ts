/**
 * Run by test/daemon/v8-flags.test.ts in its own process (V8 flags are process-wide): applies the
 * daemon's V8 flags (PASSIM_DAEMON_V8_FLAGS as the daemon reads it), starts a checksum worker,
 * then keeps many young objects alive across scavenges and prints the young generation's size
 * (MiB) as JSON.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { applyDaemonV8Flags } from '../../lib/daemon/v8-flags.js';
import { startModuleWorker } from '../../lib/core/module-worker.js';

applyDaemonV8Flags();
const w = startModuleWorker(new URL('../../lib/store/checksum-pool.ts', import.meta.url).href, './checksum-worker');
await new Promise((resolve) => w.once('online', resolve));
await w.terminate();
const keep: unknown[] = [];
for (let round = 0; round < 20; round++) {
  for (let i = 0; i < 20_000; i++) keep.push({ a: `x${i}-${round}`, b: [i, round] });
  await new Promise((resolve) => setImmediate(resolve));
}
const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size / 2 ** 20;
process.stdout.write(JSON.stringify({ young, kept: keep.length }) + '\n');
