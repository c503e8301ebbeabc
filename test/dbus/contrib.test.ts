/**
 * contrib/: the systemd unit passes `systemd-analyze verify` and keeps a low exposure score,
 * sysusers/tmpfiles entries apply in a scratch root, and the firewalld and D-Bus files parse.
 * (The D-Bus policy is also loaded by the private bus in dbus.test.ts and enforced there.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { requires } from '../helpers/requires.js';

const CONTRIB = resolve(import.meta.dirname, '../../contrib');
const BIN = resolve(import.meta.dirname, '../../bin/passim.js');
/** most exposure systemd-analyze may give the unit (0 = fully locked down, 10 = unprotected) */
const MAX_EXPOSURE = 2.0;

describe('contrib/passim.service', { skip: requires('systemd-analyze') }, () => {
  let dir: string;
  let unit: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'passim-unit-'));
    // the unit as shipped, but pointing at this checkout's executable (verify checks ExecStart exists)
    const text = await readFile(join(CONTRIB, 'passim.service'), 'utf8');
    assert.match(text, /^ExecStart=\/usr\/bin\/passim serve$/m);
    unit = join(dir, 'passim.service');
    await writeFile(unit, text.replace(/^ExecStart=\/usr\/bin\/passim /m, `ExecStart=${BIN} `));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes systemd-analyze verify', () => {
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.doesNotMatch(`${r.stdout}${r.stderr}`, /Unknown|Failed|Invalid|ignoring/i);
  });

  it(`has an exposure level of at most ${MAX_EXPOSURE} (systemd-analyze security --offline)`, (t) => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', unit], { encoding: 'utf8' });
    const m = /Overall exposure level for passim\.service: ([0-9.]+)/.exec(r.stdout);
    if (!m && /unrecognized option|--offline/.test(r.stderr)) {
      t.skip('this systemd-analyze has no --offline');
      return;
    }
    assert.ok(m, `no exposure level in the output:\n${r.stdout}${r.stderr}`);
    const level = Number(m[1]);
    t.diagnostic(`exposure level ${level}`);
    assert.ok(level <= MAX_EXPOSURE, `exposure ${level} > ${MAX_EXPOSURE}`);
  });

  it('keeps W+X memory allowed for V8 and runs unprivileged', async () => {
    const text = await readFile(join(CONTRIB, 'passim.service'), 'utf8');
    assert.match(text, /^MemoryDenyWriteExecute=no$/m);
    assert.match(text, /^User=passim$/m);
    assert.match(text, /^CapabilityBoundingSet=$/m);
    assert.match(text, /^Environment=PASSIM_STATE_DIR=\/var\/lib\/passim$/m);
  });
});

describe('contrib/passim.sysusers and passim.tmpfiles', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'passim-sysroot-'));
    await mkdir(join(root, 'etc'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates the passim user and group', { skip: requires('systemd-sysusers') }, async () => {
    const r = spawnSync('systemd-sysusers', [`--root=${root}`, join(CONTRIB, 'passim.sysusers')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(await readFile(join(root, 'etc/passwd'), 'utf8'), /^passim:x:\d+:\d+:[^:]*:\/var\/lib\/passim:/m);
    assert.match(await readFile(join(root, 'etc/group'), 'utf8'), /^passim:x:\d+:/m);
  });

  it('creates the state and runtime directories', { skip: requires('systemd-sysusers', 'systemd-tmpfiles') }, async () => {
    const r = spawnSync('systemd-tmpfiles', ['--create', `--root=${root}`, join(CONTRIB, 'passim.tmpfiles')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const d of ['var/lib/passim', 'run/passim']) {
      const s = await stat(join(root, d));
      assert.ok(s.isDirectory(), d);
      assert.equal(s.mode & 0o777, 0o750, d);
    }
  });
});

describe('contrib XML files', { skip: requires('python3') }, () => {
  const xml = (file: string, script: string) =>
    spawnSync('python3', ['-c', `import sys, xml.etree.ElementTree as ET\nroot = ET.parse(sys.argv[1]).getroot()\n${script}`, join(CONTRIB, file)], { encoding: 'utf8' });

  it('firewalld service opens tcp 27500 and mDNS udp 5353', () => {
    const r = xml('passim.firewalld.xml', `print(root.tag, sorted(p.get('protocol') + '/' + p.get('port') for p in root.findall('port')))`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "service ['tcp/27500', 'udp/5353']");
  });

  it('D-Bus policy lets root and passim own the name', () => {
    const r = xml('org.freedesktop.Passim.conf', `print(sorted(p.get('user') for p in root.findall('policy') if p.find("allow[@own='org.freedesktop.Passim']") is not None))`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "['passim', 'root']");
  });
});
