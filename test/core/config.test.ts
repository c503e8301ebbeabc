import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDaemonConfig, loadDaemonConfig, DEFAULT_CONFIG } from '../../lib/core/config.js';
import { parseKeyFile } from '../../lib/core/keyfile.js';
import { ConfigError } from '../../lib/core/errors.js';

test('upstream passim.conf keys parse into typed values', () => {
  const { config, warnings } = parseDaemonConfig(
    '# comment\n[daemon]\nPort=27501\nIPv6=true\nPath=/srv/passim/data\nMaxItemSize=2048\nCarbonCost=0.5\nCooldown=7200\n' +
      'Bind=127.0.0.1;10.0.0.1\nLocalhostOnly=false\nMaxUploads=4\nInterfaces=eth0,wlan0\n',
    '/etc/passim.conf',
  );
  assert.deepEqual(warnings, []);
  assert.equal(config.port, 27501);
  assert.equal(config.ipv6, true);
  assert.equal(config.path, '/srv/passim/data');
  assert.equal(config.maxItemSize, 2048);
  assert.equal(config.carbonCost, 0.5);
  assert.equal(config.cooldown, 7200);
  assert.deepEqual(config.bind, ['127.0.0.1', '10.0.0.1']);
  assert.equal(config.maxUploads, 4);
  assert.deepEqual(config.interfaces, ['eth0', 'wlan0']);
});

test('an empty file gives the defaults', () => {
  const { config } = parseDaemonConfig('', 'x.conf');
  assert.equal(config.port, DEFAULT_CONFIG.port);
  assert.equal(config.cooldown, 3600);
  assert.equal(config.maxItemSize, 104857600);
});

test('a bad value names file, line and key', () => {
  const text = '[daemon]\n\nPort=99999\n';
  assert.throws(() => parseDaemonConfig(text, '/etc/passim.conf'), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.line, 3);
    assert.equal(err.key, 'Port');
    assert.match(err.message, /^\/etc\/passim\.conf:3: key "Port"/);
    assert.match(err.message, /99999/);
    return true;
  });
  for (const bad of ['IPv6=maybe', 'Cooldown=-1', 'CarbonCost=abc', 'Bind=not-an-ip', 'Path=relative/dir', 'MaxItemSize=0', 'Port=']) {
    assert.throws(() => parseDaemonConfig(`[daemon]\n${bad}\n`, 'f'), ConfigError, bad);
  }
});

test('unknown keys and groups are warnings, not errors', () => {
  const { config, warnings } = parseDaemonConfig('[daemon]\nPort=1234\nColour=blue\n[other]\nA=b\n', 'f.conf');
  assert.equal(config.port, 1234);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /f\.conf:3: unknown key "Colour"/);
});

test('keyfile syntax errors: missing group, no "=", duplicate key, bad escape', () => {
  assert.throws(() => parseKeyFile('Port=1\n', 'f'), /outside any \[group\]/);
  assert.throws(() => parseKeyFile('[daemon]\nwhat\n', 'f'), /f:2: expected "Key=value"/);
  assert.throws(() => parseKeyFile('[daemon]\nA=1\nA=2\n', 'f'), /f:3: duplicate key "A"/);
  assert.throws(() => parseKeyFile('[daemon]\nA=\\q\n', 'f'), /invalid escape/);
  assert.throws(() => parseKeyFile('[dae\nA=1', 'f'), /invalid group header/);
  const kf = parseKeyFile('[passim]\r\nPath = /srv/dir\\swith space \r\n', 'f');
  assert.equal(kf.get('passim')?.get('Path')?.value, '/srv/dir with space ');
});

test('loadDaemonConfig: missing default file → defaults; missing explicit file → error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'passim-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = await loadDaemonConfig(join(dir, 'nope.conf'));
  assert.equal(r.found, false);
  assert.equal(r.config.port, 27500);
  await assert.rejects(loadDaemonConfig(join(dir, 'nope.conf'), true), ConfigError);
  await writeFile(join(dir, 'p.conf'), '[daemon]\nPort=4000\n');
  assert.equal((await loadDaemonConfig(join(dir, 'p.conf'))).config.port, 4000);
});
