import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { lstat, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Client } from 'undici';
import { ControlClient } from '../../lib/control/client.js';
import { startControlServer, lookupGroup } from '../../lib/control/server.js';
import {
  AlreadyRunningError,
  ChecksumMismatchError,
  DaemonUnreachableError,
  ExitCode,
  InvalidHashError,
  ItemExistsError,
  NotFoundError,
  PassimError,
  TooLargeError,
  UsageError,
} from '../../lib/core/errors.js';
import { startHarness, statusOf, tempDir } from './helpers.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A raw request to the control socket, for what ControlClient would never send. */
async function raw(socketPath: string, method: string, path: string, body?: string) {
  const c = new Client('http://localhost', { socketPath });
  try {
    const res = await c.request({ method: method as 'GET', path, body });
    const text = await res.body.text();
    return { status: res.statusCode, json: JSON.parse(text) as { error?: { code: string; message: string } } };
  } finally {
    await c.close();
  }
}

test('publish a file by path: the item is in the store with the same bytes and options', async (t) => {
  const h = await startHarness(t);
  const file = join(h.dir, 'firmware.cab');
  const data = Buffer.alloc(3 * 1024 * 1024 + 5, 0x5a);
  data[77] = 1;
  await writeFile(file, data);
  const client = new ControlClient(h.socketPath);
  t.after(() => client.close());

  const item = await client.publish(file, { maxAge: 3600, shareLimit: 7, cmdline: 'passim publish firmware.cab' });
  assert.equal(item.hash, sha(data));
  assert.equal(item.basename, 'firmware.cab');
  assert.equal(item.size, data.length);
  assert.equal(item.maxAge, 3600);
  assert.equal(item.shareLimit, 7);

  const held = h.store.get(item.hash);
  assert.ok(held, 'the store holds the item');
  assert.equal(held.cmdline, 'passim publish firmware.cab');
  assert.ok((await readFile(held.path)).equals(data), 'stored bytes equal the file');
  assert.deepEqual((await client.items()).map((i) => i.hash), [item.hash]);
});

test('publish a stream under a name; defaults from the store; next-reboot passes through', async (t) => {
  const h = await startHarness(t);
  const client = new ControlClient(h.socketPath);
  t.after(() => client.close());
  const item = await client.publish(Readable.from([Buffer.from('hello '), Buffer.from('world')]), { name: 'hello.txt', nextReboot: true });
  assert.equal(item.hash, sha('hello world'));
  assert.equal(item.maxAge, 86400);
  assert.equal(item.shareLimit, 5);
  assert.equal(item.nextReboot, true);
  await assert.rejects(client.publish(Readable.from([Buffer.from('x')]), {}), UsageError);
});

test('publishing the same content twice is ItemExistsError and leaves one item', async (t) => {
  const h = await startHarness(t);
  const client = new ControlClient(h.socketPath);
  t.after(() => client.close());
  await client.publish(Readable.from([Buffer.from('same')]), { name: 'a' });
  const err = await client.publish(Readable.from([Buffer.from('same')]), { name: 'b' }).catch((e) => e);
  assert.ok(err instanceof ItemExistsError, `got ${err}`);
  assert.match(err.message, /already published/);
  assert.equal(h.store.list().length, 1);
  assert.equal(h.store.list()[0]!.basename, 'a');
});

test('a body that does not hash to ?sha256= is a ChecksumMismatchError (exit 4) and is not kept', async (t) => {
  const h = await startHarness(t);
  const client = new ControlClient(h.socketPath);
  t.after(() => client.close());
  const err = await client.publish(Readable.from([Buffer.from('abc')]), { name: 'a', sha256: sha('abd') }).catch((e) => e);
  assert.ok(err instanceof ChecksumMismatchError, `got ${err}`);
  assert.equal(err.exitCode, ExitCode.CHECKSUM);
  assert.equal(h.store.list().length, 0);
  const ok = await client.publish(Readable.from([Buffer.from('abc')]), { name: 'a', sha256: sha('abc').toUpperCase() });
  assert.equal(ok.hash, sha('abc'));
});

