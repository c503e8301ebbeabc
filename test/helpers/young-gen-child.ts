/**
 * Run as a child process by test/core/kept-v8-flags.test.ts (a fresh V8 heap each time):
 * sets --semi-space-growth-factor=1 (`kept`: through keepV8Flags; `plain`: setFlagsFromString),
 * starts a worker thread (startModuleWorker) and waits for its end, then allocates objects of
 * which many survive a few scavenges, and prints the young generation's size before and after
 * as JSON.
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { keepV8Flags } from '../../lib/core/kept-v8-flags.js';
import { startModuleWorker } from '../../lib/core/module-worker.js';

const mode = process.argv[2];
const flag = '--semi-space-growth-factor=1';
if (mode === 'kept') keepV8Flags([flag]);
else setFlagsFromString(flag);
const youngSize = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
const before = youngSize();
const w = startModuleWorker(import.meta.url, './idle-worker');
await new Promise((resolve) => w.once('exit', resolve));
let keep: object[] = [];
for (let i = 0; i < 3_000_000; i++) {
  keep.push({ a: i, b: [i] });
  if (keep.length > 200_000) keep = [];
}
process.stdout.write(JSON.stringify({ before, after: youngSize() }));
