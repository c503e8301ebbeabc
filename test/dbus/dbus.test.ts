/**
 * The fwupd-compatible D-Bus interface against a real Store on a private dbus-daemon that
 * loads contrib/org.freedesktop.Passim.conf. Clients: dbus-next (in this process, root) and a
 * GDBus client in Python (test/dbus/gdbus_client.py, as libpassim does it), also run as `nobody`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import dbus from 'dbus-next';
import { Store } from '../../lib/store/store.js';
import type { StatusReply } from '../../lib/control/api.js';
import type { Logger } from '../../lib/core/logger.js';
import { startDbusService, fdPassingAvailable, type DbusService } from '../../lib/dbus/index.js';
import { startPrivateBus, type PrivateBus } from './private-bus.js';
import { requires, requiresRoot } from '../helpers/requires.js';

const NAME = 'org.freedesktop.Passim';
const IFACE = 'org.freedesktop.Passim';
const EXISTS = 'org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code2';
const NOT_FOUND = 'org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code1';
const INVALID_DATA = 'org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code35';
const ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied';
const INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs';
const MAX_ITEM_SIZE = 64 * 1024;

const PYTHON = '/usr/bin/python3';
const GDBUS_CLIENT = resolve(import.meta.dirname, 'gdbus_client.py');
const NO_DBUS = requires('dbus-daemon');
const NO_GI = requires('python3-gi');
const NO_NOBODY = requires('setpriv') || requiresRoot('running the GDBus client as nobody') ||
  (spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'true'], { stdio: 'ignore' }).status !== 0 && 'cannot switch to nobody with setpriv here');
const NO_FDS = !fdPassingAvailable() && 'needs usocket (fd passing), built by npm ci: apt-get install python3 make g++, then npm ci';
/** upstream's `passim` CLI (hughsie/passim), if the runner has one: it publishes through libpassim as fwupd does */
const UPSTREAM_CLIENT = process.env.PASSIM_UPSTREAM_CLIENT;

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

type Variant = InstanceType<typeof dbus.Variant>;
type Bus = InstanceType<typeof dbus.MessageBus>;
type Msg = InstanceType<typeof dbus.Message>;

interface GdbusResult {
  uid: number;
  ok?: boolean;
  reply?: number;
  /** publish-fdnum: the handle value sent (the fd's number in the client) */
  handle?: number;
  props?: Record<string, { type: string; value: unknown } | null>;
  items?: Array<{ values: Record<string, unknown>; types: Record<string, string> }>;
  error?: { domain: string; code: number; remote: string | null; message: string; is_io_exists: boolean; is_io_not_found: boolean; is_access_denied: boolean; is_invalid_args: boolean };
}

/**
 * The client script where `nobody` can read it: the checkout may sit in a directory only its owner
 * can enter (a clone under /root, a mktemp dir), so a world-readable copy in a temp dir of its own.
 */
let nobodyClient: Promise<string> | undefined;
function clientForNobody(): Promise<string> {
  nobodyClient ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'passim-gdbus-client-'));
    await chmod(dir, 0o755);
    const p = join(dir, 'gdbus_client.py');
    await writeFile(p, readFileSync(GDBUS_CLIENT));
    await chmod(p, 0o644);
    return p;
  })();
  return nobodyClient;
}
after(async () => {
  const p = await nobodyClient?.catch(() => undefined);
  if (p) await rm(resolve(p, '..'), { recursive: true, force: true });
});