test('unpublish removes the item; an unknown hash is NotFoundError (exit 3); a malformed one is a usage error', async (t) => {
  const h = await startHarness(t);
  const client = new ControlClient(h.socketPath);
  t.after(() => client.close());
  const item = await client.publish(Readable.from([Buffer.from('gone soon')]), { name: 'g' });
  const path = h.store.get(item.hash)!.path;
  const removed = await client.unpublish(item.hash.toUpperCase());
  assert.equal(removed.hash, item.hash);
  assert.equal(h.store.get(item.hash), undefined);
  await assert.rejects(stat(path), { code: 'ENOENT' });

  const err = await client.unpublish(item.hash).catch((e) => e);
  assert.ok(err instanceof NotFoundError, `got ${err}`);
  assert.equal(err.exitCode, ExitCode.NOT_FOUND);
  const bad = await client.unpublish('xyz').catch((e) => e);
  assert.ok(bad instanceof InvalidHashError, `got ${bad}`);
  assert.equal(bad.exitCode, ExitCode.USAGE);
});

test('bad query values and unknown routes get 4xx with an error body and change nothing', async (t) => {
  const h = await startHarness(t);
  const cases: Array<[string, string, number, string]> = [
    ['POST', '/items?name=a&max_age=abc', 400, 'PASSIM_USAGE'],
    ['POST', '/items?name=a&max_age=-1', 400, 'PASSIM_USAGE'],
    ['POST', '/items?name=a&max_age=1.5', 400, 'PASSIM_USAGE'],
    ['POST', '/items?name=a&share_limit=99999999999', 400, 'PASSIM_USAGE'],
    ['POST', '/items?name=a&share_limit=1&share_limit=2', 400, 'PASSIM_USAGE'],
    ['POST', '/items?name=a&next_reboot=maybe', 400, 'PASSIM_USAGE'],
    ['POST', '/items?name=a&color=red', 400, 'PASSIM_USAGE'],
    ['POST', '/items?max_age=5', 400, 'PASSIM_USAGE'],
    ['POST', '/items?name=..%2Fetc%2Fpasswd', 400, 'PASSIM_INVALID_NAME'],
    ['POST', '/items?name=a&sha256=1234', 400, 'PASSIM_INVALID_HASH'],
    ['DELETE', '/items/not-a-hash', 400, 'PASSIM_INVALID_HASH'],
    ['POST', '/verify?fix=yes', 400, 'PASSIM_USAGE'],
    ['POST', '/metered', 400, 'PASSIM_USAGE'],
    ['GET', '/status?x=1', 400, 'PASSIM_USAGE'],
    ['PUT', '/status', 405, 'PASSIM_USAGE'],
    ['GET', '/nothing-here', 404, 'PASSIM_USAGE'],
  ];
  for (const [method, path, status, code] of cases) {
    const r = await raw(h.socketPath, method, path, method === 'POST' ? 'some bytes' : undefined);
    assert.equal(r.status, status, `${method} ${path}`);
    assert.equal(r.json.error?.code, code, `${method} ${path}`);
    assert.ok(r.json.error?.message, `${method} ${path} has a message`);
  }
  assert.equal(h.store.list().length, 0);
  assert.deepEqual(h.metered, []);
  // the client turns such a reply into the class: a usage error, exit 2
  const err = await new ControlClient(h.socketPath).publish(Readable.from([Buffer.from('x')]), { name: 'a', maxAge: 1.5 }).catch((e) => e);
  assert.ok(err instanceof UsageError, `got ${err}`);
});

test('an upload larger than MaxItemSize is TooLargeError, leaves no temp file, and the socket still works', async (t) => {
  const h = await startHarness(t, { maxItemSize: 64 * 1024 });
  const client = new ControlClient(h.socketPath);
  t.after(() => client.close());
  const big = Buffer.alloc(8 * 1024 * 1024, 1);
  const file = join(h.dir, 'big.bin');
  await writeFile(file, big);
  const err = await client.publish(file).catch((e) => e);
  assert.ok(err instanceof TooLargeError, `got ${err}`);
  assert.equal(h.store.list().length, 0);
  const left = await readdir(h.store.dataDir);
  assert.deepEqual(left.filter((n) => n.startsWith('.passim-tmp-') || /^[0-9a-f]{64}-/.test(n)), [], `data dir: ${left}`);
  const small = await client.publish(Readable.from([Buffer.alloc(1000, 2)]), { name: 'small' });
  assert.equal(small.size, 1000);
});

