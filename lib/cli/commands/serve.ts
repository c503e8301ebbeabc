/** `passim serve`: run the daemon in the foreground until SIGTERM/SIGINT (the work is in ../serve-run.ts). */
import type { Argv, CommandModule } from 'yargs';
import { handler, type GlobalArgs } from '../base.js';
import type { ServeArgs } from '../serve-run.js';
import { DEFAULT_PORT } from '../../core/defaults.js';

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
    const { runServe } = await import('../serve-run.js');
    return runServe(args);
  }),
};
