/**
 * Thin wrapper over @napi-rs/xattr: absent attributes are `undefined`, and errors carry the errno
 * (the binding reports them as "… (os error N)").
 */
import xattr from '@napi-rs/xattr';

const ENODATA = 61;
const ENOTSUP = 95;
const EPERM = 1;
const EACCES = 13;
const EROFS = 30;

export function xattrErrno(err: unknown): number | undefined {
  const m = /os error (\d+)/.exec(String((err as Error)?.message ?? ''));
  return m ? Number(m[1]) : undefined;
}

/** The filesystem (or this file) does not take user xattrs. */
export function isXattrUnsupported(err: unknown): boolean {
  const n = xattrErrno(err);
  return n === ENOTSUP || /not supported/i.test(String((err as Error)?.message ?? ''));
}

/** Not allowed to write here: read-only fs, not our file. */
export function isXattrDenied(err: unknown): boolean {
  const n = xattrErrno(err);
  return n === EPERM || n === EACCES || n === EROFS;
}

export async function getXattr(path: string, name: string): Promise<Buffer | undefined> {
  try {
    const v = await xattr.getAttribute(path, name);
    return v ?? undefined;
  } catch (err) {
    if (xattrErrno(err) === ENODATA) return undefined;
    throw err;
  }
}

/** Names of the xattrs a file has (one call, so absent ones need no failing lookups). */
export async function listXattrs(path: string): Promise<string[]> {
  return xattr.listAttributes(path);
}

/** Upstream writes strings without a NUL; tolerate one if another tool added it. */
export function xattrToString(v: Buffer | undefined): string | undefined {
  if (v === undefined) return undefined;
  const end = v.indexOf(0);
  return v.subarray(0, end < 0 ? v.length : end).toString('utf8');
}

export async function getXattrString(path: string, name: string): Promise<string | undefined> {
  return xattrToString(await getXattr(path, name));
}

export async function setXattr(path: string, name: string, value: Buffer | string): Promise<void> {
  await xattr.setAttribute(path, name, value);
}

export async function removeXattr(path: string, name: string): Promise<void> {
  try {
    await xattr.removeAttribute(path, name);
  } catch (err) {
    if (xattrErrno(err) !== ENODATA) throw err;
  }
}

/** Blocking forms, for worker threads (lib/store/checksum-worker.ts), where a thread-pool hop per call costs more than the call. */
export function getXattrStringSync(path: string, name: string): string | undefined {
  try {
    return xattrToString(xattr.getAttributeSync(path, name) ?? undefined);
  } catch (err) {
    if (xattrErrno(err) === ENODATA) return undefined;
    throw err;
  }
}

export function setXattrSync(path: string, name: string, value: string): void {
  xattr.setAttributeSync(path, name, value);
}
