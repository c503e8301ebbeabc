/** Shared bits for the store tests: temp dirs, a store on them, waiting on store events. */
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { Store } from '../../lib/store/store.js';
import type { StoreOptions } from '../../lib/store/types.js';
import { getXattr, isXattrUnsupported, setXattr, xattrToString } from '../../lib/store/xattr.js';

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

/** One xattr as hex digits, or undefined when absent (or the filesystem takes no user xattrs). */
export async function xattrHex(path: string, name: string): Promise<string | undefined> {
  return (await readXattr(path, name))?.toString('hex');
}

/** One xattr as text (up to a NUL, as the store reads it), or undefined when absent. */
export async function xattrText(path: string, name: string): Promise<string | undefined> {
  return xattrToString(await readXattr(path, name));
}

/** Sets an xattr the way `setfattr -v` takes its value: `0x…` is hex bytes, anything else text. */
export async function putXattr(path: string, name: string, value: string): Promise<void> {
  await setXattr(path, name, value.startsWith('0x') ? Buffer.from(value.slice(2), 'hex') : value);
}

/** Reads through the store's own xattr layer (@napi-rs/xattr), so the tests need no `attr` tools. */
async function readXattr(path: string, name: string): Promise<Buffer | undefined> {
  try {
    return await getXattr(path, name);
  } catch (err) {
    if (isXattrUnsupported(err)) return undefined;
    throw err;
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
