/**
 * Fuzz of the command line (issue 4): random and edge-case argv through the real yargs parser of
 * lib/cli/main.ts (buildParser: its global flags, strict mode, the fail handler and every command's
 * builder and check()), in-process. Command handlers never run: each is replaced by one that throws
 * a sentinel as soon as yargs would call it, and process.exit is replaced by one that throws the
 * exit code, so a case ends in exactly one of
 *   - accepted: yargs would call the command handler (its own validation is the handler's job);
 *   - exit 2 (usage error): stderr is one `passim: error: …` line (+ the `Try "passim … --help".`
 *     hint), no stack trace, nothing on stdout;
 *   - exit 0 (--help / --version): output on stdout, nothing on stderr.
 * Anything else (another exit code, another exception, a stack trace, two error lines, a polluted
 * Object.prototype) is a failure.
 *
 * A last test spawns the real CLI (30 cases by default, the ones whose handlers cannot touch the network
 * or a daemon) and checks the exit code and stderr of the whole process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { commands } from '../../lib/cli/commands/index.js';
import { buildParser } from '../../lib/cli/main.js';
import { bump, checkCountedAsync, newTally, report, RUNS, SEED } from './helpers.js';

class Accepted extends Error {
  constructor(readonly command: string, readonly args: Record<string, unknown>) {
    super('accepted');
  }
}
class Exited extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

interface Outcome {
  kind: 'accepted' | 'exit';
  code?: number;
  command?: string;
  args?: Record<string, unknown>;
  stdout: string;
  stderr: string;
}

const COMMANDS = ['serve', 'publish', 'unpublish', 'dump', 'verify', 'fetch'];
const FLAGS = [
  '--json', '--quiet', '-q', '--verbose', '-v', '--socket', '--max-age', '--share-limit', '--name', '--next-reboot', '--sha256',
  '--sha256-url', '--cdn', '--no-cdn', '-o', '--output', '--timeout', '--peers', '--no-peers', '--publish', '--no-publish', '--port',
  '--bind', '--localhost-only', '--state-dir', '--config', '--config-dir', '--interface', '--ipv6', '--dbus', '--no-dbus',
  '--instance-name', '--fix', '--no-json', '--unknown', '-x', '-qv', '-vqo', '--', '-', '---', '--=', '--json=false', '--json=maybe',
  '--port=0', '--port=65536', '--port=-1', '--timeout=1e9', '--timeout=NaN', '--max-age=-5', '--share-limit=1.5',
  '--__proto__.polluted=1', '--constructor.prototype.polluted=1', '--__proto__', '--prototype', '--toString', '--hasOwnProperty=1',
  '--max_age', '--share_limit', '--MAX-AGE', '--sha256=', '--cdn=', '--bind=', '--config-dir=', '--no-socket',
];
const HEX64 = 'a'.repeat(64);
const VALUES = [
  '', ' ', '0', '1', '-1', '5', '86400', '4294967294', '4294967295', '99999999999', '1e3', '0x10', '1.5', 'NaN', 'Infinity', 'true', 'false',
  HEX64, HEX64.toUpperCase(), HEX64.slice(1), `${HEX64}0`, 'https://cdn.example.com/f.cab', 'http://[::1]:1/x', 'ftp://x/y', 'https://',
  'file:///etc/passwd', 'javascript:alert(1)', '/etc/passwd', '../../x', './f', '-', '--', '-o', 'a\nb', 'a\u0000b', 'é', '😀', '\ud800',
  '%2f', '..', '.', 'x'.repeat(5000), '127.0.0.1', '::1', 'eth0',
];

const token = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...FLAGS) },
  { weight: 3, arbitrary: fc.constantFrom(...VALUES) },
  { weight: 1, arbitrary: fc.constantFrom(...COMMANDS, 'publsh', 'Serve', 'completion', 'fetch2') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).map((s) => `--${s}`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...FLAGS.filter((f) => f.startsWith('--') && !f.includes('='))), fc.constantFrom(...VALUES)).map(([f, v]) => `${f}=${v}`) },
  { weight: 1, arbitrary: fc.integer({ min: -1e6, max: 1e10 }).map(String) },
);

/** argv: usually a command first, then random tokens; sometimes (1 in 50) --help/--version */
const argvArb = fc
  .tuple(
    fc.option(fc.constantFrom(...COMMANDS), { freq: 6, nil: undefined }),
    fc.array(token, { maxLength: 10 }),
    fc.constantFrom('--help', '-h', '--version'),
    fc.nat(99),
    fc.nat(),
  )
  .map(([cmd, rest, help, dice, at]) => {
    const argv = cmd ? [cmd, ...rest] : rest;
    if (dice < 2) argv.splice(at % (argv.length + 1), 0, help);
    return argv;
  })
;

