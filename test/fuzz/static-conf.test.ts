/**
 * Fuzz of the static-dir configs (passim.d/*.conf, SPEC §3): whatever a conf file holds, the reader
 * never throws; each file ends up either as an absolute dir or as one problem naming the file; and
 * through the Store a bad conf is a logged warning that does not stop the good ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { tmpdir } from 'node:os';
import fc from 'fast-check';
import { parseStaticConf, readStaticConfs } from '../../lib/store/static-conf.js';
import { Store } from '../../lib/store/store.js';
import { bump, checkCountedAsync, newTally, report, RUNS, SEED } from './helpers.js';

const confLine = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z0-9._-]{1,12}$/).map((d) => `Path=/srv/${d}`) },
  { weight: 3, arbitrary: fc.constantFrom('[passim]', '[Passim]', '[daemon]', '[passim', 'passim]', '[]', '# c', '', ' ') },
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.constantFrom('Path', 'path', 'PATH', 'Path[de]', 'Paths', 'Path '),
        fc.oneof(
          fc.constantFrom('/srv/static', '/srv/a\\sb', 'relative', '', ' /srv/x ', '/', '/\u0000x', '/tmp/\\n', '\\', '\\q', '/é/😀', '/\ud800'),
          fc.string({ unit: 'binary', maxLength: 30 }),
        ),
      )
      .map(([k, v]) => `${k}=${v}`),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('Path=/srv/one\nPath=/srv/two', '[passim]\n[passim]', 'x'.repeat(100_000), `Path=/${'p'.repeat(70_000)}`) },
);

/** the bytes of one conf file */
const confBytes = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(fc.array(confLine, { maxLength: 8 }), fc.boolean(), fc.constantFrom('\n', '\r\n'), fc.boolean())
      .map(([lines, header, eol, bom]) => Buffer.from((bom ? '\ufeff' : '') + (header ? ['[passim]', ...lines] : lines).join(eol), 'utf8')),
  },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from([0xff, 0xfe, 0x5b, 0x00]), Buffer.from('[passim]\nPath=/srv/\xff', 'latin1'), Buffer.alloc(0)) },
);

function checkParse(text: string, file: string): 'dir' | 'problem' {
  try {
    const dir = parseStaticConf(text, file);
    assert.ok(isAbsolute(dir), `dir is absolute: ${dir}`);
    assert.ok(!dir.includes('\0'), 'no NUL in a dir');
    return 'dir';
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    assert.ok(err instanceof Error, 'an Error');
    assert.ok(err.message.startsWith(file), `message names the file: ${err.message.slice(0, 120)}`);
    return 'problem';
  }
}

test('passim.d: parseStaticConf on random texts → an absolute dir or an error naming the file', async (t) => {
  const tally = newTally();
  await checkCountedAsync(t, 'passim.d conf texts', [confBytes], async (bytes) => {
    bump(tally, checkParse(bytes.toString('utf8'), '/etc/passim.d/x.conf'));
  }, RUNS, tally);
  assert.ok((tally.outcomes.dir ?? 0) > RUNS / 20 && (tally.outcomes.problem ?? 0) > RUNS / 20, 'both outcomes exercised');
});

