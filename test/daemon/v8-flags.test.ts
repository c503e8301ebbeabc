/**
 * The daemon's V8 flags survive a worker thread: V8 raises --semi-space-growth-factor back to 2
 * when it sets up any isolate's heap, a worker's too, so the daemon sets its flags again as each
 * worker comes up (daemon/v8-flags.ts). Without that, the young generation grows to 32 MiB.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';

async function youngAfterWorker(flags?: string): Promise<number> {
  const env = flags === undefined ? {} : { PASSIM_DAEMON_V8_FLAGS: flags };
  const r = await execa(process.execPath, ['--import', 'tsx', 'test/helpers/v8-flags-child.ts'], { env });
  return (JSON.parse(r.stdout) as { young: number }).young;
}

test('the young generation keeps its size after a worker thread started (flags set again)', async () => {
  const young = await youngAfterWorker();
  assert.ok(young <= 4, `young generation ${young} MiB`);
});

test('control: without the flags the same allocations grow the young generation', async () => {
  const young = await youngAfterWorker('');
  assert.ok(young >= 16, `young generation ${young} MiB (the allocations must be enough to grow it)`);
});
