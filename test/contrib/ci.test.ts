/**
 * contrib/ci: passim-ci-fetch, the GitHub composite action and the GitLab template, run for real
 * against a fake CDN on loopback and a real daemon: the artefact arrives verified, is published
 * to the daemon, a second fetch is served locally, and without passim curl does the same check.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestDaemon } from '../helpers/daemon.js';
import { startRig, stopRig, scriptEnv, run, daemonHashes, sha256, tempDir, fetchCalls, passimCalls, REPO, type Cdn } from './helpers.js';
import { requires } from '../helpers/requires.js';

const SCRIPT = join(REPO, 'contrib/ci/passim-ci-fetch');
/** what the script and the CI templates run besides passim */
const skip = requires('sh', 'sha256sum', 'curl');
let d: TestDaemon;
let cdn: Cdn;
let root: string;
let bin: string;
const sdk = randomBytes(256 * 1024);
const data = randomBytes(40_000);
const other = randomBytes(1000);

before(async () => {
  root = await tempDir('passim-contrib-ci-');
  await writeFile(join(root, 'sdk.tar.xz'), sdk);
  await writeFile(join(root, 'set-7.bin'), data);
  await writeFile(join(root, 'other.bin'), other);
  ({ cdn, d, bin } = await startRig(root, {
    '/sdk/sdk-1.2.tar.xz': join(root, 'sdk.tar.xz'),
    '/data/set-7.bin': join(root, 'set-7.bin'),
    '/data/liar.bin': join(root, 'other.bin'),
  }));
});

after(() => stopRig({ cdn, d }, root));

test('passim-ci-fetch: CDN via passim, verified, published; the next job gets it from the daemon', { skip }, async () => {
  const out = join(root, 'job1');
  await mkdir(out);
  const calls0 = (await passimCalls(bin)).length;
  const r = await run(SCRIPT, ['-o', out, cdn.url('/sdk/sdk-1.2.tar.xz'), sha256(sdk).toUpperCase()], { env: scriptEnv(d, cdn, bin) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await passimCalls(bin)).slice(calls0).map((c) => c.split(' ')[0]), ['fetch'], 'one passim process: the batch fetch (it publishes itself)');
  assert.equal(r.stdout.trim(), join(out, 'sdk-1.2.tar.xz'));
  assert.ok((await readFile(join(out, 'sdk-1.2.tar.xz'))).equals(sdk));
  assert.equal(cdn.count('/sdk/sdk-1.2.tar.xz'), 1);
  assert.ok((await daemonHashes(d)).has(sha256(sdk)), 'published to the local daemon');

  // a second job on this runner: served by the local daemon, the CDN is not asked again
  const out2 = join(root, 'job2', 'sdk.tar.xz');
  await mkdir(join(root, 'job2'));
  const r2 = await run(SCRIPT, ['-o', out2, cdn.url('/sdk/sdk-1.2.tar.xz'), sha256(sdk)], { env: scriptEnv(d, cdn, bin) });
  assert.equal(r2.code, 0, r2.stderr);
  assert.ok((await readFile(out2)).equals(sdk));
  assert.equal(cdn.count('/sdk/sdk-1.2.tar.xz'), 1, 'no second CDN download');
});

