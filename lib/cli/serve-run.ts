/**
 * What `passim serve` does once its flags are read (by yargs in commands/serve.ts, or by
 * serve-argv.ts on the daemon's lean path): build the daemon, print `ready`, run until SIGTERM/SIGINT,
 * reload on SIGHUP. Everything heavy is imported here, lazily, so neither parser pays for the other.
 */
import type { GlobalArgs } from './base.js';

export interface ServeArgs extends GlobalArgs {
  port?: number;
  bind?: string[];
  'localhost-only'?: boolean;
  'state-dir'?: string;
  config?: string;
  'config-dir'?: string;
  socket?: string;
  interface?: string[];
  ipv6?: boolean;
  'instance-name'?: string;
  dbus?: boolean;
}

export async function runServe(args: ServeArgs): Promise<number> {
  const { applyDaemonV8Flags } = await import('../daemon/v8-flags.js');
  const v8Flags = applyDaemonV8Flags();
  const { resolveSettings } = await import('../daemon/options.js');
  const { createLogger } = await import('../core/logger.js');
  const { Daemon } = await import('../daemon/daemon.js');
  const log = createLogger(args.verbose ? 'debug' : args.quiet ? 'warn' : 'info');
  const flags = {
    port: args.port,
    bind: args.bind,
    localhostOnly: args['localhost-only'],
    stateDir: args['state-dir'],
    config: args.config,
    configDir: args['config-dir'],
    socket: args.socket,
    interface: args.interface,
    ipv6: args.ipv6,
  };
  const settings = await resolveSettings(flags);
  for (const w of settings.warnings) log.warn(w);
  log.debug(`V8 flags: ${v8Flags.join(' ') || 'none'}`);
  const daemon = new Daemon(settings, log, {
    instanceName: args['instance-name'],
    dbus: args.dbus,
    // SIGHUP re-reads passim.conf; command-line flags still win over it
    loadConfig: () => resolveSettings(flags),
  });
  await daemon.start();
  // handlers before "ready": whoever waits for that line may signal at once
  const stopped = new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info(`${sig}: shutting down`);
      daemon.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      log.info('SIGHUP: reloading configuration');
      daemon.reload().catch((err: Error) => log.error(`reload: ${err.message}`));
    });
  });
  if (!args.quiet) process.stdout.write(`ready port=${daemon.port} socket=${settings.paths.socketPath} name=${daemon.instanceName}\n`);
  await stopped;
  return 0;
}
