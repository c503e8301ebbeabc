/**
 * D-Bus error names as upstream passimd sends them, so that GDBus clients (fwupd's libpassim)
 * decode them back into the same GError domain and code.
 *
 * Upstream returns GIOErrors through g_dbus_method_invocation_return_gerror(); GDBus has no
 * registered D-Bus name for G_IO_ERROR, so it encodes them as
 * `org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code<N>` (the quark name
 * "g-io-error-quark" with '-' escaped as _2d). A GDBus client turns that name back into
 * G_IO_ERROR/N, which is how fwupd recognises "already published" with
 * g_error_matches(error, G_IO_ERROR, G_IO_ERROR_EXISTS).
 */
import {
  ChecksumMismatchError,
  InvalidHashError,
  InvalidNameError,
  ItemExistsError,
  NotFoundError,
  PermissionError,
  TooLargeError,
  UsageError,
} from '../core/errors.js';

/** GIOErrorEnum values that passim uses (gio/gioenums.h). */
export const GIoErrorCode = {
  FAILED: 0,
  NOT_FOUND: 1,
  EXISTS: 2,
  INVALID_ARGUMENT: 13,
  PERMISSION_DENIED: 14,
  NOT_SUPPORTED: 15,
  INVALID_DATA: 35,
} as const;

/** The D-Bus error name GDBus uses for an unregistered G_IO_ERROR code. */
export function gioErrorName(code: number): string {
  return `org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code${code}`;
}

/** fwupd matches this one exactly: the item is already in the store. */
export const ERROR_ITEM_EXISTS = gioErrorName(GIoErrorCode.EXISTS);
export const ERROR_NOT_FOUND = gioErrorName(GIoErrorCode.NOT_FOUND);
export const ERROR_INVALID_DATA = gioErrorName(GIoErrorCode.INVALID_DATA);
export const ERROR_ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied';
export const ERROR_INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs';
export const ERROR_NOT_SUPPORTED = 'org.freedesktop.DBus.Error.NotSupported';
export const ERROR_FAILED = 'org.freedesktop.DBus.Error.Failed';
export const ERROR_UNKNOWN_METHOD = 'org.freedesktop.DBus.Error.UnknownMethod';

/** A reply error: a D-Bus error name and its message text. */
export class DbusReplyError extends Error {
  constructor(readonly errorName: string, message: string) {
    super(message);
    this.name = 'DbusReplyError';
  }
}

/** Maps anything a handler threw to the D-Bus error name + text it is answered with. */
export function toDbusError(err: unknown): { name: string; text: string } {
  if (err instanceof DbusReplyError) return { name: err.errorName, text: err.message };
  const text = err instanceof Error ? err.message : String(err);
  if (err instanceof ItemExistsError) return { name: ERROR_ITEM_EXISTS, text };
  if (err instanceof NotFoundError) return { name: ERROR_NOT_FOUND, text };
  if (err instanceof PermissionError) return { name: ERROR_ACCESS_DENIED, text };
  // upstream: "Failed to load file, size limit is …" as G_IO_ERROR_INVALID_DATA
  if (err instanceof TooLargeError) return { name: ERROR_INVALID_DATA, text };
  if (err instanceof ChecksumMismatchError) return { name: ERROR_INVALID_DATA, text };
  if (err instanceof InvalidNameError || err instanceof InvalidHashError || err instanceof UsageError) {
    return { name: ERROR_INVALID_ARGS, text };
  }
  return { name: ERROR_FAILED, text };
}
