/**
 * Fuzz of basename validation (issue 4): random names (`..`, `/`, `%2f`, NUL, long, unicode, lone
 * surrogates) are either rejected with InvalidNameError, or give a store file name
 * `<dataDir>/<hash>-<name>` that stays directly inside dataDir, is at most 255 bytes, reads back
 * as the same (hash, name), and can really be created there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { MAX_BASENAME_BYTES, validateBasename } from '../../lib/core/basename.js';
import { InvalidNameError } from '../../lib/core/errors.js';
import { isTempFileName, itemFileName, parseItemFileName } from '../../lib/store/item-file.js';
import { bump, checkCountedAsync, newTally, RUNS } from './helpers.js';

const PIECES = [
  '..', '.', '/', '%2f', '%2F', '%2e%2e', '%00', '\u0000', '\\', '..\\', 'a', 'Z', '0', '-', '_', ' ', '\t', '\n', '\r', '\u007f',
  '\u0085', '\u00a0', 'é', 'e\u0301', 'ß', '😀', '\ud800', '\udc00', '\udbff', '\u202e', '\u200b', '\ufeff', '\uffff', '～', '／', '∕',
  '\u2215', '\uff0e\uff0e', 'CON', 'nul', '~', '$HOME', '`id`', '*', '?', '"', "'", '<', '>', '|', ':', ';', '#', '?sha256=', '&',
];

const names = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.constantFrom(...PIECES), { minLength: 0, maxLength: 12 }).map((p) => p.join('')) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
  {
    // around the byte limit, with 1-, 2-, 3- and 4-byte characters
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('a', 'é', '€', '😀'), fc.integer({ min: 40, max: 260 }), fc.constantFrom('', 'x', '.cab', '\ud800'))
      .map(([c, n, tail]) => c.repeat(Math.ceil(n / Buffer.byteLength(c))) + tail),
  },
  { weight: 1, arbitrary: fc.integer({ min: 255, max: 70_000 }).map((n) => 'n'.repeat(n)) },
);

const hashArb = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => createHash('sha256').update(b).digest('hex'));

test('basename: random names are rejected or stay directly inside the data dir', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'passim-fuzz-name-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const tally = newTally();
  let created = 0;
  await checkCountedAsync(t, 'basename', [names, hashArb], async (name, hash) => {
    let ok: string;
    try {
      ok = validateBasename(name);
    } catch (err) {
      assert.ok(err instanceof InvalidNameError, `rejected with InvalidNameError, got ${(err as Error)?.constructor?.name}`);
      assert.ok(!err.message.includes('\n') || err.message.startsWith('name must not contain control'), 'message');
      assert.ok(err.message.length < 1000, `bounded message (${err.message.length})`);
      bump(tally, 'rejected');
      return;
    }
    bump(tally, 'accepted');
    assert.equal(ok, name, 'an accepted name is returned unchanged');
    const fileName = itemFileName(hash, name);
    const full = join(dataDir, fileName);
    assert.equal(dirname(full), dataDir, `stays directly inside dataDir: ${JSON.stringify(name)}`);
    assert.equal(basename(full), fileName, 'path.join did not normalise the name');
    assert.ok(Buffer.byteLength(fileName, 'utf8') <= 255, `≤ 255 bytes (${Buffer.byteLength(fileName)})`);
    assert.ok(Buffer.byteLength(name, 'utf8') <= MAX_BASENAME_BYTES);
    assert.ok(!name.includes('/') && !name.includes('\0') && name !== '.' && name !== '..');
    assert.ok(name.isWellFormed(), 'valid unicode');
    assert.ok(!isTempFileName(fileName), 'never taken for a temp file');
    assert.deepEqual(parseItemFileName(fileName), { hash, basename: name }, 'reads back as the same item');
    // a share of the accepted names really created on disk: the kernel agrees it is one entry of dataDir
    if (tally.outcomes.accepted! % 4 === 1) {
      const fh = await open(full, 'wx');
      await fh.close();
      const entries = await readdir(dataDir);
      assert.deepEqual(entries, [fileName], 'exactly one new entry, with the expected name');
      await unlink(full);
      created++;
    }
  }, RUNS, tally);
  t.diagnostic(`basename: ${created} accepted names created on disk`);
  assert.ok((tally.outcomes.accepted ?? 0) > RUNS / 10 && (tally.outcomes.rejected ?? 0) > RUNS / 10, 'both outcomes exercised');
});

test('basename: the classic traversal and encoding cases', () => {
  for (const bad of ['', '.', '..', '/', '../x', 'a/b', '/etc/passwd', 'a\u0000b', 'x\n', '\ud800', 'a'.repeat(MAX_BASENAME_BYTES + 1), 'é'.repeat(96)]) {
    assert.throws(() => validateBasename(bad), InvalidNameError, JSON.stringify(bad));
  }
  // literal names: percent sequences and backslashes are just characters on Linux, inside the dir
  for (const good of ['%2f', '..%2f..%2fetc', '..\\..\\x', '...', '.hidden', 'a'.repeat(MAX_BASENAME_BYTES), 'é'.repeat(95), 'firmware.cab']) {
    assert.equal(validateBasename(good), good);
    assert.equal(dirname(join('/data', `${'0'.repeat(64)}-${good}`)), '/data');
  }
});
