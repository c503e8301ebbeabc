/**
 * SIGHUP reload on the real daemon: passim.conf is re-read, Cooldown / CarbonCost / MaxItemSize /
 * Metered apply live, static dirs are rescanned, a bad file keeps the old config, and keys that
 * need a restart are only warned about. Synchronised on the daemon's own log lines, never sleeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon, passim, makeRoot, type TestDaemon } from '../helpers/daemon.js';

const GiB = 1024 ** 3;

/** Resolves when a stderr line written after this call matches `re` (rejects after `ms`). */
function nextLog(d: TestDaemon, re: RegExp, ms = 10_000): Promise<string> {
  const from = d.stderr().length;
  return new Promise((resolve, reject) => {
    const check = () => {
      const lines = d.stderr().slice(from).split('\n');
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined) {
        d.proc.stderr?.off('data', check);
        clearTimeout(timer);
        // the listener order does not matter: d.stderr() is appended by an earlier listener
        resolve(hit);
      }
    };
    const timer = setTimeout(() => {
      d.proc.stderr?.off('data', check);
      reject(new Error(`no log line matching ${re} in time (exit ${d.proc.exitCode} ${d.proc.signalCode}); full stderr:\n${d.stderr()}`));
    }, ms);
    d.proc.stderr?.on('data', check);
  });
}

/** SIGHUP, then wait for the reload to finish (its "reloaded" or "keeping" line). */
async function hup(d: TestDaemon): Promise<string> {
  const from = d.stderr().length;
  const done = nextLog(d, /^(info: reloaded |error: reload: )/);
  d.proc.kill('SIGHUP');
  await done;
  return d.stderr().slice(from);
}

async function status(d: TestDaemon) {
  const r = await passim(['dump', '--json'], { env: { PASSIM_SOCKET: d.socket } });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: { status: string; carbonSaving: number; downloadSaving: number }; items: Array<{ basename: string; static: boolean }> };
}

async function publish(d: TestDaemon, bytes: number) {
  const file = join(d.root, `blob-${bytes}.bin`);
  await writeFile(file, randomBytes(bytes));
  return passim(['publish', file], { env: { PASSIM_SOCKET: d.socket } });
}

test('SIGHUP applies MaxItemSize, CarbonCost, Metered and Cooldown live; flags still win', async (t) => {
  const root = await makeRoot();
  const conf = join(root, 'config', 'passim.conf');
  await writeFile(conf, '[daemon]\nMaxItemSize=1000\nCarbonCost=1\n');
  // 1 GiB already served to peers (as upstream counts it: the sum of SHARE sizes in the audit log)
  await mkdir(join(root, 'state', 'log'), { recursive: true });
  await writeFile(join(root, 'state', 'log', 'audit.log'),
    `2024-01-01T00:00:00.000Z SHARE hash=${'ab'.repeat(32)},basename=x.bin,size=${GiB},ipaddr=10.0.0.9\n`);
  const d = await startDaemon({ root });
  t.after(async () => { await d.stop(); await d.cleanup(); });

  const before = await status(d);
  assert.equal(before.status.downloadSaving, GiB);
  assert.equal(before.status.carbonSaving, 1);
  assert.equal(before.status.status, 'running');
  const tooBig = await publish(d, 5000);
  assert.notEqual(tooBig.code, 0, 'MaxItemSize=1000 refuses 5000 bytes');

  // Port would need a restart, but --port on the command line wins over it: no warning for it
  await writeFile(conf, '[daemon]\nMaxItemSize=100000\nCarbonCost=2.5\nMetered=true\nCooldown=7\nPort=1\n');
  const log = await hup(d);
  assert.match(log, /info: reloaded .*passim\.conf: applied Cooldown=7, CarbonCost=2\.5, MaxItemSize=100000, Metered=true/);
  assert.doesNotMatch(log, /Port changed/);
  assert.match(log, /metered network: no longer advertising/);

  const after = await status(d);
  assert.equal(after.status.carbonSaving, 2.5, 'CarbonCost applies to the saving at once');
  assert.equal(after.status.status, 'disabled-metered');
  const fits = await publish(d, 5000);
  assert.equal(fits.code, 0, `MaxItemSize=100000 takes 5000 bytes: ${fits.stderr}`);

  // back to not metered
  await writeFile(conf, '[daemon]\nMaxItemSize=100000\nCarbonCost=2.5\nCooldown=7\n');
  assert.match(await hup(d), /applied Metered=false/);
  assert.equal((await status(d)).status.status, 'running');
});

test('SIGHUP with a bad passim.conf logs the error and keeps the running config', async (t) => {
  const root = await makeRoot();
  const conf = join(root, 'config', 'passim.conf');
  await writeFile(conf, '[daemon]\nMaxItemSize=1000\n');
  const d = await startDaemon({ root });
  t.after(async () => { await d.stop(); await d.cleanup(); });

  await writeFile(conf, '[daemon]\nMaxItemSize=100000\nCooldown=soon\n');
  const log = await hup(d);
  assert.match(log, /error: reload: .*passim\.conf.*Cooldown.*keeping the running configuration/);
  assert.equal(d.proc.exitCode, null, 'still running');
  // the valid MaxItemSize line of the bad file was not applied either
  assert.notEqual((await publish(d, 5000)).code, 0);
  assert.equal((await status(d)).status.status, 'running');

  // fixing the file and HUPing again applies it
  await writeFile(conf, '[daemon]\nMaxItemSize=100000\n');
  assert.match(await hup(d), /applied MaxItemSize=100000/);
  assert.equal((await publish(d, 5000)).code, 0);
});

test('SIGHUP warns about keys that need a restart and rescans static dirs', async (t) => {
  const d = await startDaemon();
  t.after(async () => { await d.stop(); await d.cleanup(); });
  const dir = join(d.root, 'static');
  await mkdir(dir);
  await writeFile(join(dir, 'mirror.iso'), randomBytes(2000));
  await mkdir(join(d.configDir, 'passim.d'));
  await writeFile(join(d.configDir, 'passim.d', 'mirror.conf'), `[passim]\nPath=${dir}\n`);
  await writeFile(join(d.configDir, 'passim.conf'), `[daemon]\nPath=${join(d.root, 'elsewhere')}\nMaxUploads=3\nIPv6=true\n`);

  const log = await hup(d);
  assert.match(log, /warn: reload: Path changed .*restart passim to apply it/);
  assert.match(log, /warn: reload: MaxUploads changed \(16 → 3\); restart/);
  assert.match(log, /warn: reload: IPv6 changed \(false → true\); restart/);
  assert.match(log, /no live setting changed; static dirs rescanned/);
  // the rescan ran before the "reloaded" line: the static file is listed now
  const items = (await status(d)).items;
  assert.ok(items.some((i) => i.basename === 'mirror.iso' && i.static), JSON.stringify(items));
  // still serving on the old store and port
  assert.equal(d.proc.exitCode, null);
});