const savedHandlers = new Map<object, unknown>();
function stubHandlers(): void {
  for (const c of commands) {
    savedHandlers.set(c, c.handler);
    const name = String(c.command).split(' ')[0];
    c.handler = (args: Record<string, unknown>) => {
      throw new Accepted(name, args);
    };
  }
}
function restoreHandlers(): void {
  for (const c of commands) if (savedHandlers.has(c)) c.handler = savedHandlers.get(c) as typeof c.handler;
}

/** One parse with process.exit and the output streams intercepted. */
async function parseOnce(argv: string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const exit = process.exit;
  const outWrite = process.stdout.write;
  const errWrite = process.stderr.write;
  const log = console.log;
  const error = console.error;
  const warn = console.warn;
  process.exit = ((code?: number) => {
    throw new Exited(code ?? 0);
  }) as typeof process.exit;
  process.stdout.write = ((s: string | Uint8Array) => ((stdout += String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write;
  console.log = (...a: unknown[]) => void (stdout += a.join(' ') + '\n');
  console.error = console.warn = (...a: unknown[]) => void (stderr += a.join(' ') + '\n');
  try {
    await buildParser([...argv]).parseAsync();
    return { kind: 'exit', code: undefined, stdout, stderr };
  } catch (err) {
    if (err instanceof Accepted) return { kind: 'accepted', command: err.command, args: err.args, stdout, stderr };
    if (err instanceof Exited) return { kind: 'exit', code: err.code, stdout, stderr };
    throw Object.assign(new Error(`parser threw ${(err as Error)?.name}: ${(err as Error)?.message}`), { cause: err, stderr });
  } finally {
    process.exit = exit;
    process.stdout.write = outWrite;
    process.stderr.write = errWrite;
    console.log = log;
    console.error = error;
    console.warn = warn;
  }
}

/** The checks every outcome must pass; returns the outcome's class for the tally. */
function checkOutcome(argv: string[], o: Outcome): string {
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype polluted');
  assert.ok(!/^\s+at /m.test(o.stderr) && !/^\s+at /m.test(o.stdout), `stack trace in output: ${o.stderr.slice(0, 300)}`);
  if (o.kind === 'accepted') {
    assert.ok(COMMANDS.includes(o.command!), `known command ${o.command}`);
    assert.equal(o.stderr, '', 'nothing on stderr before the handler runs');
    assert.equal(o.stdout, '');
    // a command yargs accepts was named in argv (no command runs by default)
    assert.ok(argv.includes(o.command!), `command ${o.command} was given`);
    return `accepted ${o.command}`;
  }
  assert.ok(o.code !== undefined, `parse neither exited nor reached a handler (stdout ${JSON.stringify(o.stdout.slice(0, 100))}, stderr ${JSON.stringify(o.stderr.slice(0, 100))})`);
  if (o.code === 0) {
    // yargs also takes a bare word "help" anywhere as a request for help
    assert.ok(argv.some((a) => a === 'help' || /^--?(h|help|version)([=.].*)?$/.test(a) || /^-[a-zA-Z]*h/.test(a)), `exit 0 only for help/version: ${JSON.stringify(argv)}`);
    assert.ok(o.stdout.length > 0, 'help/version printed');
    assert.equal(o.stderr, '');
    return 'help/version';
  }
  assert.equal(o.code, 2, `usage errors exit 2 (got ${o.code}): ${o.stderr.slice(0, 200)}`);
  assert.equal(o.stdout, '', 'nothing on stdout for a usage error');
  const errorLines = o.stderr.split('\n').filter((l) => l.startsWith('passim: error:'));
  assert.equal(errorLines.length, 1, `exactly one "passim: error:" line: ${JSON.stringify(o.stderr.slice(0, 300))}`);
  assert.ok(o.stderr.startsWith('passim: error: '), 'the error comes first');
  assert.ok(/\nTry "passim [\s\S]*--help"\.\n$/.test(o.stderr), `ends with the --help hint: ${JSON.stringify(o.stderr.slice(-200))}`);
  // the hint names the first non-flag word, which need not be a command (counted, not failed)
  const hint = /\nTry "passim ([\s\S]*?) ?--help"\.\n$/.exec(o.stderr)?.[1] ?? '';
  if (hint !== '' && !COMMANDS.includes(hint)) return 'usage error (hint names a non-command)';
  return 'usage error';
}

test('CLI args: random argv through the real parser in-process → accepted, usage error (exit 2) or help', async (t) => {
  stubHandlers();
  t.after(restoreHandlers);
  const tally = newTally();
  let multiline = 0;
  let oddHint = 0;
  await checkCountedAsync(t, 'CLI argv (in-process parser)', [argvArb], async (argv) => {
    const o = await parseOnce(argv);
    const kind = checkOutcome(argv, o);
    bump(tally, kind.startsWith('accepted') ? 'accepted' : kind.startsWith('usage error') ? 'usage error' : kind);
    if (kind === 'usage error (hint names a non-command)') oddHint++;
    // an argument with a line break echoed in the message: still one "passim: error:" line, but counted
    if (kind.startsWith('usage error') && o.stderr.split('\n').length > 3) multiline++;
  }, RUNS, tally);
  t.diagnostic(`CLI argv: ${multiline} usage errors whose message echoes a line break from the arguments`);
  t.diagnostic(`CLI argv: ${oddHint} usage errors whose "Try passim X --help" hint names a word that is not a command`);
  assert.ok((tally.outcomes.accepted ?? 0) > RUNS / 50, `enough accepted cases (${tally.outcomes.accepted})`);
  assert.ok((tally.outcomes['usage error'] ?? 0) > RUNS / 10, 'enough usage errors');
  assert.ok((tally.outcomes['help/version'] ?? 0) > 20, 'some help/version');
});

test('CLI args: a bare "--" before the command is a usage error, not a silent exit 0', async () => {
  stubHandlers();
  try {
    for (const argv of [['--', 'foo'], ['--', 'dump'], ['--', '--help']]) {
      const o = await parseOnce(argv);
      assert.equal(o.code, 2, `${JSON.stringify(argv)}: expected a usage error, got ${o.kind} ${o.code} ${JSON.stringify(o.stderr)}`);
    }
  } finally {
    restoreHandlers();
  }
});

// ---------------------------------------------------------------------------- the real process

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));

function spawnCli(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const script = `import(${JSON.stringify(MAIN)}).then((m) => m.main(JSON.parse(process.env.FUZZ_ARGV)))`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT, env: { ...env, FUZZ_ARGV: JSON.stringify(argv) }, timeout: 30_000, maxBuffer: 1 << 24,
    }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

/** spawned cases: each costs a whole node + tsx start (≈ 0.5–1.5 s here), so few */
const SPAWNS = Number(process.env.PASSIM_FUZZ_SPAWNS ?? 30);

test('CLI args: random argv run by the real CLI process → exit code 0–5, one error line, no stack trace', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'passim-fuzz-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // no daemon anywhere: a command that gets past the parser fails with "daemon unreachable" (5) or earlier
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HOME: dir, NO_COLOR: '1',
    PASSIM_SOCKET: join(dir, 'no-daemon.sock'), PASSIM_STATE_DIR: join(dir, 'state'), PASSIM_CONFIG_DIR: join(dir, 'config'),
    XDG_RUNTIME_DIR: dir, XDG_STATE_HOME: dir, XDG_CONFIG_HOME: dir,
  };
  // pick cases by what the parser says: serve and fetch past the parser would start a daemon or use
  // the network, and --socket could name a real socket: those stay in-process only
  stubHandlers();
  const picked: string[][] = [];
  try {
    for (const argv of fc.sample(argvArb.filter((a) => a.length > 0), { seed: SEED + 1, numRuns: 2000 })) {
      if (argv.some((a) => a.includes('socket'))) continue;
      const o = await parseOnce(argv);
      if (o.kind === 'accepted' && (o.command === 'serve' || o.command === 'fetch')) continue;
      // publish/verify of a random path: only paths that cannot exist inside the temp cwd
      if (o.kind === 'accepted' && picked.filter((p) => p[0] === o.command).length >= SPAWNS / 6) continue;
      // few help/version runs: they say little
      if (o.kind === 'exit' && o.code === 0 && picked.filter((p) => p.some((a) => /^-(-help|h|-version)$/.test(a))).length >= 3) continue;
      picked.push(argv);
      if (picked.length >= SPAWNS) break;
    }
  } finally {
    restoreHandlers();
  }
  const tally = newTally();
  const codes: Record<string, number> = {};
  const queue = [...picked];
  const worker = async () => {
    for (let argv = queue.shift(); argv; argv = queue.shift()) {
      const r = await spawnCli(argv, env);
      tally.cases++;
      codes[String(r.code)] = (codes[String(r.code)] ?? 0) + 1;
      try {
        assert.equal(r.signal, null, 'not killed');
        assert.ok(r.code !== null && [0, 1, 2, 3, 4, 5].includes(r.code), `exit code ${r.code} for ${JSON.stringify(argv).slice(0, 200)}`);
        assert.ok(!/^\s+at /m.test(r.stderr), `stack trace for ${JSON.stringify(argv).slice(0, 200)}: ${r.stderr.slice(0, 500)}`);
        const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('passim: error:'));
        assert.ok(errorLines.length <= 1, `at most one error line: ${r.stderr.slice(0, 300)}`);
        if (r.code !== 0) assert.equal(errorLines.length, 1, `a failure says why: ${JSON.stringify(argv).slice(0, 200)} → ${JSON.stringify(r.stderr.slice(0, 300))}`);
      } catch (err) {
        tally.failures++;
        throw err;
      }
    }
  };
  try {
    await Promise.all([worker(), worker()]);
  } finally {
    tally.outcomes = Object.fromEntries(Object.entries(codes).map(([k, v]) => [`exit ${k}`, v]));
    report(t, 'CLI argv (spawned process)', tally);
  }
  assert.ok(tally.cases >= SPAWNS, `all ${SPAWNS} spawned cases ran (${tally.cases})`);
});
