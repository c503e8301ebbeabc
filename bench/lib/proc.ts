/** Running and timing commands, on the machine or inside a LAN namespace. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = resolve(ROOT, 'bin/passim.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** wall time from spawn to exit, ms */
  ms: number;
}

export interface RunOptions {
  /** network namespace to run in (`ip netns exec NS …`) */
  ns?: string;
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  /** keep stdout (default true); false discards it (big downloads to stdout) */
  captureStdout?: boolean;
}

/** Spawns and waits; never throws on a non-zero exit (the caller checks `code`). */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = opts.ns ? ['ip', ['netns', 'exec', opts.ns, cmd, ...args]] as const : [cmd, args] as const;
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv[1], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', opts.captureStdout === false ? 'ignore' : 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { if (stderr.length < 1e6) stderr += d.toString(); });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (e) => { if (timer) clearTimeout(timer); rej(e); });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      res({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** Runs and throws with stderr when the exit code is not 0. */
export async function runOk(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ').slice(0, 200)} → exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  return r;
}

/** `node bin/passim.js …`; with env BENCH_CPU_PROF=DIR every CLI run writes a V8 CPU profile there (profiling, not timing). */
export function passim(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
  return run(process.execPath, [...prof, BIN, ...args], opts);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resident set (VmRSS) and its high-water mark (VmHWM) of a process, bytes; undefined once it is gone. */
export async function memOf(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const s = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** CPU time (user + sys) a process has used so far, seconds (clock ticks of 1/100 s); undefined once it is gone. */
export async function cpuOf(pid: number): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    // fields after the parenthesised command name: state is field 3, utime 14, stime 15
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}
