/**
 * The fwupd-compatible D-Bus interface of upstream passimd: name and interface
 * `org.freedesktop.Passim`, object `/`, on the system bus.
 *
 *   properties  DaemonVersion s · Uri s · Name s · Status u · DownloadSaving t · CarbonSaving d
 *   methods     GetItems() → aa{sv} · Publish(h fd, a{sv} attrs) · Unpublish(s hash)
 *   signals     Changed() (libpassim reloads its properties on it) + PropertiesChanged
 *
 * Publish and Unpublish are for uid 0 only; the bus daemon tells us the caller's uid. The file
 * comes as a unix fd (SCM_RIGHTS); that needs dbus-next's optional native `usocket`, without it
 * the service still runs and Publish answers NotSupported.
 *
 * Optional at run time: no system bus, or the name held elsewhere → one log line, `undefined`.
 */
import { createRequire } from 'node:module';
import { fstat, close as closeFd, closeSync, createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import dbus from 'dbus-next';
import type { ItemStore } from '../store/types.js';
import type { StatusReply } from '../control/api.js';
import { createLogger, type Logger } from '../core/logger.js';
import { InvalidHashError, PermissionError } from '../core/errors.js';
import { isSha256 } from '../core/sha256.js';
import {
  DbusReplyError,
  ERROR_INVALID_ARGS,
  ERROR_NOT_SUPPORTED,
  ERROR_UNKNOWN_METHOD,
  toDbusError,
} from './errors.js';
import { itemToVardict, parsePublishAttrs } from './item-variant.js';
import { fixFdAttribution, guardParser, patchMissingFdIndex, pendingFds, UnresolvedHandle } from './harden.js';

export const DBUS_NAME = 'org.freedesktop.Passim';
export const DBUS_INTERFACE = 'org.freedesktop.Passim';
export const DBUS_PATH = '/';

/** PassimStatus of libpassim/passim-client.h */
export const PassimStatus = {
  UNKNOWN: 0,
  STARTING: 1,
  LOADING: 2,
  RUNNING: 3,
  DISABLED_METERED: 4,
} as const;

export function statusCode(status: string): number {
  switch (status) {
    case 'starting': return PassimStatus.STARTING;
    case 'loading': return PassimStatus.LOADING;
    case 'running': return PassimStatus.RUNNING;
    case 'disabled-metered': return PassimStatus.DISABLED_METERED;
    default: return PassimStatus.UNKNOWN;
  }
}

export interface DbusServiceOptions {
  store: ItemStore;
  status: () => StatusReply;
  /** 'system' (default) or a D-Bus address such as `unix:path=/tmp/x/bus` (tests) */
  bus?: 'system' | string;
  logger?: Logger;
  /** how long to wait for the bus to answer Hello before giving up; default 5000 ms */
  connectTimeoutMs?: number;
}

export interface DbusService {
  /** Re-read status and savings; emits PropertiesChanged (what changed) and Changed. */
  notify(): void;
  close(): Promise<void>;
}

type Bus = InstanceType<typeof dbus.MessageBus>;
type Msg = InstanceType<typeof dbus.Message>;

const { Message, MessageType } = dbus;
const require = createRequire(import.meta.url);

/** Whether dbus-next can pass unix fds here (its optional native dependency loaded). */
export function fdPassingAvailable(): boolean {
  try {
    require('usocket');
    return true;
  } catch {
    return false;
  }
}

const fstatAsync = promisify(fstat);

function closeQuietly(fd: number): void {
  closeFd(fd, () => {});
}

function closeSyncQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch { /* already closed */ }
}

function destroyAndWait(stream: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.closed) return resolve();
    stream.once('close', () => resolve());
    stream.destroy();
  });
}

/**
 * A readable over a received fd: regular files (and memfds) from their current offset; pipes and
 * sockets as streams. `size`: what is left of a regular file (the store's size hint).
 */
async function streamFromFd(fd: number): Promise<{ source: Readable; size?: number }> {
  let st;
  try {
    st = await fstatAsync(fd);
  } catch (err) {
    closeQuietly(fd);
    throw new DbusReplyError(ERROR_INVALID_ARGS, `invalid handle: ${(err as Error).message}`);
  }
  if (st.isFile()) {
    // no `start`: reads follow the fd's own offset, as GUnixInputStream does upstream (so the
    // size is a hint: all of the file, whatever its offset)
    return { source: createReadStream('', { fd, autoClose: true }), size: st.size };
  }
  if (st.isFIFO() || st.isSocket()) {
    return { source: new Socket({ fd, readable: true, writable: false }) };
  }
  closeQuietly(fd);
  throw new DbusReplyError(ERROR_INVALID_ARGS, 'invalid handle: not a regular file, pipe or socket');
}