test('passim-ci-fetch with several URL SHA256 pairs: one passim fetch for all, each file verified, in order', { skip }, async () => {
  const out = join(root, 'several');
  await mkdir(out);
  const calls0 = (await passimCalls(bin)).length;
  const cdn0 = cdn.count('/sdk/sdk-1.2.tar.xz');
  const r = await run(SCRIPT, ['-o', out, '--max-age', '600', cdn.url('/data/set-7.bin'), sha256(data), cdn.url('/sdk/sdk-1.2.tar.xz'), sha256(sdk)],
    { env: scriptEnv(d, cdn, bin, { PASSIM_FETCH_ARGS: '--no-peers --no-publish' }) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), [join(out, 'set-7.bin'), join(out, 'sdk-1.2.tar.xz')]);
  assert.ok((await readFile(join(out, 'set-7.bin'))).equals(data));
  assert.ok((await readFile(join(out, 'sdk-1.2.tar.xz'))).equals(sdk));
  assert.equal(cdn.count('/sdk/sdk-1.2.tar.xz'), cdn0, 'the sdk came from the local daemon');
  const fetches = await fetchCalls(bin, calls0);
  assert.equal(fetches.length, 1, fetches.join(' | '));
  assert.match(fetches[0]!, /^fetch --from - -o \S+ --json --max-age 600 /);
  assert.deepEqual(await readdir(out), ['sdk-1.2.tar.xz', 'set-7.bin'], 'no staging dir left');

  const notDir = await run(SCRIPT, ['-o', join(out, 'x.bin'), cdn.url('/data/set-7.bin'), sha256(data), cdn.url('/sdk/sdk-1.2.tar.xz'), sha256(sdk)], { env: scriptEnv(d, cdn, bin) });
  assert.equal(notDir.code, 2);
  assert.match(notDir.stderr, /-o must be an existing directory/);
  const odd = await run(SCRIPT, [cdn.url('/data/set-7.bin'), sha256(data), cdn.url('/sdk/sdk-1.2.tar.xz')], { env: scriptEnv(d, cdn, bin) });
  assert.equal(odd.code, 2);
});

test('passim-ci-fetch without passim: curl + sha256sum, same verification', { skip }, async () => {
  const out = join(root, 'nopassim');
  await mkdir(out);
  const before = cdn.count('/data/set-7.bin');
  const r = await run(SCRIPT, ['-o', out, cdn.url('/data/set-7.bin'), sha256(data)], { env: scriptEnv(d, cdn, undefined), cwd: out });
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(out, 'set-7.bin'))).equals(data));
  assert.equal(cdn.count('/data/set-7.bin'), before + 1);
  assert.ok(!(await daemonHashes(d)).has(sha256(data)), 'no passim: nothing published');
});

test('passim-ci-fetch with a passim too old for --from (usage error): every file by curl, verified', { skip }, async () => {
  const old = join(root, 'old-passim');
  await writeFile(old, '#!/bin/sh\necho "passim: error: Unknown argument: from" >&2\nexit 2\n', { mode: 0o755 });
  const out = join(root, 'old');
  await mkdir(out);
  const asked = cdn.count('/data/set-7.bin');
  const r = await run(SCRIPT, ['-o', out, cdn.url('/data/set-7.bin'), sha256(data)], { env: scriptEnv(d, cdn, bin, { PASSIM: old }) });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /passim fetch --from exited 2/);
  assert.ok((await readFile(join(out, 'set-7.bin'))).equals(data));
  assert.equal(cdn.count('/data/set-7.bin'), asked + 1);
  assert.deepEqual(await readdir(out), ['set-7.bin'], 'no staging dir left');
});

test('passim-ci-fetch: wrong bytes from the CDN → exit 4 and no file, with and without passim', { skip }, async () => {
  for (const withPassim of [true, false]) {
    const out = join(root, `liar-${withPassim}`);
    await mkdir(out);
    const asked = cdn.count('/data/liar.bin');
    const r = await run(SCRIPT, ['-o', out, cdn.url('/data/liar.bin'), sha256(data)], { env: scriptEnv(d, cdn, withPassim ? bin : undefined) });
    assert.equal(r.code, 4, `${withPassim}: ${r.stderr}`);
    assert.equal(cdn.count('/data/liar.bin'), asked + 1, 'a mismatch passim reported is not downloaded again by curl');
    assert.deepEqual(await readdir(out), [], 'no partial or unverified file left');
  }
  const bad = await run(SCRIPT, [cdn.url('/data/set-7.bin'), 'nothex'], { env: scriptEnv(d, cdn, bin) });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /SHA256 must be 64 hex digits/);
});

