import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { AuditLog, escapeAuditValue, formatAuditLine, parseAuditFields, parseAuditLine } from '../../lib/store/audit-log.js';
import { carbonSaving, readDownloadSaving } from '../../lib/store/savings.js';
import { openStore, tempDir } from './helpers.js';

test('escaping: , = \\ get a backslash and round-trip through the parser', () => {
  assert.equal(escapeAuditValue('a,b=c\\d'), 'a\\,b\\=c\\\\d');
  const line = formatAuditLine(new Date(0), 'PBLSH', [['hash', 'h'], ['cmdline', 'sh -c "a=1,b=2" \\x']]);
  assert.equal(line, '1970-01-01T00:00:00.000Z PBLSH hash=h,cmdline=sh -c "a\\=1\\,b\\=2" \\\\x\n');
  const e = parseAuditLine(line.trimEnd());
  assert.equal(e?.type, 'PBLSH');
  assert.equal(e?.fields.get('cmdline'), 'sh -c "a=1,b=2" \\x');
});

test('any values without line breaks round-trip (property)', () => {
  const value = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !/[\r\n]/.test(s));
  fc.assert(
    fc.property(fc.array(fc.tuple(value, value), { minLength: 1, maxLength: 6 }), (pairs) => {
      const uniq = new Map(pairs);
      const line = formatAuditLine(new Date(1_700_000_000_000), 'SHARE', [...uniq]);
      const e = parseAuditLine(line.slice(0, -1));
      assert.ok(e);
      assert.deepEqual([...e.fields], [...uniq]);
    }),
  );
});

test('malformed field lists and lines are rejected', () => {
  assert.equal(parseAuditFields('a=1,b'), undefined);
  assert.equal(parseAuditFields('a=1=2'), undefined);
  assert.equal(parseAuditFields('a=1\\'), undefined);
  assert.deepEqual([...parseAuditFields('a=1,b=')!], [['a', '1'], ['b', '']]);
  assert.equal(parseAuditLine('garbage'), undefined);
  assert.equal(parseAuditLine('notadate SHARE size=1'), undefined);
  assert.equal(parseAuditLine('2024-01-01T00:00:00Z lower size=1'), undefined);
});

test('DownloadSaving is the sum of size over well-formed SHARE lines; CarbonSaving follows', async (t) => {
  const state = await tempDir(t);
  await mkdir(join(state, 'log'));
  const log = [
    '2024-01-01T00:00:00Z PBLSH hash=x,basename=a,size=999,cmdline=',
    '2024-01-01T00:00:01Z SHARE hash=x,basename=a\\,b,size=1000,ipaddr=192.0.2.1',
    'half a line SHARE size=',
    '2024-01-01T00:00:02Z SHARE hash=x,basename=a,size=notanumber,ipaddr=192.0.2.1',
    '2024-01-01T00:00:03Z SHARE hash=x,basename=a\\=b,size=24,ipaddr=::1',
    '2024-01-01T00:00:04Z SHARE hash=x,size=5,basename=broken\\',
    '2024-01-01T00:00:05Z DELTE hash=x,basename=a',
    '',
  ].join('\n');
  await writeFile(join(state, 'log', 'audit.log'), log);
  assert.equal(await readDownloadSaving(join(state, 'log', 'audit.log')), 1024);
  assert.equal(await readDownloadSaving(join(state, 'log', 'nope.log')), 0);
  const store = await openStore(t, { stateDir: state, carbonCost: 0.026367 });
  assert.deepEqual(store.savings(), { downloadSaving: 1024, carbonSaving: carbonSaving(1024, 0.026367) });
  assert.equal(carbonSaving(1024 ** 3, 0.026367), 0.026367);
  await store.recordShare('a'.repeat(64), '192.0.2.9', 1000);
  assert.equal(store.savings().downloadSaving, 2024);
});

test('concurrent appends stay one whole line each, in call order', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'log', 'audit.log');
  const log = new AuditLog(path);
  await log.open();
  await Promise.all(Array.from({ length: 200 }, (_, i) => log.append('SHARE', [['n', i], ['v', 'x'.repeat(500)]])));
  await log.close();
  const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
  assert.equal(lines.length, 200);
  lines.forEach((l, i) => assert.equal(parseAuditLine(l)?.fields.get('n'), String(i)));
});
