/** Runs the real ./bin/passim.js (built from lib/ into dist/) as a child process. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/passim.js', import.meta.url));

let built: Promise<void> | undefined;

/** Compiles lib/ to dist/ once per test process (others' type errors do not stop the emit). */
export function buildOnce(): Promise<void> {
  built ??= (async () => {
    await execa('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, reject: false });
    if (!existsSync(new URL('../../dist/cli/main.js', import.meta.url))) throw new Error('build failed: no dist/cli/main.js');
  })();
  return built;
}

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** `passim ARGS…` with a clean environment for passim's own variables. */
export async function passim(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const r = await execa(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    reject: false,
    stdin: 'ignore',
    env: { PASSIM_SOCKET: undefined, PASSIM_STATE_DIR: undefined, PASSIM_CONFIG_DIR: undefined, NO_COLOR: '1', ...env },
    timeout: 60_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** An error is `passim: error: …` on the first line of stderr, and never a stack trace. */
export function assertCleanError(stderr: string): void {
  const lines = stderr.trimEnd().split('\n');
  if (!lines[0]?.startsWith('passim: error: ')) throw new Error(`expected "passim: error: …", got ${JSON.stringify(stderr)}`);
  if (lines.some((l) => /^\s+at /.test(l) || /Error:/.test(l.replace(/^passim: error: /, '')))) {
    throw new Error(`stack trace or raw error on stderr: ${JSON.stringify(stderr)}`);
  }
  if (lines.length > 2 || (lines.length === 2 && !lines[1]!.startsWith('Try "passim'))) {
    throw new Error(`error is more than one line: ${JSON.stringify(stderr)}`);
  }
}