function connect(address: 'system' | string, timeoutMs: number): Promise<Bus> {
  return new Promise((resolve, reject) => {
    let bus: Bus;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        try { bus?.disconnect(); } catch { /* already gone */ }
        reject(err);
      } else resolve(bus);
    };
    const timer = setTimeout(() => finish(new Error(`no answer from the bus within ${timeoutMs} ms`)), timeoutMs);
    try {
      bus = address === 'system'
        ? dbus.systemBus({ negotiateUnixFd: true })
        : dbus.sessionBus({ busAddress: address, negotiateUnixFd: true } as Parameters<typeof dbus.sessionBus>[0]);
    } catch (err) {
      finish(err as Error);
      return;
    }
    bus.on('error', (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
    bus.on('connect', () => finish());
  });
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'text' in err) return String((err as { text: unknown }).text);
  return String(err);
}

/** Properties and introspection go through dbus-next's Interface; methods through our own handler (it needs the sender). */
class PassimInterface extends dbus.interface.Interface {
  constructor(private readonly current: () => StatusReply) {
    super(DBUS_INTERFACE);
  }
  get DaemonVersion(): string { return this.current().version; }
  get Uri(): string { return this.current().uri; }
  get Name(): string { return this.current().name; }
  get Status(): number { return statusCode(this.current().status); }
  get DownloadSaving(): bigint {
    const bytes = this.current().downloadSaving;
    return BigInt(Number.isFinite(bytes) && bytes > 0 ? Math.trunc(bytes) : 0);
  }
  get CarbonSaving(): number {
    const kg = this.current().carbonSaving;
    return Number.isFinite(kg) ? kg : 0;
  }
  // declared for introspection only: calls are answered by the method handler in startDbusService
  GetItems(): never { throw new Error('unreachable'); }
  Publish(): never { throw new Error('unreachable'); }
  Unpublish(): never { throw new Error('unreachable'); }
  Changed(): void {}
}

const READ = dbus.interface.ACCESS_READ;
PassimInterface.configureMembers({
  properties: {
    DaemonVersion: { signature: 's', access: READ },
    Uri: { signature: 's', access: READ },
    Name: { signature: 's', access: READ },
    Status: { signature: 'u', access: READ },
    DownloadSaving: { signature: 't', access: READ },
    CarbonSaving: { signature: 'd', access: READ },
  },
  methods: {
    GetItems: { inSignature: '', outSignature: 'aa{sv}' },
    Publish: { inSignature: 'ha{sv}', outSignature: '' },
    Unpublish: { inSignature: 's', outSignature: '' },
  },
  signals: {
    Changed: { signature: '' },
  },
});

interface Snapshot {
  Status: number;
  DownloadSaving: bigint;
  CarbonSaving: number;
  Name: string;
  Uri: string;
  DaemonVersion: string;
}

