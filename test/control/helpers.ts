/** A real Store plus a control server on a Unix socket in a temp dir, torn down by the test. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Store } from '../../lib/store/store.js';
import { startControlServer, type ControlServer } from '../../lib/control/server.js';
import type { StatusReply } from '../../lib/control/api.js';

export interface Harness {
  dir: string;
  stateDir: string;
  socketPath: string;
  store: Store;
  server: ControlServer;
  metered: boolean[];
}

export async function tempDir(t: TestContext): Promise<string> {
  // short: a Unix socket path must fit in 107 bytes
  const dir = await mkdtemp(join(tmpdir(), 'pctl-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export function statusOf(store: Store): StatusReply {
  const s = store.savings();
  return {
    version: '0.0.0-test',
    status: 'running',
    port: 27500,
    name: 'Passim-TEST',
    uri: 'https://localhost:27500/',
    downloadSaving: s.downloadSaving,
    carbonSaving: s.carbonSaving,
    items: store.list().length,
  };
}

export async function startHarness(t: TestContext, opts: { maxItemSize?: number; socketName?: string } = {}): Promise<Harness> {
  const dir = await tempDir(t);
  const stateDir = join(dir, 'state');
  const store = new Store({ stateDir, maxItemSize: opts.maxItemSize });
  await store.load();
  const socketPath = join(dir, opts.socketName ?? 'passim.sock');
  const metered: boolean[] = [];
  const server = await startControlServer({
    socketPath,
    store,
    status: () => statusOf(store),
    setMetered: (on) => {
      metered.push(on);
    },
  });
  t.after(async () => {
    await server.close();
    await store.close();
  });
  return { dir, stateDir, socketPath, store, server, metered };
}
