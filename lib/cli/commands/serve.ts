/** `passim serve`: run the daemon in the foreground until SIGTERM/SIGINT. */
import type { Argv, CommandModule } from 'yargs';
import { handler, type GlobalArgs } from '../base.js';
import { DEFAULT_PORT } from '../../core/defaults.js';

interface ServeArgs extends GlobalArgs {
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

export const serveCommand: CommandModule<GlobalArgs, ServeArgs> = {
  command: 'serve',
  describe: 'run the daemon in the foreground: store, HTTPS server, mDNS, control socket',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('port', { type: 'number', describe: `HTTPS port (default ${DEFAULT_PORT}, or Port= in passim.conf)`, requiresArg: true })
      .option('bind', { type: 'string', array: true, describe: 'address to listen on (repeatable; default all)', requiresArg: true })
      .option('localhost-only', { type: 'boolean', describe: 'serve loopback clients only and do not advertise' })
      .option('state-dir', { type: 'string', describe: 'store, audit log and TLS key (env PASSIM_STATE_DIR)', requiresArg: true })
      .option('config', { type: 'string', describe: 'the passim.conf file to read (must exist)', requiresArg: true })
      .option('config-dir', { type: 'string', describe: 'dir holding passim.conf and passim.d/ (env PASSIM_CONFIG_DIR)', requiresArg: true })
      .option('socket', { type: 'string', describe: 'control socket path (env PASSIM_SOCKET)', requiresArg: true })
      .option('interface', { type: 'string', array: true, describe: 'network interface for mDNS (repeatable; default all)', requiresArg: true })
      .option('ipv6', { type: 'boolean', describe: 'also use IPv6 for mDNS' })
      .option('dbus', { type: 'boolean', default: true, describe: 'offer org.freedesktop.Passim on the system bus when there is one (--no-dbus to skip)' })
      .option('instance-name', { type: 'string', hidden: true, requiresArg: true }) as unknown as Argv<ServeArgs>,
  handler: handler<ServeArgs>(async (args) => {
    const { resolveSettings } = await import('../../daemon/options.js');
    const { createLogger } = await import('../../core/logger.js');
    const { Daemon } = await import('../../daemon/daemon.js');
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
  }),
};
