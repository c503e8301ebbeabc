/** `passim publish FILE [MAX-AGE [SHARE-LIMIT]]`: the client streams FILE into the daemon's store. */
import type { Argv, CommandModule } from 'yargs';
import { countError } from '../../control/api.js';
import { handler, print, withSocket, type SocketArgs } from '../base.js';
import { DEFAULT_MAX_AGE, DEFAULT_SHARE_LIMIT } from '../../core/defaults.js';

interface PublishArgs extends SocketArgs {
  file: string;
  max_age?: string;
  share_limit?: string;
  'max-age'?: string;
  'share-limit'?: string;
  name?: string;
  'next-reboot'?: boolean;
}

export const publishCommand: CommandModule<SocketArgs, PublishArgs> = {
  command: 'publish <file> [max_age] [share_limit]',
  describe: 'add a copy of FILE to the daemon\'s store (the client reads the file and streams it)',
  builder: (y: Argv<SocketArgs>) =>
    withSocket(y)
      .positional('file', { type: 'string', describe: 'the file to publish', demandOption: true })
      .positional('max_age', { type: 'string', describe: 'same as --max-age' })
      .positional('share_limit', { type: 'string', describe: 'same as --share-limit' })
      .option('max-age', { type: 'string', describe: `seconds until the item expires (default ${DEFAULT_MAX_AGE}; 0 = never)`, requiresArg: true })
      .option('share-limit', { type: 'string', describe: `times it may be served to peers (default ${DEFAULT_SHARE_LIMIT}; 0 = unlimited)`, requiresArg: true })
      .option('name', { type: 'string', describe: 'basename to publish under (default: the file\'s)', requiresArg: true })
      .option('next-reboot', { type: 'boolean', describe: 'keep it disabled (not served, not advertised) until the next reboot' })
      .check((a) => {
        // a string (not a throw) makes yargs report a usage error: exit 2
        if (a.max_age !== undefined && a['max-age'] !== undefined) return 'max-age given twice (argument and --max-age)';
        if (a.share_limit !== undefined && a['share-limit'] !== undefined) return 'share-limit given twice (argument and --share-limit)';
        for (const [v, what] of [[a.max_age ?? a['max-age'], 'max-age'], [a.share_limit ?? a['share-limit'], 'share-limit']] as const) {
          const e = countError(v as string | undefined, what);
          if (e) return e;
        }
        if (typeof a.file !== 'string' || a.file === '') return 'FILE must be a non-empty path';
        if (a.name !== undefined && (typeof a.name !== 'string' || a.name === '')) return '--name must not be empty';
        return true;
      })
      .example('$0 publish ./firmware.cab 2592000 50', 'share for 30 days, at most 50 times')
      .example('$0 publish ./repomd.xml --name repomd.xml --share-limit 20', '') as unknown as Argv<PublishArgs>,
  handler: handler<PublishArgs>(async (args) => {
    const { basename } = await import('node:path');
    const { validateBasename } = await import('../../core/basename.js');
    const { resolvePaths } = await import('../../core/paths.js');
    const { ControlClient } = await import('../../control/client.js');
    const { plainItemLine } = await import('../../control/format.js');

    const name = validateBasename(args.name ?? basename(args.file));
    const maxAge = args.max_age ?? args['max-age'];
    const shareLimit = args.share_limit ?? args['share-limit'];
    const client = new ControlClient(resolvePaths({ socketPath: args.socket }).socketPath);
    try {
      // the client opens the file (a missing or unreadable one fails before the daemon is asked)
      const item = await client.publish(args.file, {
        name,
        maxAge: maxAge === undefined ? undefined : Number(maxAge),
        shareLimit: shareLimit === undefined ? undefined : Number(shareLimit),
        nextReboot: args['next-reboot'] || undefined,
        cmdline: commandLine(),
      });
      print(args, item, () => plainItemLine(item));
    } finally {
      await client.close();
    }
  }),
};

/** This process's command line as the user typed it, for the audit log. */
export function commandLine(): string {
  const argv = process.argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`));
  return ['passim', ...argv].join(' ');
}