test('status, verify (with and without fix) and metered go through the socket', async (t) => {
  const h = await startHarness(t);
  const client = new ControlClient(h.socketPath);
  t.after(() => client.close());
  const good = await client.publish(Readable.from([Buffer.from('good')]), { name: 'good' });
  const bad = await client.publish(Readable.from([Buffer.from('bad')]), { name: 'bad' });
  assert.deepEqual(await client.status(), statusOf(h.store));
  assert.equal((await client.status()).items, 2);

  assert.deepEqual(await client.verify(), { checked: 2, bad: [] });
  await writeFile(h.store.get(bad.hash)!.path, 'tampered');
  const r1 = await client.verify(false);
  assert.equal(r1.checked, 2);
  assert.deepEqual(r1.bad, [{ hash: bad.hash, basename: 'bad', actual: sha('tampered'), fixed: false }]);
  assert.ok(h.store.get(bad.hash), 'not fixed: still there');
  const r2 = await client.verify(true);
  assert.deepEqual(r2.bad.map((b) => [b.hash, b.fixed]), [[bad.hash, true]]);
  assert.equal(h.store.get(bad.hash), undefined);
  assert.ok(h.store.get(good.hash));

  const st = await client.setMetered(true);
  assert.equal(st.version, '0.0.0-test');
  await client.setMetered(false);
  assert.deepEqual(h.metered, [true, false]);
});

test('socket file: parent dir created, mode 0660, removed on close', async (t) => {
  const dir = await tempDir(t);
  const store = { list: () => [], publish: async () => { throw new Error('unused'); }, unpublish: async () => { throw new Error('unused'); } };
  const socketPath = join(dir, 'run', 'passim', 'passim.sock');
  const server = await startControlServer({ socketPath, store, status: () => ({}) as never });
  const st = await lstat(socketPath);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal((await stat(join(dir, 'run', 'passim'))).mode & 0o777, 0o755);
  await server.close();
  await assert.rejects(lstat(socketPath), { code: 'ENOENT' });
});

test('a stale socket (nothing answers) is replaced', async (t) => {
  const dir = await tempDir(t);
  const socketPath = join(dir, 'stale.sock');
  // a process that listens and is killed leaves its socket file behind
  const child = spawn(process.execPath, ['-e',
    `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.stdout.write('ready\\n'))`]);
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.ok((await lstat(socketPath)).isSocket(), 'the stale socket file is there');
  const before = await new ControlClient(socketPath).status().catch((e) => e);
  assert.ok(before instanceof DaemonUnreachableError, `got ${before}`);
  assert.match(before.message, /nothing is listening/);

  const h = await startHarness(t, { socketName: 'unused.sock' });
  const server = await startControlServer({ socketPath, store: h.store, status: () => statusOf(h.store) });
  t.after(() => server.close());
  const client = new ControlClient(socketPath);
  t.after(() => client.close());
  assert.equal((await client.status()).name, 'Passim-TEST');
});

test('a live socket is AlreadyRunningError and keeps working; a non-socket file is not removed', async (t) => {
  const h = await startHarness(t);
  const err = await startControlServer({ socketPath: h.socketPath, store: h.store, status: () => statusOf(h.store) }).catch((e) => e);
  assert.ok(err instanceof AlreadyRunningError, `got ${err}`);
  assert.match(err.message, /another passim daemon is listening on .*passim\.sock/);
  const client = new ControlClient(h.socketPath);
  t.after(() => client.close());
  assert.equal((await client.items()).length, 0, 'the first server still answers');

  // something else listening there counts as live too
  const other = join(h.dir, 'other.sock');
  const foreign = createServer(() => {}).listen(other);
  await once(foreign, 'listening');
  t.after(() => foreign.close());
  await assert.rejects(startControlServer({ socketPath: other, store: h.store, status: () => statusOf(h.store) }), AlreadyRunningError);

  const plain = join(h.dir, 'plain-file');
  await writeFile(plain, 'keep me');
  const e2 = await startControlServer({ socketPath: plain, store: h.store, status: () => statusOf(h.store) }).catch((e) => e);
  assert.ok(e2 instanceof PassimError && !(e2 instanceof AlreadyRunningError), `got ${e2}`);
  assert.match(e2.message, /not a socket/);
  assert.equal(await readFile(plain, 'utf8'), 'keep me');
});

