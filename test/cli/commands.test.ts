import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, tempDir } from '../control/helpers.js';
import { assertCleanError, buildOnce, passim } from './helpers.js';
import { requires } from '../helpers/requires.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

before(() => buildOnce());

test('publish FILE MAX-AGE SHARE-LIMIT prints the item line and the store holds it', async (t) => {
  const h = await startHarness(t);
  const file = join(h.dir, 'repomd.xml');
  await writeFile(file, 'metadata v1');
  const r = await passim(['publish', file, '3600', '7', '--socket', h.socketPath]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stderr, '');
  const fields = r.stdout.trimEnd().split('\t');
  assert.deepEqual(fields, [sha('metadata v1'), 'repomd.xml', '0/3600', '0/7', '11', '-']);
  const item = h.store.get(sha('metadata v1'));
  assert.ok(item);
  assert.equal(item.maxAge, 3600);
  assert.equal(item.shareLimit, 7);
  assert.match(item.cmdline ?? '', /^passim publish .*repomd\.xml 3600 7/);
});

test('publish with flags, --json and PASSIM_SOCKET; a second publish of the same bytes fails (exit 1)', async (t) => {
  const h = await startHarness(t);
  const file = join(h.dir, 'fw.cab');
  await writeFile(file, Buffer.alloc(5000, 3));
  const env = { PASSIM_SOCKET: h.socketPath };
  const r = await passim(['publish', file, '--name', 'firmware.cab', '--max-age', '60', '--share-limit', '2', '--next-reboot', '--json'], env);
  assert.equal(r.exitCode, 0, r.stderr);
  const item = JSON.parse(r.stdout);
  assert.equal(item.hash, sha(Buffer.alloc(5000, 3)));
  assert.equal(item.basename, 'firmware.cab');
  assert.equal(item.maxAge, 60);
  assert.equal(item.shareLimit, 2);
  assert.equal(item.nextReboot, true);

  const again = await passim(['publish', file], env);
  assert.equal(again.exitCode, 1);
  assertCleanError(again.stderr);
  assert.match(again.stderr, /already published/);
  assert.equal(h.store.list().length, 1);
});

test('publish: a missing file or a directory is exit 1 before the daemon is asked', async (t) => {
  const dir = await tempDir(t);
  const nosock = join(dir, 'no.sock'); // unreachable: exit 5 would mean the daemon was tried first
  const missing = await passim(['publish', join(dir, 'missing.bin'), '--socket', nosock]);
  assert.equal(missing.exitCode, 1);
  assertCleanError(missing.stderr);
  assert.match(missing.stderr, /missing\.bin: no such file/);
  await mkdir(join(dir, 'sub'));
  const isDir = await passim(['publish', join(dir, 'sub'), '--socket', nosock]);
  assert.equal(isDir.exitCode, 1);
  assert.match(isDir.stderr, /is a directory/);
});

