#!/usr/bin/python3
"""A GDBus client that talks to org.freedesktop.Passim the way fwupd's libpassim does
(libpassim/passim-client.c): a GDBusProxy for the properties, Publish with the file as a
GUnixFDList handle and the item as a{sv}, and GError matching on the reply.

Usage: gdbus_client.py ADDRESS COMMAND [ARGS...]; prints one JSON object.
  props                                     cached proxy properties
  items                                     GetItems()
  publish FILE BASENAME MAX_AGE SHARE_LIMIT [FLAGS]
  unpublish HASH
  publish-pipe DATA BASENAME                Publish from the read end of a pipe
  publish-many N PREFIX                     N concurrent Publish calls ("PREFIX i\n" each)
  own                                       RequestName(org.freedesktop.Passim)
  publish-nofd BASENAME                     Publish with a handle index but no fd attached
  publish-fdnum FILE BASENAME               Publish as libpassim's passim_client_publish does: one fd
                                            attached, and the handle is that fd's NUMBER in this
                                            process (e.g. 7), not its index 0 in the fd list
  publish-handle HANDLE BASENAME FILE...    Publish with one fd per FILE attached (in order) and
                                            the handle value HANDLE
  getitems-with-fds N                       GetItems() with N unrelated fds attached
"""
import json
import os
import sys

from gi.repository import Gio, GLib

NAME = "org.freedesktop.Passim"
PATH = "/"
IFACE = "org.freedesktop.Passim"


def error_json(e):
    return {
        "domain": e.domain,
        "code": e.code,
        "remote": Gio.DBusError.get_remote_error(e),
        "message": e.message,
        "is_io_exists": e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.EXISTS),
        "is_io_not_found": e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND),
        "is_access_denied": e.matches(Gio.dbus_error_quark(), Gio.DBusError.ACCESS_DENIED),
        "is_invalid_args": e.matches(Gio.dbus_error_quark(), Gio.DBusError.INVALID_ARGS),
    }