/** The `env:` and `run: |` of the single step of contrib/ci/action.yml. */
function actionStep(yaml: string): { env: Record<string, string>; run: string } {
  const lines = yaml.split('\n');
  const env: Record<string, string> = {};
  let i = lines.findIndex((l) => /^\s+env:\s*$/.test(l));
  assert.ok(i > 0, 'env: in action.yml');
  for (i++; i < lines.length && /^\s{8}\S/.test(lines[i]!); i++) {
    const m = /^\s+([A-Z0-9_]+):\s*(.*)$/.exec(lines[i]!);
    if (m) env[m[1]!] = m[2]!;
  }
  const r = lines.findIndex((l) => /^\s+run:\s*\|\s*$/.test(l));
  assert.ok(r > 0, 'run: | in action.yml');
  const body: string[] = [];
  for (let j = r + 1; j < lines.length && (/^\s{8}/.test(lines[j]!) || lines[j] === ''); j++) body.push(lines[j]!.slice(8));
  return { env, run: body.join('\n') };
}

test('GitHub composite action (contrib/ci/action.yml) runs its step as Actions would', { skip }, async () => {
  const yaml = await readFile(join(REPO, 'contrib/ci/action.yml'), 'utf8');
  const step = actionStep(yaml);
  const defaults: Record<string, string> = { 'max-age': '86400', 'share-limit': '5' };
  const inputs: Record<string, string> = { ...defaults, url: cdn.url('/data/set-7.bin'), sha256: sha256(data), output: join(root, 'gha') };
  await mkdir(inputs.output!);
  const stepEnv = Object.fromEntries(Object.entries(step.env).map(([k, v]) => [k, v.replace(/\$\{\{\s*inputs\.([a-z0-9-]+)\s*\}\}/g, (_, n: string) => inputs[n] ?? '')]));
  assert.ok(!/\$\{\{/.test(step.run), 'no expressions pasted into the script');
  const ghOut = join(root, 'github-output');
  await writeFile(ghOut, '');
  const r = await run('sh', ['-c', step.run], {
    env: { ...scriptEnv(d, cdn, bin), ...stepEnv, GITHUB_ACTION_PATH: join(REPO, 'contrib/ci'), GITHUB_OUTPUT: ghOut },
    cwd: root,
  });
  assert.equal(r.code, 0, r.stderr);
  const path = join(inputs.output!, 'set-7.bin');
  assert.equal(await readFile(ghOut, 'utf8'), `path=${path}\n`);
  assert.ok((await readFile(path)).equals(data));
  assert.ok((await daemonHashes(d)).has(sha256(data)), 'published to the daemon');
});

test('GitLab template (contrib/ci/gitlab-ci.yml) .passim-fetch before_script runs', { skip }, async () => {
  const yaml = await readFile(join(REPO, 'contrib/ci/gitlab-ci.yml'), 'utf8');
  const block = yaml.slice(yaml.indexOf('.passim-fetch:'));
  const bs = block.slice(block.indexOf('before_script:'));
  const cmds = [...bs.split('\n').slice(1)].filter((l, i, a) => a.slice(0, i + 1).every((x) => /^\s{4}- /.test(x))).map((l) => l.replace(/^\s{4}- /, ''));
  assert.ok(cmds.length >= 1 && cmds[0]!.includes('passim-ci-fetch'), JSON.stringify(cmds));
  const out = join(root, 'gitlab-sdk.tar.xz');
  const r = await run('sh', ['-ec', cmds.join('\n')], {
    env: { ...scriptEnv(d, cdn, bin), PASSIM_FETCH_URL: cdn.url('/sdk/sdk-1.2.tar.xz'), PASSIM_FETCH_SHA256: sha256(sdk), PASSIM_FETCH_OUTPUT: out },
    cwd: REPO, // GitLab runs the script in the checkout
  });
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(out)).equals(sdk));
});
