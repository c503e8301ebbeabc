/** Crash-safe small-file writes: temp file in the same dir, fsync, rename, fsync the dir. */
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * fsyncs of one directory, shared by everyone waiting (group commit): sync() resolves once an
 * fsync that began after the call has finished, so whatever the caller renamed into the dir before
 * calling is on disk — but ten publishes finishing together cost two fsyncs, not ten.
 */
export class DirSync {
  #running?: Promise<void>;
  #next?: Promise<void>;

  constructor(readonly dir: string, private readonly fsync: (dir: string) => Promise<void> = fsyncDir) {}

  sync(): Promise<void> {
    if (!this.#running) return this.#start();
    // the running one may have begun before the caller's rename: one more after it, for all who ask meanwhile
    this.#next ??= this.#running.catch(() => {}).then(() => {
      this.#next = undefined;
      return this.#start();
    });
    return this.#next;
  }

  #start(): Promise<void> {
    const p = this.fsync(this.dir).finally(() => {
      if (this.#running === p) this.#running = undefined;
    });
    this.#running = p;
    return p;
  }
}

export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.tmp-${basename(path)}-${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dir);
}

export function isAtomicTempName(name: string): boolean {
  return name.startsWith('.tmp-');
}

/** A crash during writeFileAtomic(path) leaves its temp file (`.tmp-<name>-…`) next to it: deletes those. */
export async function removeAtomicTemps(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `.tmp-${basename(path)}-`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(prefix)) await unlink(join(dir, name)).catch(() => {});
  }
}