def unpack(value):
    if isinstance(value, dict):
        return {k: unpack(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [unpack(v) for v in value]
    return value


def main():
    address, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    conn = Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None,
        None,
    )
    out = {"uid": os.getuid()}
    try:
        if cmd == "props":
            proxy = Gio.DBusProxy.new_sync(
                conn, Gio.DBusProxyFlags.DO_NOT_CONNECT_SIGNALS, None, NAME, PATH, IFACE, None
            )
            props = {}
            for key in ("DaemonVersion", "Uri", "Name", "Status", "DownloadSaving", "CarbonSaving"):
                v = proxy.get_cached_property(key)
                props[key] = None if v is None else {"type": v.get_type_string(), "value": v.unpack()}
            out["props"] = props
        elif cmd == "items":
            ret = conn.call_sync(NAME, PATH, IFACE, "GetItems", None, GLib.VariantType("(aa{sv})"),
                                 Gio.DBusCallFlags.NONE, 5000, None)
            items = ret.get_child_value(0)
            out["items"] = []
            for i in range(items.n_children()):
                item = items.get_child_value(i)
                types = {}
                for j in range(item.n_children()):
                    entry = item.get_child_value(j)
                    types[entry.get_child_value(0).get_string()] = entry.get_child_value(1).get_variant().get_type_string()
                out["items"].append({"values": unpack(item.unpack()), "types": types})
        elif cmd == "publish":
            fn, basename, max_age, share_limit = args[0], args[1], int(args[2]), int(args[3])
            flags = int(args[4]) if len(args) > 4 else 0
            fd = os.open(fn, os.O_RDONLY)
            fd_list = Gio.UnixFDList.new()
            idx = fd_list.append(fd)
            os.close(fd)
            attrs = {
                "filename": GLib.Variant("s", basename),
                "max-age": GLib.Variant("u", max_age),
                "share-limit": GLib.Variant("u", share_limit),
            }
            if flags:
                attrs["flags"] = GLib.Variant("t", flags)
            conn.call_with_unix_fd_list_sync(NAME, PATH, IFACE, "Publish",
                                             GLib.Variant("(ha{sv})", (idx, attrs)), None,
                                             Gio.DBusCallFlags.NONE, 30000, fd_list, None)
            out["ok"] = True
        elif cmd == "publish-pipe":
            data, basename = args[0].encode(), args[1]
            r, w = os.pipe()
            os.write(w, data)
            os.close(w)
            fd_list = Gio.UnixFDList.new()
            idx = fd_list.append(r)
            os.close(r)
            conn.call_with_unix_fd_list_sync(NAME, PATH, IFACE, "Publish",
                                             GLib.Variant("(ha{sv})", (idx, {"filename": GLib.Variant("s", basename)})),
                                             None, Gio.DBusCallFlags.NONE, 30000, fd_list, None)
            out["ok"] = True
        elif cmd == "publish-many":
            # N Publish calls in flight at once on one connection, so that the daemon may get
            # several messages (and their fds) in one read
            count, prefix = int(args[0]), args[1]
            loop = GLib.MainLoop()
            results = {}

            def done(source, res, i):
                try:
                    conn.call_with_unix_fd_list_finish(res)
                    results[i] = None
                except GLib.Error as e:
                    results[i] = error_json(e)
                if len(results) == count:
                    loop.quit()

            for i in range(count):
                r, w = os.pipe()
                os.write(w, ("%s %d\n" % (prefix, i)).encode())
                os.close(w)
                fd_list = Gio.UnixFDList.new()
                idx = fd_list.append(r)
                os.close(r)
                conn.call_with_unix_fd_list(NAME, PATH, IFACE, "Publish",
                                            GLib.Variant("(ha{sv})", (idx, {"filename": GLib.Variant("s", "many-%d.txt" % i)})),
                                            None, Gio.DBusCallFlags.NONE, 30000, fd_list, None, done, i)
            loop.run()
            out["errors"] = [results[i] for i in range(count)]
        elif cmd == "own":
            ret = conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                 "RequestName", GLib.Variant("(su)", (NAME, 4)), None,
                                 Gio.DBusCallFlags.NONE, 5000, None)
            out["reply"] = ret.unpack()[0]
        elif cmd == "publish-nofd":
            conn.call_sync(NAME, PATH, IFACE, "Publish",
                           GLib.Variant("(ha{sv})", (0, {"filename": GLib.Variant("s", args[0])})), None,
                           Gio.DBusCallFlags.NONE, 5000, None)
            out["ok"] = True
        elif cmd == "publish-fdnum":
            fn, basename = args[0], args[1]
            fd = os.open(fn, os.O_RDONLY)  # kept open during the call, as libpassim's istream is
            fd_list = Gio.UnixFDList.new()
            fd_list.append(fd)
            out["handle"] = fd
            try:
                conn.call_with_unix_fd_list_sync(NAME, PATH, IFACE, "Publish",
                                                 GLib.Variant("(ha{sv})", (fd, {"filename": GLib.Variant("s", basename)})),
                                                 None, Gio.DBusCallFlags.NONE, 30000, fd_list, None)
            finally:
                os.close(fd)
            out["ok"] = True
        elif cmd == "publish-handle":
            handle, basename, files = int(args[0]), args[1], args[2:]
            fd_list = Gio.UnixFDList.new()
            for fn in files:
                fd = os.open(fn, os.O_RDONLY)
                fd_list.append(fd)
                os.close(fd)
            conn.call_with_unix_fd_list_sync(NAME, PATH, IFACE, "Publish",
                                             GLib.Variant("(ha{sv})", (handle, {"filename": GLib.Variant("s", basename)})),
                                             None, Gio.DBusCallFlags.NONE, 30000, fd_list, None)
            out["ok"] = True
        elif cmd == "unpublish":
            conn.call_sync(NAME, PATH, IFACE, "Unpublish", GLib.Variant("(s)", (args[0],)), None,
                           Gio.DBusCallFlags.NONE, 5000, None)
            out["ok"] = True
        elif cmd == "getitems-with-fds":
            fd_list = Gio.UnixFDList.new()
            for _ in range(int(args[0])):
                fd = os.open("/dev/null", os.O_RDONLY)
                fd_list.append(fd)
                os.close(fd)
            conn.call_with_unix_fd_list_sync(NAME, PATH, IFACE, "GetItems", None, None,
                                             Gio.DBusCallFlags.NONE, 5000, fd_list, None)
            out["ok"] = True
        else:
            raise SystemExit("unknown command " + cmd)
    except GLib.Error as e:
        out["error"] = error_json(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
