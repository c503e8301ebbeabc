import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { isSha256, normaliseSha256, sha256File } from '../../lib/core/sha256.js';
import { InvalidHashError } from '../../lib/core/errors.js';

test('normaliseSha256 lower-cases and rejects non-hex or wrong length', () => {
  const h = 'AB'.repeat(32);
  assert.equal(normaliseSha256(h), 'ab'.repeat(32));
  assert.throws(() => normaliseSha256('ab'.repeat(31)), InvalidHashError);
  assert.throws(() => normaliseSha256('zz'.repeat(32)), InvalidHashError);
  assert.equal(isSha256('0'.repeat(64) + '\n'), false);
});

test('sha256File matches crypto over a file larger than one chunk', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'passim-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  data[12345] = 1;
  await writeFile(join(dir, 'f'), data);
  const r = await sha256File(join(dir, 'f'));
  assert.equal(r.size, data.length);
  assert.equal(r.sha256, createHash('sha256').update(data).digest('hex'));
});