test('usage errors are exit 2 with one error line', async (t) => {
  const h = await startHarness(t);
  const file = join(h.dir, 'f');
  await writeFile(file, 'x');
  const s = ['--socket', h.socketPath];
  const cases: string[][] = [
    ['publish', file, 'ten', ...s],
    ['publish', file, '-1', ...s],
    ['publish', file, '5', '1.5', ...s],
    ['publish', file, '5', '5', '5', ...s],
    ['publish', file, '5', '--max-age', '6', ...s],
    ['publish', file, '--max-age', ...s],
    ['publish', file, '--share-limit', '99999999999', ...s],
    ['publish', file, '--name', 'a/b', ...s],
    ['publish', ...s],
    ['publish', file, '--bogus', ...s],
    ['unpublish', 'abc', ...s],
    ['unpublish', ...s],
    ['unpublish', 'a'.repeat(64), 'extra', ...s],
    ['dump', 'extra', ...s],
    ['verify', '--sha256', 'a'.repeat(64), ...s],
    ['verify', file, ...s],
    ['verify', file, '--sha256', 'nothex', ...s],
    ['verify', file, '--sha256', 'a'.repeat(64), '--fix', ...s],
  ];
  for (const args of cases) {
    const r = await passim(args);
    assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`);
    assertCleanError(r.stderr);
    assert.equal(r.stdout, '', args.join(' '));
  }
  assert.equal(h.store.list().length, 0, 'nothing was published by a bad command line');
});

test('unpublish: removes an item (exit 0), unknown hash exit 3', async (t) => {
  const h = await startHarness(t);
  const file = join(h.dir, 'x.bin');
  await writeFile(file, 'unpublish me');
  const hash = sha('unpublish me');
  assert.equal((await passim(['publish', file, '--socket', h.socketPath])).exitCode, 0);
  const r = await passim(['unpublish', hash.toUpperCase(), '--socket', h.socketPath]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`unpublished ${hash} x\\.bin`));
  assert.equal(h.store.get(hash), undefined);
  const again = await passim(['unpublish', hash, '--socket', h.socketPath]);
  assert.equal(again.exitCode, 3);
  assertCleanError(again.stderr);
  assert.match(again.stderr, /no item with sha256/);
});

test('dump (and its alias status): status lines, then one tab-separated line per item; --json is { status, items }', async (t) => {
  const h = await startHarness(t);
  for (const [name, body] of [['b.txt', 'bbb'], ['a.txt', 'aaaa']]) {
    const f = join(h.dir, name);
    await writeFile(f, body);
    assert.equal((await passim(['publish', f, '--socket', h.socketPath])).exitCode, 0);
  }
  const r = await passim(['dump', '--socket', h.socketPath]);
  assert.equal(r.exitCode, 0, r.stderr);
  const [head, items] = r.stdout.split('\n\n');
  assert.match(head!, /^Version: +0\.0\.0-test$/m);
  assert.match(head!, /^Status: +running$/m);
  assert.match(head!, /^Port: +27500$/m);
  assert.match(head!, /^Name: +Passim-TEST$/m);
  assert.match(head!, /^Download saving: +0 B$/m);
  assert.match(head!, /^Carbon saving: +0 kg$/m);
  const lines = items!.trimEnd().split('\n').map((l) => l.split('\t'));
  assert.deepEqual(lines.map((l) => [l[0], l[1], l[3], l[4], l[5]]), [
    [sha('aaaa'), 'a.txt', '0/5', '4', '-'],
    [sha('bbb'), 'b.txt', '0/5', '3', '-'],
  ]);
  for (const l of lines) assert.match(l[2]!, /^\d+\/86400$/);

  const alias = await passim(['status', '--socket', h.socketPath]);
  assert.equal(alias.exitCode, 0);
  const dropAge = (text: string) => text.trimEnd().split('\n').map((l) => l.split('\t').filter((_, i) => i !== 2).join('\t'));
  assert.deepEqual(dropAge(alias.stdout.split('\n\n')[1]!), dropAge(items!));

  const j = await passim(['dump', '--json', '--socket', h.socketPath]);
  assert.equal(j.exitCode, 0);
  const data = JSON.parse(j.stdout);
  assert.equal(data.status.items, 2);
  assert.equal(data.status.name, 'Passim-TEST');
  assert.deepEqual(data.items.map((i: { basename: string }) => i.basename), ['a.txt', 'b.txt']);
});

test('verify: 0 when clean, 4 with a tampered item, --fix unpublishes it (0)', async (t) => {
  const h = await startHarness(t);
  const f = join(h.dir, 'v.bin');
  await writeFile(f, 'original');
  assert.equal((await passim(['publish', f, '--socket', h.socketPath])).exitCode, 0);
  const clean = await passim(['verify', '--socket', h.socketPath]);
  assert.equal(clean.exitCode, 0, clean.stderr);
  assert.match(clean.stdout, /checked 1 item: 0 bad/);

  await writeFile(h.store.get(sha('original'))!.path, 'tampered');
  const bad = await passim(['verify', '--socket', h.socketPath]);
  assert.equal(bad.exitCode, 4);
  assert.match(bad.stdout, new RegExp(`^BAD\\t${sha('original')}\\tv\\.bin\\tcontent now hashes to ${sha('tampered')}$`, 'm'));
  assertCleanError(bad.stderr);
  assert.ok(h.store.get(sha('original')), 'not removed without --fix');

  const fixed = await passim(['verify', '--fix', '--json', '--socket', h.socketPath]);
  assert.equal(fixed.exitCode, 0, fixed.stderr);
  assert.deepEqual(JSON.parse(fixed.stdout), {
    checked: 1,
    bad: [{ hash: sha('original'), basename: 'v.bin', actual: sha('tampered'), fixed: true }],
  });
  assert.equal(h.store.get(sha('original')), undefined);
});

test('verify FILE --sha256: 0 on match, 4 on mismatch, 1 when unreadable; no daemon needed', async (t) => {
  const dir = await tempDir(t);
  const f = join(dir, 'local.bin');
  await writeFile(f, 'local bytes');
  const env = { PASSIM_SOCKET: join(dir, 'none.sock') };
  const ok = await passim(['verify', f, '--sha256', sha('local bytes').toUpperCase()], env);
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.match(ok.stdout, /local\.bin: OK/);
  const mismatch = await passim(['verify', f, '--sha256', sha('other')], env);
  assert.equal(mismatch.exitCode, 4);
  assertCleanError(mismatch.stderr);
  assert.match(mismatch.stderr, /checksum mismatch/);
  const missing = await passim(['verify', join(dir, 'nope'), '--sha256', sha('x')], env);
  assert.equal(missing.exitCode, 1);
  assertCleanError(missing.stderr);
  assert.match(missing.stderr, /no such file/);
  const json = await passim(['verify', f, '--sha256', sha('local bytes'), '--json'], env);
  assert.equal(JSON.parse(json.stdout).ok, true);
});

test('no daemon: exit 5 with one line naming the socket', async (t) => {
  const dir = await tempDir(t);
  const sock = join(dir, 'none.sock');
  const f = join(dir, 'f');
  await writeFile(f, 'x');
  for (const args of [['dump'], ['status', '--json'], ['publish', f], ['unpublish', 'a'.repeat(64)], ['verify', '--fix']]) {
    const r = await passim([...args, '--socket', sock]);
    assert.equal(r.exitCode, 5, `${args.join(' ')}: ${r.stderr}`);
    assertCleanError(r.stderr);
    assert.ok(r.stderr.includes(sock), r.stderr);
    assert.match(r.stderr, /passim serve/);
    assert.equal(r.stdout, '');
  }
});

test('--verbose adds the stack trace that is otherwise never shown', async (t) => {
  const dir = await tempDir(t);
  const r = await passim(['dump', '--verbose', '--socket', join(dir, 'none.sock')]);
  assert.equal(r.exitCode, 5);
  assert.match(r.stderr, /^passim: error: /);
  assert.match(r.stderr, /\n\s+at /);
});

test('dump on a terminal shows a table in human units (script(1) gives it a pty)', { skip: requires('script') }, async (t) => {
  const { execa } = await import('execa');
  const h = await startHarness(t);
  const f = join(h.dir, 'table.bin');
  await writeFile(f, Buffer.alloc(1536, 1));
  assert.equal((await passim(['publish', f, '86400', '9', '--socket', h.socketPath])).exitCode, 0);
  const { BIN } = await import('./helpers.js');
  // script(1) gives the child a pseudo-terminal, so process.stdout.isTTY is true there
  const r = await execa('script', ['-qec', `${process.execPath} ${BIN} dump --socket ${h.socketPath}`, '/dev/null'],
    { reject: false, env: { COLUMNS: '200', NO_COLOR: '1' } });
  assert.equal(r.exitCode, 0, r.stderr);
  const out = r.stdout.replace(/\r/g, '');
  assert.match(out, /^Version: +0\.0\.0-test$/m);
  assert.match(out, /┌/);
  assert.match(out, /│ Hash +│ Name +│ Age \/ Max age +│ Shared \/ Limit │ Size +│ Flags │/);
  assert.match(out, new RegExp(`│ ${sha(Buffer.alloc(1536, 1))} │ table\\.bin │ \\d+s / 1d +│ 0 / 9 +│ 1\\.5 KiB │ +│`));
  assert.doesNotMatch(out, /\t/);
});