export async function startDbusService(opts: DbusServiceOptions): Promise<DbusService | undefined> {
  const log = opts.logger ?? createLogger();
  patchMissingFdIndex();
  const address = opts.bus ?? 'system';
  const where = address === 'system' ? 'the system bus' : address;

  let bus: Bus;
  try {
    bus = await connect(address, opts.connectTimeoutMs ?? 5000);
  } catch (err) {
    const code = (err as { code?: unknown } | undefined)?.code;
    const why = code === 'ENOENT' ? 'no bus socket there' : code === 'ECONNREFUSED' ? 'the bus is not running' : describe(err);
    log.info(`D-Bus: not on ${where} (${why}); serving on the control socket only`);
    return undefined;
  }

  let closed = false;
  let releasing = false;
  bus.on('error', (err: unknown) => {
    if (!closed) log.warn(`D-Bus: connection error: ${describe(err)}`);
  });

  const canPassFds = fdPassingAvailable();
  const iface = new PassimInterface(opts.status);

  // --- file descriptors: every fd a message brings is ours to close unless Publish takes it ---
  const unclaimed = new Set<number>();
  const stream = (bus as unknown as { _connection?: { stream?: NodeJS.EventEmitter } })._connection?.stream;
  const track = (fds: unknown) => {
    if (Array.isArray(fds)) for (const fd of fds) if (typeof fd === 'number') unclaimed.add(fd);
  };
  if (!guardParser(stream, log)) log.debug('D-Bus: parser guard not installed (unexpected dbus-next internals)');
  const attributed = canPassFds && fixFdAttribution(stream, log, track);
  // without the attribution fix, count fds as they arrive (dbus-next gives them all to the next message anyway)
  if (canPassFds && !attributed) {
    log.debug('D-Bus: fd attribution fix not installed (unexpected dbus-next internals)');
    stream?.on?.('fds', track);
  }
  let sweepQueued = false;
  const sweep = () => {
    sweepQueued = false;
    for (const fd of unclaimed) closeSyncQuietly(fd);
    unclaimed.clear();
  };
  // after every incoming message has been dispatched (handlers claim synchronously), close the rest
  bus.on('message', () => {
    if (!sweepQueued && unclaimed.size > 0) {
      sweepQueued = true;
      queueMicrotask(sweep);
    }
  });

  const reply = (msg: Msg, signature = '', body: unknown[] = []) => {
    if (!closed) bus.send(Message.newMethodReturn(msg, signature, body));
  };
  const replyError = (msg: Msg, err: unknown) => {
    const { name, text } = toDbusError(err);
    if (!closed) bus.send(Message.newError(msg as unknown as string, name, text));
  };

  const callBusDaemon = async (member: string, sender: string): Promise<number> => {
    const answer = await bus.call(new Message({
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member,
      signature: 's',
      body: [sender],
    }));
    const value = answer?.body?.[0];
    if (typeof value !== 'number') throw new Error(`${member}: unexpected reply`);
    return value;
  };

  /** upstream: only uid 0 may publish or unpublish */
  const requireRoot = async (sender: string) => {
    let uid: number;
    try {
      uid = await callBusDaemon('GetConnectionUnixUser', sender);
    } catch (err) {
      throw new PermissionError(`failed to read user id of caller: ${describe(err)}`);
    }
    if (uid !== 0) throw new PermissionError(`permission denied: UID ${uid} != 0`);
  };

  /** upstream records the basename of the publisher's argv[0] (a hint, not a security check) */
  const callerCmdline = async (sender: string): Promise<string | undefined> => {
    try {
      const pid = await callBusDaemon('GetConnectionUnixProcessID', sender);
      const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      const argv0 = raw.split('\0')[0] ?? '';
      const base = argv0.slice(argv0.lastIndexOf('/') + 1);
      return base || undefined;
    } catch {
      return undefined;
    }
  };

  const getItems = (msg: Msg) => {
    const items = opts.store.list().map(itemToVardict);
    reply(msg, 'aa{sv}', [items]);
  };

  /** `fd` is the received fd Publish takes, or why there is none */
  const publish = async (msg: Msg, fd: number | string, attrs: unknown) => {
    let source: Readable | undefined;
    let failure: unknown;
    try {
      await requireRoot(msg.sender);
      if (typeof fd === 'string') {
        throw new DbusReplyError(canPassFds ? ERROR_INVALID_ARGS : ERROR_NOT_SUPPORTED,
          canPassFds ? fd : 'this passim daemon cannot receive file descriptors over D-Bus (usocket is not installed); use `passim publish`');
      }
      const { opts: publishOpts } = parsePublishAttrs(attrs);
      const cmdline = await callerCmdline(msg.sender);
      const taken = fd;
      fd = 'taken';
      const from = await streamFromFd(taken);
      source = from.source;
      const item = await opts.store.publish(source, { ...publishOpts, cmdline: cmdline ?? publishOpts.cmdline }, from.size);
      log.info(`D-Bus: published ${item.hash} ${item.basename}${cmdline ? ` for ${cmdline}` : ''}`);
    } catch (err) {
      failure = err;
      log.debug(`D-Bus: Publish failed: ${describe(err)}`);
    }
    // the caller's fd is closed before it hears back from us
    if (typeof fd === 'number') closeSyncQuietly(fd);
    if (source) await destroyAndWait(source);
    if (failure === undefined) reply(msg);
    else replyError(msg, failure);
  };

  const unpublish = async (msg: Msg, hash: unknown) => {
    try {
      await requireRoot(msg.sender);
      if (typeof hash !== 'string' || !isSha256(hash)) throw new InvalidHashError(`invalid hash: ${String(hash)}`);
      const item = await opts.store.unpublish(hash.toLowerCase());
      log.info(`D-Bus: unpublished ${item.hash} ${item.basename}`);
      reply(msg);
    } catch (err) {
      replyError(msg, err);
    }
  };

  const methodHandler = (msg: Msg): boolean => {
    if (msg.path !== DBUS_PATH) return false;
    if (msg.interface !== undefined && msg.interface !== DBUS_INTERFACE) return false;
    const signature = msg.signature ?? '';
    const body = Array.isArray(msg.body) ? msg.body : [];
    const badArgs = (want: string) => {
      replyError(msg, new DbusReplyError(ERROR_INVALID_ARGS, `${msg.member}: expected signature '${want}', got '${signature}'`));
      return true;
    };
    switch (msg.member) {
      case 'GetItems':
        if (signature !== '') return badArgs('');
        getItems(msg);
        return true;
      case 'Publish': {
        if (signature !== 'ha{sv}') return badArgs('ha{sv}');
        // claim the fd now, synchronously, before the sweep runs (the parser resolved the handle: harden.ts)
        const handle = body[0];
        const fd = typeof handle === 'number' && unclaimed.delete(handle) ? handle
          : handle instanceof UnresolvedHandle ? handle.describe() : 'invalid handle';
        void publish(msg, fd, body[1]);
        return true;
      }
      case 'Unpublish':
        if (signature !== 's') return badArgs('s');
        void unpublish(msg, body[0]);
        return true;
      default:
        if (msg.interface === DBUS_INTERFACE) {
          replyError(msg, new DbusReplyError(ERROR_UNKNOWN_METHOD, `no such method ${msg.member}`));
          return true;
        }
        return false;
    }
  };
  bus.addMethodHandler(methodHandler);
  bus.export(DBUS_PATH, iface);

  // --- the name: replace an upstream passimd that allows it, as upstream does ---
  const { NameFlag, RequestNameReply } = dbus;
  try {
    const r = await bus.requestName(DBUS_NAME, NameFlag.ALLOW_REPLACEMENT | NameFlag.REPLACE_EXISTING | NameFlag.DO_NOT_QUEUE);
    if (r !== RequestNameReply.PRIMARY_OWNER && r !== RequestNameReply.ALREADY_OWNER) {
      throw new Error(`${DBUS_NAME} is owned by another process`);
    }
  } catch (err) {
    log.info(`D-Bus: cannot own ${DBUS_NAME} on ${where} (${describe(err)}); serving on the control socket only`);
    closed = true;
    stream?.removeListener?.('fds', track);
    bus.disconnect();
    return undefined;
  }
  log.info(`D-Bus: ${DBUS_NAME} on ${where}${canPassFds ? '' : ' (no fd passing: Publish unavailable)'}`);

  // NameLost (sent to us by the bus daemon): another daemon took the name; we go on on the socket
  bus.on('message', (msg: Msg) => {
    if (!releasing && msg.type === MessageType.SIGNAL && msg.member === 'NameLost' && msg.body?.[0] === DBUS_NAME) {
      log.warn(`D-Bus: another service has claimed the name ${DBUS_NAME}`);
    }
  });

  // --- change notification ---
  const snapshot = (): Snapshot => ({
    Status: iface.Status,
    DownloadSaving: iface.DownloadSaving,
    CarbonSaving: iface.CarbonSaving,
    Name: iface.Name,
    Uri: iface.Uri,
    DaemonVersion: iface.DaemonVersion,
  });
  let last = snapshot();
  const emitChanged = () => {
    if (closed) return;
    bus.send(Message.newSignal(DBUS_PATH, DBUS_INTERFACE, 'Changed', '', []));
  };
  const notify = () => {
    if (closed) return;
    let now: Snapshot;
    try {
      now = snapshot();
    } catch (err) {
      log.debug(`D-Bus: status unavailable: ${describe(err)}`);
      return;
    }
    const changed: Record<string, unknown> = {};
    for (const key of Object.keys(now) as Array<keyof Snapshot>) {
      if (now[key] !== last[key]) changed[key] = now[key];
    }
    last = now;
    if (Object.keys(changed).length > 0) dbus.interface.Interface.emitPropertiesChanged(iface, changed, []);
    emitChanged();
  };

  // store events: coalesce a burst (e.g. expiry of many items) into one notification
  let notifyQueued = false;
  const onStoreEvent = () => {
    if (notifyQueued || closed) return;
    notifyQueued = true;
    setImmediate(() => {
      notifyQueued = false;
      notify();
    });
  };
  opts.store.on('added', onStoreEvent);
  opts.store.on('removed', onStoreEvent);
  opts.store.on('changed', onStoreEvent);

  return {
    notify,
    async close() {
      if (closed) return;
      const off = (opts.store as unknown as NodeJS.EventEmitter).removeListener?.bind(opts.store);
      off?.('added', onStoreEvent);
      off?.('removed', onStoreEvent);
      off?.('changed', onStoreEvent);
      releasing = true;
      try {
        await bus.releaseName(DBUS_NAME);
      } catch { /* the bus may already be gone */ }
      closed = true;
      stream?.removeListener?.('fds', track);
      for (const fd of pendingFds(stream)) unclaimed.add(fd);
      sweep();
      bus.removeMethodHandler(methodHandler);
      try { bus.unexport(DBUS_PATH, iface); } catch { /* not exported */ }
      bus.disconnect();
    },
  };
}
