/** Default locations (SPEC §3): system paths as root, XDG paths otherwise; env and flags override. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Paths {
  /** store, audit log, TLS key */
  stateDir: string;
  /** holds passim.conf and passim.d/ */
  configDir: string;
  /** the control socket */
  socketPath: string;
}

export interface PathOverrides {
  stateDir?: string;
  configDir?: string;
  socketPath?: string;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Resolves the paths: explicit overrides (flags) beat env, env beats defaults. */
export function resolvePaths(over: PathOverrides = {}, env: NodeJS.ProcessEnv = process.env, root = isRoot()): Paths {
  const home = env.HOME || homedir();
  const stateDir = over.stateDir || env.PASSIM_STATE_DIR ||
    (root ? '/var/lib/passim' : join(env.XDG_STATE_HOME || join(home, '.local', 'state'), 'passim'));
  const configDir = over.configDir || env.PASSIM_CONFIG_DIR ||
    (root ? '/etc' : join(env.XDG_CONFIG_HOME || join(home, '.config'), 'passim'));
  const socketPath = over.socketPath || env.PASSIM_SOCKET ||
    (root ? '/run/passim/passim.sock' : env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'passim.sock') : join(stateDir, 'passim.sock'));
  return { stateDir, configDir, socketPath };
}

/** Where things live inside the state dir. */
export function statePaths(stateDir: string) {
  return {
    dataDir: join(stateDir, 'data'),
    logDir: join(stateDir, 'log'),
    auditLog: join(stateDir, 'log', 'audit.log'),
    tlsKey: join(stateDir, 'tls', 'key.pem'),
    tlsCert: join(stateDir, 'tls', 'cert.pem'),
    lockFile: join(stateDir, 'passim.lock'),
    sharesFile: join(stateDir, 'shares.json'),
    /** static-dir checksums by path and size:mtime (lib/store/checksum-file.ts) */
    staticChecksums: join(stateDir, 'static-checksums.json'),
  };
}

export function configFile(configDir: string): string {
  return join(configDir, 'passim.conf');
}

export function staticConfDir(configDir: string): string {
  return join(configDir, 'passim.d');
}
