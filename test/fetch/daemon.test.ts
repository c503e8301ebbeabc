/**
 * fetch with a real local daemon (`passim serve`, mDNS pinned to lo by the helper): what fetch
 * gets from the CDN is published to the daemon, and the next fetch gets it from the daemon
 * ('local') over its HTTPS port. Peers come from an injected browse, so fetch never multicasts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../../lib/control/client.js';
import { fetchFile } from '../../lib/fetch/fetch.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { fakeBrowse, honest, makeCert, rmDir, sha256, startServer, tempDir, type KeyCert, type TestServer } from './helpers.js';

const DATA = randomBytes(300_000);
const HASH = sha256(DATA);
const NAME = 'metadata.xml.zst';

describe('fetch with a real local daemon', () => {
  let daemon: TestDaemon;
  let kc: KeyCert;
  let cdn: TestServer;
  const dirs: string[] = [];

  before(async () => {
    daemon = await startDaemon();
    kc = await makeCert();
    cdn = await startServer(kc, honest(DATA));
  });

  after(async () => {
    await cdn?.close();
    await daemon?.stop();
    await daemon?.cleanup();
    for (const d of dirs) rmDir(d);
  });

  it('publishes a CDN download to the daemon, then serves the next fetch from it', async () => {
    const d1 = tempDir();
    dirs.push(d1);
    const fb1 = fakeBrowse([]);
    const r1 = await fetchFile({
      name: NAME, sha256: HASH, cdn: [cdn.url(`/${NAME}`)], output: join(d1, NAME), socketPath: daemon.socket,
      browse: fb1.browse, timeoutMs: 50, cdnCa: kc.cert, maxAge: 3600, shareLimit: 7,
    });
    assert.equal(r1.source, 'cdn');
    assert.equal(r1.published, true);
    assert.deepEqual(fb1.calls[0].opts?.excludeInstances, [daemon.name], 'our own daemon is not a peer');

    const client = new ControlClient(daemon.socket);
    try {
      const item = (await client.items()).find((i) => i.hash === HASH);
      assert.ok(item, 'the daemon holds the fetched file');
      assert.equal(item.basename, NAME);
      assert.equal(item.size, DATA.length);
      assert.equal(item.maxAge, 3600);
      assert.equal(item.shareLimit, 7);
    } finally {
      await client.close();
    }

    const d2 = tempDir();
    dirs.push(d2);
    const before = cdn.requests.length;
    const r2 = await fetchFile({
      name: NAME, sha256: HASH, cdn: [cdn.url(`/${NAME}`)], output: join(d2, NAME), socketPath: daemon.socket,
      browse: fakeBrowse([]).browse, timeoutMs: 50, cdnCa: kc.cert,
    });
    assert.equal(r2.source, 'local');
    assert.equal(r2.published, false, 'not published back to where it came from');
    assert.equal(cdn.requests.length, before, 'the CDN was not asked again');
    assert.deepEqual(readFileSync(join(d2, NAME)), DATA);
  });
});
