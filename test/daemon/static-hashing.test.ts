/**
 * A daemon whose static dirs are still being hashed: it is `ready` (HTTPS, control socket, mDNS
 * name claimed) and serves and advertises each static file as soon as its hash is known, while a
 * big file is still being hashed; `dump` says `loading` and how many files are left. A second
 * start takes every hash from the xattr cache and hashes no file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { findPeers } from '../../lib/discovery/browser.js';
import { listLinks } from '../../lib/discovery/interfaces.js';
import { ControlClient } from '../../lib/control/client.js';
import type { StatusReply } from '../../lib/control/api.js';
import { makeRoot, passim, startDaemon, type TestDaemon } from '../helpers/daemon.js';

const insecure = new Agent({ connect: { rejectUnauthorized: false } });
const sha = (b: string) => createHash('sha256').update(b).digest('hex');
const skip = listLinks({ interfaces: ['lo'] }).length === 0 && 'no loopback interface with IPv4';

async function staticDir(root: string, files: number): Promise<string> {
  const dir = join(root, 'static');
  await mkdir(dir);
  await Promise.all(Array.from({ length: files }, (_, i) => writeFile(join(dir, `small-${String(i).padStart(4, '0')}.txt`), `small file ${i}\n`)));
  await mkdir(join(root, 'config', 'passim.d'), { recursive: true });
  await writeFile(join(root, 'config', 'passim.d', 'static.conf'), `[passim]\nPath=${dir}\n`);
  return dir;
}

/** Asks the daemon's status until `done` holds (the daemon offers no push for it); fails after 60 s. */
async function statusUntil(d: TestDaemon, done: (s: StatusReply) => boolean): Promise<StatusReply> {
  const client = new ControlClient(d.socket);
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const s = await client.status();
      if (done(s)) return s;
      if (Date.now() > deadline) throw new Error(`status never reached the condition: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await client.destroy();
  }
}

async function get(d: TestDaemon, path: string) {
  const r = await request(`https://127.0.0.1:${d.port}${path}`, { dispatcher: insecure });
  return { status: r.statusCode, body: await r.body.text() };
}

test('serves and advertises static files as they are hashed, while a big one is still pending', { skip, timeout: 120_000 }, async (t) => {
  const root = await makeRoot();
  const count = 300;
  const dir = await staticDir(root, count);
  // sparse: no disk used, but 16 GiB of zeros take seconds to hash; first in name order
  await writeFile(join(dir, 'aaa-big.img'), '');
  await truncate(join(dir, 'aaa-big.img'), 16 * 1024 ** 3);
  const d = await startDaemon({ root });
  t.after(async () => { await d.stop(); await d.cleanup(); });

  // ready came before the static dir was done
  const early = await statusUntil(d, (s) => s.items >= count);
  assert.equal(early.status, 'loading');
  assert.equal(early.hashing, 1, 'only the big file is left');

  const h = sha('small file 7\n');
  const item = await get(d, `/small-0007.txt?sha256=${h}`);
  assert.equal(item.status, 200);
  assert.equal(item.body, 'small file 7\n');
  const index = await get(d, '/');
  assert.equal(index.status, 200);
  assert.match(index.body, /small-0299\.txt/);
  assert.doesNotMatch(index.body, /aaa-big\.img/);
  const peers = await findPeers(sha('small file 299\n'), { interfaces: ['lo'], timeoutMs: 3000 });
  assert.ok(peers.some((p) => p.port === d.port), `advertised on mDNS: ${JSON.stringify(peers)}`);

  // all of the above happened while the big file was still being hashed
  const dump = await passim(['dump', '--socket', d.socket]);
  assert.equal(dump.code, 0, dump.stderr);
  assert.match(dump.stdout, /^Status:\s+loading$/m);
  assert.match(dump.stdout, new RegExp(`^Items:\\s+${count} \\(1 static files still being hashed\\)$`, 'm'));
});

test('a second start takes every hash from the state dir\'s checksums, a start without them from the xattr cache; status is running once the scan is done', { timeout: 120_000 }, async (t) => {
  const root = await makeRoot();
  const count = 50;
  await staticDir(root, count);
  const line = (hashed: number, xattr: number, known: number) =>
    new RegExp(`static dirs: ${count} items after \\d+ ms \\(${hashed} files hashed, ${xattr} from the xattr checksum cache, ${known} known from the last scan\\)`);
  let d = await startDaemon({ root });
  t.after(async () => { await d.stop(); await d.cleanup(); });
  let s = await statusUntil(d, (x) => x.status === 'running');
  assert.equal(s.items, count);
  assert.equal(s.hashing, 0);
  await d.stop();
  assert.match(d.stderr(), line(count, 0, 0));

  d = await startDaemon({ root });
  s = await statusUntil(d, (x) => x.status === 'running');
  assert.equal(s.items, count);
  await d.stop();
  assert.match(d.stderr(), line(0, 0, count));

  await rm(join(d.stateDir, 'static-checksums.json'));
  d = await startDaemon({ root });
  s = await statusUntil(d, (x) => x.status === 'running');
  assert.equal(s.items, count);
  await d.stop();
  assert.match(d.stderr(), line(0, count, 0));
});
