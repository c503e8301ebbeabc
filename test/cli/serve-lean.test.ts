/**
 * `passim serve` loads only what the daemon uses: no CLI parser, spinner, table or HTTP-client code,
 * x509 only when a certificate is made, dbus-next only with D-Bus. Its own flag reading
 * (lib/cli/serve-argv.ts) takes only the plain forms and leaves everything else to the full CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseServeArgv } from '../../lib/cli/serve-argv.js';
import { makeRoot, startDaemon } from '../helpers/daemon.js';
import { buildOnce, passim } from './helpers.js';

const TRACER = resolve(import.meta.dirname, '../helpers/module-trace.mjs');

/** Packages (node_modules/<name>) the daemon loaded, from a module trace. */
async function packagesLoaded(trace: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const line of (await readFile(trace, 'utf8')).split('\n')) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(line);
    if (m) out.add(m[1]!);
  }
  return out;
}

test('the daemon loads no CLI parser, spinner, table, undici or dbus-next; x509 only to make a certificate', { timeout: 120_000 }, async (t) => {
  await buildOnce();
  const root = await makeRoot();
  t.after(() => rm(root, { recursive: true, force: true }));
  const run = async (n: number) => {
    const trace = join(root, `trace-${n}.txt`);
    const d = await startDaemon({ root, nodeArgs: ['--import', TRACER], env: { MODULE_TRACE: trace }, readyTimeout: 90_000 });
    await d.stop();
    return packagesLoaded(trace);
  };
  const first = await run(1);
  assert.ok(first.has('@peculiar/x509'), `the first start makes a certificate (and the trace sees packages): ${[...first].join(' ')}`);
  assert.ok(first.has('multicast-dns'), [...first].join(' '));
  const second = await run(2);
  for (const p of ['yargs', 'yargs-parser', 'cliui', 'y18n', 'ora', 'cli-table3', 'undici', '@peculiar/x509', 'reflect-metadata', 'dbus-next']) {
    assert.ok(!second.has(p), `a daemon with its certificate and --no-dbus loaded ${p}: ${[...second].join(' ')}`);
  }
  assert.ok(second.has('@napi-rs/xattr'), [...second].join(' '));
});

test('serve --help and bad serve flags still go through the full CLI', async () => {
  await buildOnce();
  const help = await passim(['serve', '--help']);
  assert.equal(help.exitCode, 0, help.stderr);
  for (const flag of ['--port', '--bind', '--localhost-only', '--state-dir', '--config', '--config-dir', '--socket', '--interface', '--ipv6', '--dbus']) {
    assert.ok(help.stdout.includes(flag), `${flag} in serve --help`);
  }
  const bad = await passim(['serve', '--bogus']);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /^passim: error: .*bogus/m);
  const twice = await passim(['serve', '--port', '1', '--port', '2']);
  assert.equal(twice.exitCode, 2);
  assert.match(twice.stderr, /port given more than once/);
});

test('parseServeArgv reads the plain forms and declines everything else', () => {
  assert.deepEqual(parseServeArgv(['serve', '--port', '27500', '--bind', '10.0.0.1', '--bind=::1', '--interface', 'eth0', '--no-dbus', '-v', '--state-dir=/s']), {
    json: undefined, quiet: undefined, verbose: true, port: 27500, bind: ['10.0.0.1', '::1'], 'localhost-only': undefined,
    'state-dir': '/s', config: undefined, 'config-dir': undefined, socket: undefined, interface: ['eth0'], ipv6: undefined,
    dbus: false, 'instance-name': undefined,
  });
  assert.equal(parseServeArgv(['--quiet', 'serve'])?.quiet, true);
  assert.equal(parseServeArgv(['serve'])?.dbus, true);
  for (const argv of [
    ['serve', '--help'], ['serve', '-h'], ['--version', 'serve'], ['serve', '--bogus'], ['serve', 'extra'], ['dump'],
    ['serve', '--port', 'abc'], ['serve', '--port', '0x10'], ['serve', '--port', '1', '--port', '2'], ['serve', '--port'],
    ['serve', '--state-dir'], ['serve', '--state-dir', ''], ['serve', '--dbus', '--no-dbus'], ['serve', '-qv'],
    ['serve', '--stateDir', '/s'], ['serve', '--ipv6=false'], ['serve', '--', 'x'], ['publish', 'serve'],
  ]) {
    assert.equal(parseServeArgv(argv), undefined, argv.join(' '));
  }
});
