/**
 * Starts the real `passim serve` (bin/passim.js, compiled dist/) in temp dirs on a free port, with
 * mDNS pinned to loopback so a single-host test never multicasts on the machine's interfaces.
 * Multi-host tests start daemons inside network namespaces instead (test/helpers/netns.ts).
 */
import { execa, type ResultPromise } from 'execa';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { LanHost } from './netns.js';

export const BIN = resolve(import.meta.dirname, '../../bin/passim.js');

export interface TestDaemon {
  port: number;
  name: string;
  socket: string;
  stateDir: string;
  configDir: string;
  root: string;
  proc: ResultPromise;
  stderr(): string;
  /** SIGTERM and wait for exit */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit */
  kill9(): Promise<void>;
  /** remove the temp dirs (after stop) */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  /** reuse dirs of an earlier daemon (restart tests) */
  root?: string;
  args?: string[];
  env?: Record<string, string>;
  /** ms to wait for "ready"; default 15000 */
  readyTimeout?: number;
  /** run inside this network-namespace host (test/helpers/netns.ts): mDNS on its eth0, port 27500 */
  host?: LanHost;
  /** node options before bin/passim.js (e.g. --import a module tracer) */
  nodeArgs?: string[];
}

export async function makeRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'passim-test-'));
  await mkdir(join(root, 'config'), { recursive: true });
  return root;
}

/** Resolves with the first stdout line matching /^ready /, rejects if the process exits first. */
export async function startDaemon(opts: StartOptions = {}): Promise<TestDaemon> {
  const root = opts.root ?? (await makeRoot());
  const stateDir = join(root, 'state');
  const configDir = join(root, 'config');
  const socket = join(root, 'passim.sock');
  const args = [...(opts.nodeArgs ?? []), BIN, 'serve', '--state-dir', stateDir, '--config-dir', configDir, '--socket', socket,
    ...(opts.host ? ['--interface', 'eth0'] : ['--port', '0', '--interface', 'lo']), '--no-dbus', ...(opts.args ?? [])];
  const execOpts = { env: { ...opts.env }, reject: false, buffer: false, stdin: 'ignore' } as const;
  const proc = opts.host ? opts.host.spawn('node', args, execOpts) : execa('node', args, execOpts);
  let errText = '';
  proc.stderr?.on('data', (d: Buffer) => { errText += d.toString(); });
  const lines = createInterface({ input: proc.stdout! });
  const ready = await new Promise<{ port: number; name: string }>((res, rej) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); rej(new Error(`daemon not ready in time; stderr:\n${errText}`)); }, opts.readyTimeout ?? 15000);
    lines.on('line', (line) => {
      const m = /^ready port=(\d+) socket=\S+ name=(.*)$/.exec(line);
      if (m) { clearTimeout(timer); res({ port: Number(m[1]), name: m[2] }); }
    });
    proc.then((r) => { clearTimeout(timer); rej(new Error(`daemon exited (${r.exitCode}) before ready; stderr:\n${errText}`)); });
  });
  const waitExit = () => proc.then(() => undefined);
  return {
    ...ready,
    socket,
    stateDir,
    configDir,
    root,
    proc,
    stderr: () => errText,
    async stop() { if (proc.exitCode === undefined || proc.exitCode === null) proc.kill('SIGTERM'); await waitExit(); },
    async kill9() { proc.kill('SIGKILL'); await waitExit(); },
    async cleanup() { await rm(root, { recursive: true, force: true }); },
  };
}

/** Runs the real CLI; never throws on a non-zero exit. */
export async function passim(args: string[], opts: { env?: Record<string, string>; input?: string | Buffer; cwd?: string; host?: LanHost } = {}) {
  const o = { env: opts.env, reject: false, input: opts.input, cwd: opts.cwd, stripFinalNewline: false, encoding: 'utf8' } as const;
  const r = opts.host ? await opts.host.exec('node', [BIN, ...args], o) : await execa('node', [BIN, ...args], o);
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