test('passim.d: readStaticConfs on dirs of random conf files never throws; every file is a dir or a problem', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'passim-fuzz-conf-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const tally = newTally();
  let files = 0;
  let run = 0;
  // batches of conf files in one dir: ≥ RUNS files read through the real reader
  const batch = fc.array(
    fc.oneof(
      { weight: 12, arbitrary: confBytes.map((b) => ({ kind: 'file' as const, bytes: b })) },
      { weight: 1, arbitrary: fc.constant({ kind: 'dir' as const, bytes: Buffer.alloc(0) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'dangling' as const, bytes: Buffer.alloc(0) }) },
    ),
    { minLength: 20, maxLength: 24 },
  );
  await checkCountedAsync(t, 'passim.d dirs (batches)', [batch], async (entries) => {
    const dir = join(root, `d${run++}`);
    await mkdir(dir);
    const expectFiles: string[] = [];
    for (const [i, e] of entries.entries()) {
      const file = join(dir, `${String(i).padStart(3, '0')}.conf`);
      if (e.kind === 'file') {
        await writeFile(file, e.bytes);
        expectFiles.push(file);
      } else if (e.kind === 'dir') {
        await mkdir(file);
        expectFiles.push(file); // EISDIR: a problem
      } else {
        await symlink(join(dir, 'nowhere'), file); // vanished: skipped
      }
    }
    await writeFile(join(dir, 'ignored.txt'), '[passim]\nPath=relative\n');
    files += entries.length;
    const scan = await readStaticConfs(dir);
    const expectedDirs: string[] = [];
    for (const file of expectFiles) {
      const problem = scan.problems.get(file);
      if (problem !== undefined) {
        assert.ok(problem.startsWith(file) || /EISDIR/.test(problem), `problem names the file: ${problem.slice(0, 120)}`);
        bump(tally, 'problem');
        continue;
      }
      // not a problem: it must have parsed, and its dir must be listed
      const e = entries[Number(file.slice(-8, -5))];
      const d = parseStaticConf(e.bytes.toString('utf8'), file);
      assert.ok(scan.dirs.includes(d), `dir of ${file} listed`);
      if (!expectedDirs.includes(d)) expectedDirs.push(d);
      bump(tally, 'dir');
    }
    assert.deepEqual(scan.dirs, expectedDirs, 'exactly the dirs of the good files, in file order, no duplicates');
    for (const d of scan.dirs) assert.ok(isAbsolute(d) && !d.includes('\0'));
    for (const p of scan.problems.keys()) assert.ok(expectFiles.includes(p), `problem only for a conf file: ${p}`);
    await rm(dir, { recursive: true });
  }, Math.ceil(RUNS / 20), tally);
  t.diagnostic(`passim.d dirs: ${files} conf files read`);
  assert.ok(files >= RUNS, `at least ${RUNS} conf files (${files})`);
});

test('passim.d through the Store: each bad conf is one logged warning naming it; good ones still publish', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'passim-fuzz-store-conf-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const tally = newTally();
  const staticDir = join(root, 'static');
  await mkdir(staticDir);
  await writeFile(join(staticDir, 'good.bin'), 'static bytes');
  let n = 0;
  const rng = fc.sample(fc.array(confBytes, { minLength: 1, maxLength: 6 }), { seed: SEED, numRuns: 150 });
  try {
  for (const confs of rng) {
    // a good conf naming a dir that exists (e.g. "/") would make the Store hash and tag real files: skip those
    if (confs.some((c) => {
      try {
        return existsSync(parseStaticConf(c.toString('utf8'), '/x.conf'));
      } catch {
        return false;
      }
    })) continue;
    const configDir = join(root, `c${n}`);
    const stateDir = join(root, `s${n++}`);
    await mkdir(join(configDir, 'passim.d'), { recursive: true });
    const names: string[] = [];
    for (const [i, b] of confs.entries()) {
      const f = join(configDir, 'passim.d', `${i}-fuzz.conf`);
      await writeFile(f, b);
      names.push(f);
    }
    await writeFile(join(configDir, 'passim.d', 'zz-good.conf'), `[passim]\nPath=${staticDir}\n`);
    const warnings: string[] = [];
    const logger = { error: (m: string) => warnings.push(m), warn: (m: string) => warnings.push(m), info() {}, debug() {} };
    const store = new Store({ stateDir, configDir, logger });
    tally.cases++;
    try {
      await store.load();
      for (const f of names) {
        let bad = false;
        try {
          parseStaticConf(confs[names.indexOf(f)].toString('utf8'), f);
        } catch {
          bad = true;
        }
        const logged = warnings.filter((w) => w.includes(f));
        if (bad) assert.equal(logged.length, 1, `one warning for bad ${f}: ${JSON.stringify(warnings).slice(0, 300)}`);
        else assert.equal(logged.length, 0);
        bump(tally, bad ? 'bad conf warned' : 'good conf');
      }
      assert.ok(store.list().some((i) => i.static && i.basename === 'good.bin'), 'the good conf still publishes its dir');
    } catch (err) {
      tally.failures++;
      throw err;
    } finally {
      await store.close();
    }
  }
  } finally {
    report(t, 'passim.d via Store', tally);
  }
  assert.ok(tally.cases >= 100, `enough Store cases (${tally.cases})`);
});
