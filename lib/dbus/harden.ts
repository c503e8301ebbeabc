/**
 * Two guards around dbus-next's message parser, which runs inside a stream 'readable' handler:
 * an exception there is uncaught and would end the daemon. Anyone allowed to send to us (the
 * policy lets every user call the interface) could trigger one:
 *
 * - a message whose body holds a unix-fd index ('h') that names none of its fds: dbus-next throws
 *   "No FDs available" (or yields undefined). We resolve handles as upstream passimd does (see
 *   resolveHandle) and make the rest read as an UnresolvedHandle, so Publish answers
 *   "invalid handle: …" (InvalidArgs) instead.
 * - anything else the parser may throw on: the message is already consumed when it throws, so
 *   we log it, drop it and carry on parsing what follows.
 *
 * And one correctness fix: dbus-next hands a message every fd received so far, so when several
 * messages arrive in one read, the first steals the fds of the ones after it (concurrent Publish
 * calls then fail with "invalid handle"). We give each message only as many fds as its
 * UNIX_FDS header field says.
 *
 * Both reach into dbus-next 0.10 internals (lib/dbus-buffer.js, the connection stream); if
 * those are not where expected the guards are skipped, never fatal.
 */
import { createRequire } from 'node:module';
import type { Logger } from '../core/logger.js';

const require = createRequire(import.meta.url);
let fdPatchApplied = false;

interface DBusBufferLike {
  fds?: number[];
  readInt32(): number;
}

/** What an 'h' argument that names none of its message's fds reads as. */
export class UnresolvedHandle {
  constructor(readonly handle: number, readonly fdCount: number) {}

  /** the reason Publish gives */
  describe(): string {
    return this.fdCount === 0
      ? `invalid handle: no file descriptor attached to the message (handle ${this.handle})`
      : `invalid handle: ${this.handle} is not an index into the ${this.fdCount} file descriptors attached to the message`;
  }
}

/**
 * The fd an 'h' value stands for, given the fds its message carries. By the D-Bus spec the value
 * is an index into that list, and a valid index always wins. But libpassim's
 * passim_client_publish (what fwupd calls) sends the fd *number* in its own process (e.g. 7) with
 * a one-fd list, and upstream passimd ignores the value and takes the only fd; so with exactly one
 * fd attached, any value takes it. Otherwise (no fds, or several and the value is out of range) the
 * handle is unresolved.
 */
export function resolveHandle(handle: number, fds: readonly number[] | null | undefined): number | UnresolvedHandle {
  const count = Array.isArray(fds) ? fds.length : 0;
  if (count > 0 && Number.isInteger(handle) && handle >= 0 && handle < count) return fds![handle]!;
  if (count === 1) return fds![0]!;
  return new UnresolvedHandle(handle, count);
}

export function patchMissingFdIndex(): boolean {
  if (fdPatchApplied) return true;
  try {
    const DBusBuffer = require('dbus-next/lib/dbus-buffer.js') as { prototype: Record<string, unknown> };
    const original = DBusBuffer.prototype.readSimpleType as ((this: DBusBufferLike, t: string) => unknown) | undefined;
    if (typeof original !== 'function') return false;
    DBusBuffer.prototype.readSimpleType = function (this: DBusBufferLike, t: string): unknown {
      if (t !== 'h') return original.call(this, t);
      return resolveHandle(this.readInt32(), this.fds);
    };
    fdPatchApplied = true;
    return true;
  } catch {
    return false;
  }
}

type Listener = (...args: unknown[]) => void;

/** Wraps the connection stream's 'readable' listeners (the message parser) so a throw drops one message, not the process. */
export function guardParser(stream: NodeJS.EventEmitter | undefined, log: Logger): boolean {
  if (!stream || typeof stream.listeners !== 'function') return false;
  const listeners = stream.listeners('readable') as Listener[];
  if (listeners.length === 0) return false;
  for (const listener of listeners) {
    stream.removeListener('readable', listener);
    stream.on('readable', function guarded(this: unknown, ...args: unknown[]) {
      // each throw consumed one message; go on with the rest of what is buffered
      for (let attempt = 0; attempt < 1000; attempt++) {
        try {
          listener.apply(this, args);
          return;
        } catch (err) {
          log.warn(`D-Bus: dropped a message that could not be parsed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    });
  }
  return true;
}

const UNIX_FDS_FIELD = 9;

interface USocketLike {
  read(size?: number, fdSize?: number | null): unknown;
  _wrap?: { fds?: number[] } | null;
}

/** The UNIX_FDS header field of a message, from its header fields + body (what dbus-next reads after the fixed 16 bytes). */
function unixFdCount(fieldsAndBody: Buffer, endian: number, fieldsLength: number): number {
  const DBusBuffer = require('dbus-next/lib/dbus-buffer.js') as new (buf: Buffer, start: number, endian: number, fds: null, opts: object) => { readArray(t: unknown, len: number): unknown[] };
  const headerSignature = require('dbus-next/lib/header-signature.json') as Array<{ child: unknown[] }>;
  const fields = new DBusBuffer(fieldsAndBody, 0, endian, null, {}).readArray(headerSignature[0]!.child[0], fieldsLength) as Array<[number, [unknown, unknown[]]]>;
  for (const [code, value] of fields) {
    if (code === UNIX_FDS_FIELD) {
      const n = value?.[1]?.[0];
      return typeof n === 'number' ? n : 0;
    }
  }
  return 0;
}

/**
 * Wraps the usocket's read() so the fds given with a message are the ones it declares. dbus-next
 * reads the fixed 16-byte header with read(16) and then the rest with read(n, null) (= "all fds").
 */
export function fixFdAttribution(stream: unknown, log: Logger, delivered: (fds: number[]) => void): boolean {
  const sock = stream as USocketLike | undefined;
  if (!sock || typeof sock.read !== 'function' || !('_wrap' in sock)) return false;
  const read = sock.read;
  let endian = 0x6c; // 'l'
  let fieldsLength = 0;
  sock.read = function (this: USocketLike, size?: number, fdSize?: number | null): unknown {
    if (fdSize !== null) {
      const data = read.call(this, size);
      if (size === 16 && Buffer.isBuffer(data) && data.length === 16) {
        endian = data[0]!;
        fieldsLength = endian === 0x6c ? data.readUInt32LE(12) : data.readUInt32BE(12);
      }
      return data;
    }
    const pending = this._wrap?.fds;
    const data = read.call(this, size);
    if (!Buffer.isBuffer(data)) return data;
    let wanted = 0;
    try {
      wanted = unixFdCount(data, endian, fieldsLength);
    } catch (err) {
      log.debug(`D-Bus: could not read UNIX_FDS: ${err instanceof Error ? err.message : String(err)}`);
    }
    const fds = Array.isArray(pending) ? pending.splice(0, Math.min(wanted, pending.length)) : [];
    if (fds.length > 0) delivered(fds);
    return { data, fds };
  };
  return true;
}

/** fds received but not yet given to any message (closed on shutdown) */
export function pendingFds(stream: unknown): number[] {
  const fds = (stream as USocketLike | undefined)?._wrap?.fds;
  return Array.isArray(fds) ? fds.splice(0, fds.length) : [];
}
