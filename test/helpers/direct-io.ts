/**
 * Direct I/O facts for tests: whether a directory's filesystem takes O_DIRECT writes, and how much
 * of a file is in the page cache (fincore, from util-linux-extra: callers skip with requires()).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Whether `dir`'s filesystem takes an O_DIRECT write (from page-aligned memory: a WebAssembly memory's). */
export function directWorks(dir: string): boolean {
  const path = join(dir, '.probe-direct');
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT);
  } catch {
    return false;
  }
  try {
    const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly;
    const page = new Uint8Array(new wasm.Memory({ initial: 1 }).buffer, 0, 4096);
    return writeSync(fd, page, 0, 4096, 0) === 4096;
  } catch {
    return false;
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
}

/** Bytes of `path` in the page cache now. */
export function pageCacheBytes(path: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' }).trim());
}
