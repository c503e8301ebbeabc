import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Store } from '../../lib/store/store.js';
import { parseBootTime } from '../../lib/store/boot-time.js';
import { body, defer, xattrText, tempDir } from './helpers.js';

test('next-reboot items are disabled while the boot time is unchanged and enabled after a reboot', async (t) => {
  const state = await tempDir(t);
  const a = new Store({ stateDir: state, bootTime: () => '1111' });
  await a.load();
  const item = await a.publish(body('fw'), { basename: 'fw.cab', nextReboot: true });
  assert.equal(item.nextReboot, true);
  assert.equal(item.disabled, true);
  assert.equal(await xattrText(item.path, 'user.boot_time'), '1111');
  assert.deepEqual(a.advertisedHashes(), []);
  await a.close();

  const same = new Store({ stateDir: state, bootTime: () => '1111' });
  await same.load();
  assert.equal(same.get(item.hash)?.disabled, true);
  await same.close();

  const rebooted = new Store({ stateDir: state, bootTime: () => '2222' });
  defer(t, () => rebooted.close());
  await rebooted.load();
  assert.equal(rebooted.get(item.hash)?.disabled, false);
  assert.deepEqual(rebooted.advertisedHashes(), [item.hash]);
});

test('the default boot time is the btime value of /proc/stat, as upstream stores it', async (t) => {
  assert.equal(parseBootTime('cpu 1 2 3\nbtime 1795655372\nprocesses 5\n'), '1795655372');
  assert.equal(parseBootTime('cpu 1\n'), undefined);
  const expected = parseBootTime(readFileSync('/proc/stat', 'utf8'));
  const state = await tempDir(t);
  const s = new Store({ stateDir: state });
  defer(t, () => s.close());
  await s.load();
  const item = await s.publish(body('x'), { basename: 'x', nextReboot: true });
  assert.equal(await xattrText(item.path, 'user.boot_time'), expected);
  assert.equal(item.disabled, true);
});
