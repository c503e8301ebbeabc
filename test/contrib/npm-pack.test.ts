/**
 * npm packaging: `npm pack` holds only runtime files (built dist/, bin, completions, man, contrib,
 * README, package.json), and the tarball installs globally into a temp prefix with an empty npm
 * cache and no network — its dependencies resolve from a registry on loopback serving what `npm ci`
 * installed (test/contrib/local-registry.ts) — and its `passim --version` runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile, rm, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { REPO, tempDir } from './helpers.js';
import { startLocalRegistry } from './local-registry.js';

const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { name: string; version: string; scripts: Record<string, string> };

test('npm pack --dry-run: runtime files only, dist built', async () => {
  assert.match(pkg.scripts.prepare ?? pkg.scripts.prepack ?? '', /tsc -p tsconfig\.json/, 'dist is built when packing');
  const r = await execa('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO, reject: false });
  assert.equal(r.exitCode, 0, String(r.stderr));
  const [info] = JSON.parse(String(r.stdout)) as Array<{ files: Array<{ path: string; mode: number }> }>;
  const files = info!.files.map((f) => f.path);
  for (const want of ['package.json', 'README.md', 'bin/passim.js', 'dist/cli/main.js', 'dist/daemon/daemon.js', 'man/passim.1', 'man/passim.conf.5',
    'completions/passim.bash', 'completions/_passim', 'completions/passim.fish', 'contrib/passim.service', 'contrib/apt/apt-passim',
    'contrib/dnf/dnf-passim', 'contrib/ci/passim-ci-fetch', 'contrib/ci/action.yml']) {
    assert.ok(files.includes(want), `${want} in the package`);
  }
  const bad = files.filter((f) => /^(test|lib|bench|node_modules|\.ci|\.git)\//.test(f) || /(^|\/)tsconfig[^/]*\.json$/.test(f) ||
    (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f === 'package-lock.json');
  assert.deepEqual(bad, [], 'no sources, tests, benchmarks or build config');
  assert.ok(files.every((f) => /^(bin|dist|completions|man|contrib)\/|^(package\.json|README\.md|LICENSE[^/]*)$/.test(f)), files.join('\n'));
  // the scripts stay executable in the tarball
  for (const exe of ['bin/passim.js', 'contrib/apt/apt-passim', 'contrib/dnf/dnf-passim', 'contrib/ci/passim-ci-fetch']) {
    assert.ok((info!.files.find((f) => f.path === exe)!.mode & 0o111) !== 0, `${exe} executable`);
  }
});

test('npm pack + npm i -g --prefix TMP, empty npm cache, dependencies from a loopback registry: `passim --version` and man pages', async (t) => {
  const tmp = await tempDir('passim-npm-');
  t.after(() => rm(tmp, { recursive: true, force: true }));
  // a real pack: runs prepare (tsc) so dist/ is what lib/ says now
  const packed = await execa('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: REPO, reject: false });
  assert.equal(packed.exitCode, 0, String(packed.stderr));
  const tgz = join(tmp, `${pkg.name}-${pkg.version}.tgz`);
  await access(tgz);
  const registry = await startLocalRegistry(REPO);
  t.after(() => registry.close());
  const prefix = join(tmp, 'prefix');
  // a fresh cache: nothing a previous `npm ci` or install left behind can make this pass;
  // --ignore-scripts: no native build of the optional usocket (node-gyp would fetch Node's headers)
  const env = { npm_config_cache: join(tmp, 'npm-cache'), npm_config_update_notifier: 'false' };
  const inst = await execa('npm', ['i', '-g', '--prefix', prefix, '--registry', registry.url, '--ignore-scripts', '--no-audit', '--no-fund', tgz],
    { cwd: tmp, reject: false, env });
  assert.equal(inst.exitCode, 0, `npm i -g failed:\n${inst.stderr}`);
  assert.ok(registry.downloads.some((d) => d.startsWith('@napi-rs/xattr@')), `dependencies came from the loopback registry: ${registry.downloads.join(' ')}`);
  const v = await execa(join(prefix, 'bin', 'passim'), ['--version'], { reject: false, cwd: tmp });
  assert.equal(v.exitCode, 0, String(v.stderr));
  assert.equal(String(v.stdout).trim(), pkg.version);
  const help = await execa(join(prefix, 'bin', 'passim'), ['--help'], { reject: false, cwd: tmp });
  assert.match(String(help.stdout), /passim fetch/);
  assert.ok((await readdir(join(prefix, 'share', 'man', 'man1'))).includes('passim.1'), 'man page linked by npm');
  assert.ok((await readdir(join(prefix, 'share', 'man', 'man5'))).includes('passim.conf.5'));
  const installed = join(prefix, 'lib', 'node_modules', pkg.name);
  await assert.rejects(access(join(installed, 'lib')), 'no lib/ sources installed');
  await assert.rejects(access(join(installed, 'test')), 'no tests installed');
});
