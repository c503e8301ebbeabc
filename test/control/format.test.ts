import { test } from 'node:test';
import assert from 'node:assert/strict';
import { humanItemRow, plainItemLine, statusLines } from '../../lib/control/format.js';
import { humanBytes, humanCarbon, humanDuration } from '../../lib/core/human-units.js';
import type { ItemInfo } from '../../lib/control/api.js';

const item = (over: Partial<ItemInfo> = {}): ItemInfo => ({
  hash: 'ab'.repeat(32), basename: 'fw.cab', path: '/x', size: 1536, maxAge: 86400, shareLimit: 5, shareCount: 2,
  created: 1_000_000, nextReboot: false, disabled: false, static: false, ...over,
});

test('human units (lib/core/human-units.ts: the index page, dump and fetch progress)', () => {
  assert.equal(humanBytes(0), '0 B');
  assert.equal(humanBytes(1023), '1023 B');
  assert.equal(humanBytes(1536), '1.5 KiB');
  assert.equal(humanBytes(5 * 1024 ** 3), '5.0 GiB');
  assert.equal(humanBytes(300 * 1024 ** 2), '300 MiB');
  assert.equal(humanBytes(98.4 * 1024), '98 KiB');
  assert.equal(humanDuration(59), '59s');
  assert.equal(humanDuration(3725), '1h02m');
  assert.equal(humanDuration(86400 * 30), '30d');
  assert.equal(humanDuration(86400 + 7200), '1d2h');
  assert.equal(humanCarbon(0), '0 kg');
  assert.equal(humanCarbon(0.0012345), '1.23 g');
  assert.equal(humanCarbon(0.0791), '79.1 g');
  assert.equal(humanCarbon(2.5), '2.5 kg');
});

test('plain item line: seconds, counts, bytes, flags; "-" for never / unlimited / none', () => {
  assert.equal(plainItemLine(item(), 1_000_000 + 61_500), `${'ab'.repeat(32)}\tfw.cab\t61/86400\t2/5\t1536\t-`);
  assert.equal(plainItemLine(item({ static: true, maxAge: 0, shareLimit: 0 }), 1_000_000),
    `${'ab'.repeat(32)}\tfw.cab\t0/-\t2/-\t1536\tstatic`);
  assert.equal(plainItemLine(item({ nextReboot: true, disabled: true }), 0).split('\t')[5], 'next-reboot,disabled');
  // a clock behind the publish time never shows a negative age
  assert.equal(plainItemLine(item(), 0).split('\t')[2], '0/86400');
});

test('table row and status lines in human units', () => {
  assert.deepEqual(humanItemRow(item({ static: true, maxAge: 0, shareLimit: 0 }), 1_000_000 + 3_600_000).slice(1),
    ['fw.cab', '1h00m / never', '2 / ∞', '1.5 KiB', 'static']);
  const lines = statusLines({ version: '1', status: 'running', port: 27500, name: '', uri: 'https://localhost:27500/', downloadSaving: 1024 ** 3, carbonSaving: 0.026367, items: 3 });
  assert.ok(lines.includes('Download saving: 1.0 GiB'), lines.join('\n'));
  assert.ok(lines.includes('Carbon saving:   26.4 g'), lines.join('\n'));
  assert.ok(lines.includes('Name:            -'));
  // values line up
  assert.equal(new Set(lines.map((l) => l.search(/(?<=: +)\S/))).size, 1);
  assert.ok(!lines.some((l) => l.startsWith('Peers known')), 'no peer cache line from a daemon without one');
  const withCache = statusLines({ version: '1', status: 'running', port: 1, name: 'n', uri: 'u', downloadSaving: 0, carbonSaving: 0, items: 0, peerCache: { hashes: 12, peers: 3 } });
  assert.ok(withCache.includes('Peers known:     12 hashes on 3 peers'), withCache.join('\n'));
});
