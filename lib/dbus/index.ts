/** The fwupd-compatible D-Bus interface (org.freedesktop.Passim); see service.ts. */
export { startDbusService, fdPassingAvailable, statusCode, PassimStatus, DBUS_NAME, DBUS_INTERFACE, DBUS_PATH } from './service.js';
export type { DbusService, DbusServiceOptions } from './service.js';
export { ERROR_ITEM_EXISTS, gioErrorName } from './errors.js';