test('a client against a missing socket is DaemonUnreachableError (exit 5) naming the socket', async (t) => {
  const dir = await tempDir(t);
  const socketPath = join(dir, 'nobody.sock');
  const client = new ControlClient(socketPath);
  t.after(() => client.close());
  for (const call of [() => client.status(), () => client.items(), () => client.unpublish('a'.repeat(64)), () => client.verify(true)]) {
    const err = await call().catch((e) => e);
    assert.ok(err instanceof DaemonUnreachableError, `got ${err}`);
    assert.equal(err.exitCode, ExitCode.DAEMON_UNREACHABLE);
    assert.ok(err.message.includes(socketPath));
    assert.match(err.message, /passim serve/);
  }
  // a directory there is a clear error too
  await mkdir(join(dir, 'adir'));
  await assert.rejects(new ControlClient(join(dir, 'adir')).status(), PassimError);
});

test('a missing file or a directory fails before the daemon is contacted', async (t) => {
  const dir = await tempDir(t);
  const client = new ControlClient(join(dir, 'nobody.sock'));
  t.after(() => client.close());
  const missing = await client.publish(join(dir, 'missing.bin')).catch((e) => e);
  assert.ok(missing instanceof PassimError && !(missing instanceof DaemonUnreachableError), `got ${missing}`);
  assert.match(missing.message, /no such file/);
  const isDir = await client.publish(dir).catch((e) => e);
  assert.ok(isDir instanceof PassimError && !(isDir instanceof DaemonUnreachableError), `got ${isDir}`);
  assert.match(isDir.message, /is a directory/);
});

test('lookupGroup reads gids from a group file', async (t) => {
  const dir = await tempDir(t);
  const f = join(dir, 'group');
  await writeFile(f, 'root:x:0:\npassim:x:987:alice,bob\nbroken\n');
  assert.equal(await lookupGroup('passim', f), 987);
  assert.equal(await lookupGroup('root', f), 0);
  assert.equal(await lookupGroup('nope', f), undefined);
  assert.equal(await lookupGroup('passim', join(dir, 'none')), undefined);
});

test('a client that goes away mid-upload leaves no item and no temp file, and the server keeps serving', async (t) => {
  const h = await startHarness(t, { socketName: 'unused.sock' });
  let publishing: Promise<unknown> | undefined;
  let started!: () => void;
  const publishStarted = new Promise<void>((r) => (started = r));
  // the real store, with its publish promise kept so the test can wait for the server to finish
  const store = {
    list: () => h.store.list(),
    unpublish: (hash: string) => h.store.unpublish(hash),
    publish: (src: Readable, o: Parameters<typeof h.store.publish>[1]) => {
      publishing = h.store.publish(src, o);
      started();
      return publishing as ReturnType<typeof h.store.publish>;
    },
  };
  const socketPath = join(h.dir, 'abort.sock');
  const server = await startControlServer({ socketPath, store, status: () => statusOf(h.store) });
  t.after(() => server.close());

  const { connect } = await import('node:net');
  const s = connect(socketPath);
  await once(s, 'connect');
  s.write('POST /items?name=partial.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n');
  s.write(Buffer.alloc(5000, 9));
  // wait until the store is reading this upload, then vanish
  await publishStarted;
  s.destroy();
  await assert.rejects(publishing);
  assert.equal(h.store.list().length, 0);
  const left = await readdir(h.store.dataDir);
  assert.deepEqual(left.filter((n) => n.startsWith('.passim-tmp-') || /^[0-9a-f]{64}-/.test(n)), [], `data dir: ${left}`);
  const client = new ControlClient(socketPath);
  t.after(() => client.close());
  assert.equal((await client.items()).length, 0);
});