async function gdbus(address: string, asNobody: boolean, ...args: string[]): Promise<GdbusResult> {
  const cmd = asNobody ? 'setpriv' : PYTHON;
  const argv = asNobody
    ? ['--reuid=nobody', '--regid=nogroup', '--clear-groups', PYTHON, await clientForNobody(), address, ...args]
    : [GDBUS_CLIENT, address, ...args];
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, argv, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`gdbus_client ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      try {
        resolvePromise(JSON.parse(stdout) as GdbusResult);
      } catch {
        reject(new Error(`gdbus_client printed no JSON: ${stdout}\n${stderr}`));
      }
    });
  });
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (m: string) => { lines.push(`${level}: ${m}`); };
  return { lines, error: push('error'), warn: push('warn'), info: push('info'), debug: () => {} };
}

async function connectClient(address: string): Promise<Bus> {
  const client = dbus.sessionBus({ busAddress: address, negotiateUnixFd: true } as Parameters<typeof dbus.sessionBus>[0]);
  await once(client, 'connect');
  return client;
}

function call(client: Bus, member: string, signature = '', body: unknown[] = [], iface = IFACE): Promise<Msg | null> {
  return client.call(new dbus.Message({ destination: NAME, path: '/', interface: iface, member, signature, body }));
}

async function callError(p: Promise<unknown>): Promise<{ type: string; text: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { type?: string; text?: string };
    assert.equal(typeof e.type, 'string', `expected a D-Bus error, got ${String(err)}`);
    return { type: e.type!, text: e.text ?? '' };
  }
  assert.fail('the call succeeded but an error was expected');
}

/** Waits for the next signal matching member (and interface) that the client receives. */
function nextSignal(client: Bus, iface: string, member: string): Promise<Msg> {
  return new Promise((resolvePromise) => {
    const onMessage = (msg: Msg) => {
      if (msg.type === dbus.MessageType.SIGNAL && msg.interface === iface && msg.member === member && msg.path === '/') {
        client.removeListener('message', onMessage);
        resolvePromise(msg);
      }
    };
    client.on('message', onMessage);
  });
}

async function addMatch(client: Bus, rule: string): Promise<void> {
  await client.call(new dbus.Message({
    destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus',
    member: 'AddMatch', signature: 's', body: [rule],
  }));
}

async function openFdCount(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

describe('D-Bus org.freedesktop.Passim', { skip: NO_DBUS }, () => {
  let bus: PrivateBus;
  let stateDir: string;
  let filesDir: string;
  let store: Store;
  let svc: DbusService;
  let client: Bus;
  let status: StatusReply;
  const log = recordingLogger();

  const file = async (name: string, content: string | Buffer) => {
    const p = join(filesDir, name);
    await writeFile(p, content);
    await chmod(p, 0o644);
    return p;
  };

  before(async () => {
    bus = await startPrivateBus();
    stateDir = await mkdtemp(join(tmpdir(), 'passim-dbus-state-'));
    filesDir = await mkdtemp(join(tmpdir(), 'passim-dbus-files-'));
    await chmod(filesDir, 0o755);
    store = new Store({ stateDir, maxItemSize: MAX_ITEM_SIZE, logger: log });
    await store.load();
    status = {
      version: '9.8.7', status: 'running', port: 27500, name: 'Passim-1A2B',
      uri: 'https://localhost:27500/', downloadSaving: 1234, carbonSaving: 0.25, items: 0,
    };
    const started = await startDbusService({ store, status: () => status, bus: bus.address, logger: log });
    assert.ok(started, `the service did not start: ${log.lines.join('\n')}`);
    svc = started;
    client = await connectClient(bus.address);
  });

  after(async () => {
    client?.disconnect();
    await svc?.close();
    await store?.close();
    await bus?.close();
    await rm(stateDir, { recursive: true, force: true });
    await rm(filesDir, { recursive: true, force: true });
  });

  it('owns the name and serves the properties with upstream types', async () => {
    const reply = await call(client, 'GetAll', 's', [IFACE], 'org.freedesktop.DBus.Properties');
    const props = reply!.body[0] as Record<string, Variant>;
    const seen = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, [v.signature, v.value]]));
    assert.deepEqual(seen, {
      DaemonVersion: ['s', '9.8.7'],
      Uri: ['s', 'https://localhost:27500/'],
      Name: ['s', 'Passim-1A2B'],
      Status: ['u', 3],
      DownloadSaving: ['t', 1234n],
      CarbonSaving: ['d', 0.25],
    });
  });

  it('maps the status string to upstream PassimStatus numbers', async () => {
    const get = async () => ((await call(client, 'Get', 'ss', [IFACE, 'Status'], 'org.freedesktop.DBus.Properties'))!.body[0] as Variant).value;
    try {
      status.status = 'disabled-metered';
      assert.equal(await get(), 4);
      status.status = 'loading';
      assert.equal(await get(), 2);
      status.status = 'something-else';
      assert.equal(await get(), 0);
    } finally {
      status.status = 'running';
    }
  });

  describe('Publish / GetItems / Unpublish (dbus-next client, root)', { skip: NO_FDS }, () => {
    const content = 'firmware blob for dbus test\n';
    const hash = sha256(content);

    it('publishes a file passed by fd with the given attributes', async () => {
      const p = await file('fw.cab', content);
      const fd = openSync(p, 'r');
      try {
        await call(client, 'Publish', 'ha{sv}', [fd, {
          filename: new dbus.Variant('s', 'fw.cab'),
          'max-age': new dbus.Variant('u', 600),
          'share-limit': new dbus.Variant('u', 9),
        }]);
      } finally {
        closeSync(fd);
      }
      const item = store.get(hash);
      assert.ok(item, 'the item is in the store');
      assert.equal(item.basename, 'fw.cab');
      assert.equal(item.maxAge, 600);
      assert.equal(item.shareLimit, 9);
      assert.equal(item.nextReboot, false);
      assert.equal(await readFile(item.path, 'utf8'), content);
      const argv0 = readFileSync('/proc/self/cmdline', 'utf8').split('\0')[0]!;
      assert.equal(item.cmdline, basename(argv0), 'the publisher command line is recorded as upstream does');
    });

    it('answers a second Publish of the same bytes with the exact GDBus "exists" error name', async () => {
      const p = await file('fw-again.cab', content);
      const fd = openSync(p, 'r');
      try {
        const err = await callError(call(client, 'Publish', 'ha{sv}', [fd, { filename: new dbus.Variant('s', 'fw-again.cab') }]));
        assert.equal(err.type, EXISTS);
      } finally {
        closeSync(fd);
      }
      assert.equal(store.list().filter((i) => i.hash === hash).length, 1);
    });

    it('lists the item in GetItems with upstream keys and types', async () => {
      const reply = await call(client, 'GetItems');
      assert.equal(reply!.signature, 'aa{sv}');
      const items = reply!.body[0] as Array<Record<string, Variant>>;
      const entry = items.find((i) => i.hash?.value === hash);
      assert.ok(entry, 'the published item is listed');
      const types = Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, v.signature]));
      assert.deepEqual(types, {
        hash: 's', filename: 's', basename: 's', cmdline: 's', 'max-age': 'u', 'share-limit': 'u',
        'share-count': 'u', size: 't', flags: 't', ctime: 'x',
      });
      assert.equal(entry.filename!.value, 'fw.cab');
      assert.equal(entry['max-age']!.value, 600);
      assert.equal(entry['share-limit']!.value, 9);
      assert.equal(entry['share-count']!.value, 0);
      assert.equal(entry.size!.value, BigInt(Buffer.byteLength(content)));
      assert.equal(entry.flags!.value, 0n);
      const created = store.get(hash)!.created;
      assert.equal(entry.ctime!.value, BigInt(Math.floor(created / 1000)));
    });

    it('rejects a basename with a path, and share-count >= share-limit, as InvalidArgs', async () => {
      const p = await file('other.bin', 'other bytes\n');
      for (const attrs of [
        { filename: new dbus.Variant('s', '../../etc/evil') },
        { filename: new dbus.Variant('s', 'ok.bin'), 'share-limit': new dbus.Variant('u', 0) },
        { filename: new dbus.Variant('s', 'ok.bin'), 'share-count': new dbus.Variant('u', 5), 'share-limit': new dbus.Variant('u', 5) },
        { 'max-age': new dbus.Variant('u', 10) },
        { filename: new dbus.Variant('u', 7) },
      ]) {
        const fd = openSync(p, 'r');
        try {
          const err = await callError(call(client, 'Publish', 'ha{sv}', [fd, attrs]));
          assert.equal(err.type, INVALID_ARGS, `attrs ${JSON.stringify(Object.keys(attrs))}: ${err.text}`);
        } finally {
          closeSync(fd);
        }
      }
      assert.equal(store.get(sha256('other bytes\n')), undefined);
    });

    it('refuses an item over MaxItemSize like upstream (G_IO_ERROR_INVALID_DATA)', async () => {
      const big = Buffer.alloc(MAX_ITEM_SIZE + 1, 0x61);
      const p = await file('big.bin', big);
      const fd = openSync(p, 'r');
      try {
        const err = await callError(call(client, 'Publish', 'ha{sv}', [fd, { filename: new dbus.Variant('s', 'big.bin') }]));
        assert.equal(err.type, INVALID_DATA);
      } finally {
        closeSync(fd);
      }
      assert.equal(store.get(sha256(big)), undefined);
    });

    it('Unpublish removes the item; a second Unpublish is G_IO_ERROR_NOT_FOUND; a bad hash is InvalidArgs', async () => {
      const removed = nextSignal(client, IFACE, 'Changed');
      await addMatch(client, `type='signal',interface='${IFACE}',member='Changed'`);
      await call(client, 'Unpublish', 's', [hash]);
      assert.equal(store.get(hash), undefined);
      await removed; // the store's 'removed' event reaches clients as Changed
      assert.equal((await callError(call(client, 'Unpublish', 's', [hash]))).type, NOT_FOUND);
      assert.equal((await callError(call(client, 'Unpublish', 's', ['not-a-hash']))).type, INVALID_ARGS);
    });
  });

  describe('as fwupd sees it (GDBus client)', { skip: NO_GI || NO_FDS }, () => {
    it('reads the properties through a GDBusProxy', async () => {
      const r = await gdbus(bus.address, false, 'props');
      assert.deepEqual(r.props, {
        DaemonVersion: { type: 's', value: '9.8.7' },
        Uri: { type: 's', value: 'https://localhost:27500/' },
        Name: { type: 's', value: 'Passim-1A2B' },
        Status: { type: 'u', value: 3 },
        DownloadSaving: { type: 't', value: 1234 },
        CarbonSaving: { type: 'd', value: 0.25 },
      });
    });

    it('publishes with next-reboot; a repeat matches G_IO_ERROR_EXISTS as fwupd checks it', async () => {
      const content = 'next reboot payload\n';
      const p = await file('nr.bin', content);
      const first = await gdbus(bus.address, false, 'publish', p, 'nr.bin', '3600', '50', '2');
      assert.equal(first.error, undefined, JSON.stringify(first.error));
      const item = store.get(sha256(content));
      assert.ok(item);
      assert.equal(item.nextReboot, true);
      assert.equal(item.disabled, true);
      assert.equal(item.shareLimit, 50);
      assert.equal(item.cmdline, 'python3');

      const again = await gdbus(bus.address, false, 'publish', p, 'nr.bin', '3600', '50');
      assert.equal(again.error?.remote, EXISTS);
      assert.equal(again.error?.domain, 'g-io-error-quark');
      assert.equal(again.error?.is_io_exists, true);

      const listed = await gdbus(bus.address, false, 'items');
      const entry = listed.items!.find((i) => i.values.hash === sha256(content));
      assert.ok(entry);
      assert.equal(entry.values.filename, 'nr.bin');
      assert.equal(entry.values.flags, 3, 'disabled | next-reboot');
      assert.equal(entry.types.ctime, 'x');
    });

    it('publishes from the read end of a pipe', async () => {
      const r = await gdbus(bus.address, false, 'publish-pipe', 'streamed through a pipe', 'piped.txt');
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      const item = store.get(sha256('streamed through a pipe'));
      assert.ok(item);
      assert.equal(await readFile(item.path, 'utf8'), 'streamed through a pipe');
    });

    it('gives concurrent Publish calls each their own fd', async () => {
      const r = await gdbus(bus.address, false, 'publish-many', '20', 'concurrent');
      assert.deepEqual((r as GdbusResult & { errors: unknown[] }).errors, new Array(20).fill(null));
      for (let i = 0; i < 20; i++) {
        const item = store.get(sha256(`concurrent ${i}\n`));
        assert.ok(item, `item ${i} is in the store`);
        assert.equal(item.basename, `many-${i}.txt`, 'the bytes belong to the call that named them');
      }
    });

    it('publishes when the handle is the fd number, as libpassim (fwupd) sends it, like upstream', async () => {
      const content = 'published the libpassim way\n';
      const p = await file('libpassim.cab', content);
      const r = await gdbus(bus.address, false, 'publish-fdnum', p, 'libpassim.cab');
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      assert.ok(r.handle! >= 1, `the handle ${r.handle} is not a valid index into a one-fd list`);
      const item = store.get(sha256(content));
      assert.ok(item, 'the item is in the store');
      assert.equal(item.basename, 'libpassim.cab');
      assert.equal(await readFile(item.path, 'utf8'), content);
    });

    it('with several fds attached, takes the one the handle indexes', async () => {
      const paths = await Promise.all(['zero', 'one', 'two'].map((n) => file(`idx-${n}.bin`, `index ${n}\n`)));
      const r = await gdbus(bus.address, false, 'publish-handle', '2', 'idx.bin', ...paths);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      const item = store.get(sha256('index two\n'));
      assert.ok(item, 'the fd at index 2 was published');
      assert.equal(item.basename, 'idx.bin');
      assert.equal(store.get(sha256('index zero\n')), undefined);
      assert.equal(store.get(sha256('index one\n')), undefined);
    });

    it('with several fds attached, answers an out-of-range handle with InvalidArgs naming it', async () => {
      const paths = await Promise.all(['a', 'b'].map((n) => file(`oor-${n}.bin`, `out of range ${n}\n`)));
      const r = await gdbus(bus.address, false, 'publish-handle', '7', 'oor.bin', ...paths);
      assert.equal(r.error?.remote, INVALID_ARGS);
      assert.match(r.error!.message, /invalid handle: 7 is not an index into the 2 file descriptors/);
      assert.equal(store.get(sha256('out of range a\n')), undefined);
      assert.equal(store.get(sha256('out of range b\n')), undefined);
    });

    it('answers a handle without an attached fd with InvalidArgs and keeps running', async () => {
      const r = await gdbus(bus.address, false, 'publish-nofd', 'nofd.bin');
      assert.equal(r.error?.remote, INVALID_ARGS);
      const after = await gdbus(bus.address, false, 'items');
      assert.ok(Array.isArray(after.items), 'the daemon still answers');
    });

    it('closes every fd a caller sends that it does not keep', async () => {
      await gdbus(bus.address, false, 'items');
      const before = await openFdCount();
      const p = await file('denied.bin', 'never stored\n');
      await gdbus(bus.address, false, 'getitems-with-fds', '5');
      await gdbus(bus.address, false, 'publish', p, '../bad', '60', '1');
      await gdbus(bus.address, false, 'publish-handle', '5', 'oor.bin', p, p);
      if (!NO_NOBODY) await gdbus(bus.address, true, 'publish', p, 'denied.bin', '60', '1');
      await gdbus(bus.address, false, 'items'); // one more round trip: earlier fds are settled
      assert.equal(await openFdCount(), before);
    });
  });

  // upstream's own CLI (hughsie/passim, built outside this repo): libpassim exactly as fwupd links it
  describe('driven by upstream\'s passim client', { skip: UPSTREAM_CLIENT ? false : 'set PASSIM_UPSTREAM_CLIENT to upstream\'s `passim` binary to run' }, () => {
    const upstream = (...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolvePromise) => {
      execFile(UPSTREAM_CLIENT!, args, { timeout: 60_000, env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: bus.address, LANG: 'C' } },
        (err, stdout, stderr) => resolvePromise({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });

    it('status, publish, publish again ("already published"), unpublish', async () => {
      const st = await upstream('status');
      assert.equal(st.code, 0, st.stderr);
      assert.match(st.stdout, /Name:\s+Passim-1A2B/);
      assert.match(st.stdout, /Status:\s+Running/);

      const content = Buffer.from('published by upstream\'s client\n');
      const p = await file('upstream-client.cab', content);
      const hash = sha256(content);
      const first = await upstream('publish', p);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, new RegExp(`Published: ${hash} upstream-client\\.cab`));
      const item = store.get(hash);
      assert.ok(item, 'the item is in the store');
      assert.equal(await readFile(item.path, 'utf8'), content.toString());

      const again = await upstream('publish', p);
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, new RegExp(`${hash}.*already`));

      const listed = await upstream('status');
      assert.match(listed.stdout, new RegExp(`${hash}\n.*Filename:\\s+upstream-client\\.cab`));

      const un = await upstream('unpublish', hash);
      assert.equal(un.code, 0, un.stderr);
      assert.equal(store.get(hash), undefined);
      const unAgain = await upstream('unpublish', hash);
      assert.notEqual(unAgain.code, 0);
    });
  });

  describe('as an unprivileged user', { skip: NO_GI || NO_NOBODY }, () => {
    it('may read properties and GetItems', async () => {
      const props = await gdbus(bus.address, true, 'props');
      assert.equal(props.uid, 65534);
      assert.equal(props.props?.Status?.value, 3);
      const items = await gdbus(bus.address, true, 'items');
      assert.equal(items.error, undefined, JSON.stringify(items.error));
      assert.equal(items.items!.length, store.list().length);
    });

    it('gets AccessDenied from Publish and Unpublish, and nothing changes', async () => {
      const content = 'nobody tries to publish\n';
      const p = await file('nobody.bin', content);
      const countBefore = store.list().length;
      const pub = await gdbus(bus.address, true, 'publish', p, 'nobody.bin', '60', '1');
      assert.equal(pub.uid, 65534);
      assert.equal(pub.error?.remote, ACCESS_DENIED, JSON.stringify(pub.error));
      assert.equal(store.get(sha256(content)), undefined);

      const victim = store.list()[0];
      assert.ok(victim, 'an item exists to try to remove');
      const unpub = await gdbus(bus.address, true, 'unpublish', victim.hash);
      assert.equal(unpub.error?.remote, ACCESS_DENIED);
      assert.ok(store.get(victim.hash), 'the item is still there');
      assert.equal(store.list().length, countBefore);
    });

    it('may not own the name (bus policy)', async () => {
      const r = await gdbus(bus.address, true, 'own');
      assert.equal(r.error?.remote, ACCESS_DENIED);
    });
  });

  it('notify() emits PropertiesChanged with what changed, and Changed', async () => {
    await addMatch(client, `type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path='/'`);
    await addMatch(client, `type='signal',interface='${IFACE}',member='Changed'`);
    const propsChanged = nextSignal(client, 'org.freedesktop.DBus.Properties', 'PropertiesChanged');
    const changed = nextSignal(client, IFACE, 'Changed');
    status.status = 'disabled-metered';
    status.downloadSaving = 99999;
    try {
      svc.notify();
      const msg = await propsChanged;
      await changed;
      const [iface, values, invalidated] = msg.body as [string, Record<string, Variant>, string[]];
      assert.equal(iface, IFACE);
      assert.deepEqual(Object.keys(values).sort(), ['DownloadSaving', 'Status']);
      assert.equal(values.Status!.value, 4);
      assert.equal(values.DownloadSaving!.value, 99999n);
      assert.deepEqual(invalidated, []);
    } finally {
      status.status = 'running';
      status.downloadSaving = 1234;
    }
  });
});

describe('D-Bus when it cannot run', { skip: NO_DBUS }, () => {
  let stateDir: string;
  let store: Store;
  const status = (): StatusReply => ({ version: '1', status: 'running', port: 1, name: 'n', uri: 'u', downloadSaving: 0, carbonSaving: 0, items: 0 });

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'passim-dbus-nobus-'));
    store = new Store({ stateDir });
    await store.load();
  });
  after(async () => {
    await store.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('returns undefined and logs one line when there is no bus', async () => {
    const log = recordingLogger();
    const svc = await startDbusService({ store, status, bus: `unix:path=${join(stateDir, 'no-such-bus')}`, logger: log });
    assert.equal(svc, undefined);
    assert.equal(log.lines.length, 1, log.lines.join('\n'));
    assert.match(log.lines[0]!, /not on .*no-such-bus.*control socket only/);
  });

  it('returns undefined and logs one line when another process holds the name', async () => {
    const bus = await startPrivateBus();
    const holder = await connectClient(bus.address);
    try {
      assert.equal(await holder.requestName(NAME, dbus.NameFlag.DO_NOT_QUEUE), dbus.RequestNameReply.PRIMARY_OWNER);
      const log = recordingLogger();
      const svc = await startDbusService({ store, status, bus: bus.address, logger: log });
      assert.equal(svc, undefined);
      assert.equal(log.lines.length, 1, log.lines.join('\n'));
      assert.match(log.lines[0]!, /cannot own org\.freedesktop\.Passim/);
    } finally {
      holder.disconnect();
      await bus.close();
    }
  });
});
