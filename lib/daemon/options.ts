/** Merges defaults, passim.conf and command-line flags (flags win) into what the daemon runs with. */
import { configFile, resolvePaths, type Paths } from '../core/paths.js';
import { loadDaemonConfig, type DaemonConfig } from '../core/config.js';
import { UsageError } from '../core/errors.js';
import { isIP } from 'node:net';

export interface ServeFlags {
  port?: number;
  bind?: string[];
  localhostOnly?: boolean;
  stateDir?: string;
  config?: string;
  configDir?: string;
  socket?: string;
  interface?: string[];
  ipv6?: boolean;
}

export interface DaemonSettings {
  paths: Paths;
  configPath: string;
  config: DaemonConfig;
  warnings: string[];
}

export async function resolveSettings(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): Promise<DaemonSettings> {
  const paths = resolvePaths({ stateDir: flags.stateDir, configDir: flags.configDir, socketPath: flags.socket }, env);
  const configPath = flags.config ?? configFile(paths.configDir);
  const { config, warnings } = await loadDaemonConfig(configPath, flags.config !== undefined);
  if (flags.port !== undefined) {
    if (!Number.isInteger(flags.port) || flags.port < 0 || flags.port > 65535) throw new UsageError(`--port must be 0–65535, got ${flags.port}`);
    config.port = flags.port;
  }
  if (flags.bind && flags.bind.length) {
    for (const b of flags.bind) if (!isIP(b)) throw new UsageError(`--bind needs an IP address, got ${JSON.stringify(b)}`);
    config.bind = [...flags.bind];
  }
  if (flags.localhostOnly !== undefined) config.localhostOnly = flags.localhostOnly;
  if (flags.interface && flags.interface.length) config.interfaces = [...flags.interface];
  if (flags.ipv6 !== undefined) config.ipv6 = flags.ipv6;
  return { paths, configPath, config, warnings };
}
