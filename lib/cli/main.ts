/** The `passim` command line: global flags, then one module per command in commands/. */
import yargs from 'yargs';
import { ExitCode } from '../core/errors.js';
import { version } from '../core/version.js';
import { commands } from './commands/index.js';

export function buildParser(argv: string[]) {
  let y = yargs(argv)
    .scriptName('passim')
    .usage('$0 <command> [options]\n\nShare downloads between machines on a LAN, verified by sha256.')
    .option('json', { type: 'boolean', describe: 'print data as JSON' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'print less' })
    .option('verbose', { alias: 'v', type: 'boolean', describe: 'print more, and stack traces on errors' })
    .version(version())
    .help()
    .alias('help', 'h')
    .strict()
    .demandCommand(1, 'a command is required; see passim --help')
    .recommendCommands()
    .wrap(Math.min(100, process.stdout.columns || 80))
    .fail((msg, err, yy) => {
      if (err) throw err;
      process.stderr.write(`passim: error: ${msg}\n`);
      process.stderr.write(`Try "passim ${argv.find((a) => !a.startsWith('-')) ?? ''} --help".`.replace('  ', ' ') + '\n');
      process.exit(ExitCode.USAGE);
      return yy;
    });
  for (const c of commands) y = y.command(c as never);
  return y;
}

export async function main(argv: string[]): Promise<void> {
  await buildParser(argv).parseAsync();
}
