/** Shared bits for the store tests: temp dirs, a store on them, waiting on store events. */
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { Store } from '../../lib/store/store.js';
import type { StoreOptions } from '../../lib/store/types.js';

const cleanups = new WeakMap<TestContext, Array<() => unknown>>();

/** Runs `fn` when the test ends, after everything registered later (last in, first out). */
export function defer(t: TestContext, fn: () => unknown): void {
  let stack = cleanups.get(t);
  if (!stack) {
    const s: Array<() => unknown> = [];
    cleanups.set(t, s);
    t.after(async () => {
      while (s.length) await s.pop()!();
    });
    stack = s;
  }
  stack.push(fn);
}

export async function tempDir(t: TestContext, prefix = 'passim-store-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function openStore(t: TestContext, opts: StoreOptions): Promise<Store> {
  const store = new Store(opts);
  defer(t, () => store.close());
  await store.load();
  return store;
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function body(data: string | Buffer): Readable {
  return Readable.from([Buffer.from(data)]);
}

export async function listDir(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** `getfattr -e hex` of one attribute: the hex digits, or undefined when absent. */
export function getfattrHex(path: string, name: string): string | undefined {
  try {
    const out = execFileSync('getfattr', ['--absolute-names', '-e', 'hex', '-n', name, path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const m = new RegExp(`^${name.replace(/\./g, '\\.')}=0x([0-9a-f]*)$`, 'm').exec(out);
    return m?.[1];
  } catch {
    return undefined;
  }
}

export function getfattrText(path: string, name: string): string | undefined {
  try {
    return execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', name, path], { stdio: ['ignore', 'pipe', 'ignore'] }).toString('utf8');
  } catch {
    return undefined;
  }
}

export function setfattr(path: string, name: string, value: string): void {
  execFileSync('setfattr', ['-n', name, '-v', value, path]);
}

export function hasAttrTools(): boolean {
  try {
    execFileSync('getfattr', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Resolves with the args of the first `event` whose args satisfy `pred`; rejects after `ms`. */
export function waitForEvent<A extends unknown[]>(
  emitter: Store,
  event: 'added' | 'removed' | 'changed',
  pred: (...args: A) => boolean = () => true,
  ms = 5000,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, fn);
      reject(new Error(`timed out after ${ms} ms waiting for '${event}'`));
    }, ms);
    const fn = (...args: unknown[]) => {
      if (!pred(...(args as A))) return;
      clearTimeout(timer);
      emitter.off(event, fn);
      resolve(args as A);
    };
    emitter.on(event, fn);
  });
}
