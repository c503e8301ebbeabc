/** The `passim` command line: global flags, then one module per command in commands/. */
import yargs from 'yargs';
import { ExitCode } from '../core/errors.js';
import { version } from '../core/version.js';
import { commands } from './commands/index.js';

const NAMES = new Set(commands.flatMap((c) => [String(c.command).split(' ')[0], ...([] as string[]).concat(c.aliases ?? [])]));

/** One line naming the problem (control characters shown escaped), a hint, exit 2. */
function usageError(message: string, argv: string[]): never {
  const line = message.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1)).split('\n')[0];
  const cmd = argv.find((a) => NAMES.has(a));
  process.stderr.write(`passim: error: ${line}\n`);
  process.stderr.write(`Try "passim ${cmd ? `${cmd} ` : ''}--help".\n`);
  process.exit(ExitCode.USAGE);
}

/** The options that may be given more than once (declared `array: true`). */
const REPEATABLE = new Set(['cdn', 'bind', 'interface']);

/**
 * Every other flag or argument given twice arrives as an array a handler does not expect: a usage
 * error, checked once here for every command.
 */
function notRepeated(a: Record<string, unknown>): true | string {
  // longest first, so an option is named by its long form rather than its alias (-o)
  for (const [k, v] of Object.entries(a).sort((x, y) => y[0].length - x[0].length)) {
    // yargs also stores each dashed key under a camelCase name: report the dashed one
    if (k === '_' || k === '$0' || REPEATABLE.has(k) || /[A-Z]/.test(k) || !Array.isArray(v)) continue;
    return `${k.replace(/_/g, '-')} given more than once`;
  }
  return true;
}

export function buildParser(argv: string[]) {
  // yargs skips demandCommand/strict after a bare "--": a command must come before it
  const dd = argv.indexOf('--');
  if (dd >= 0 && !argv.slice(0, dd).some((a) => NAMES.has(a))) usageError('a command is required before "--"; see passim --help', argv);
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
      // a check() that returns a string hands it over as err too, and yargs' own parse errors
      // (YError, e.g. a flag missing its value) come as err: both are usage errors
      if (err && typeof err !== 'string' && err.name !== 'YError') throw err;
      usageError(String(msg ?? (err as Error | undefined)?.message ?? err), argv);
      return yy;
    });
  for (const c of commands) y = y.command(c as never);
  return y.check(notRepeated, true);
}

export async function main(argv: string[]): Promise<void> {
  await buildParser(argv).parseAsync();
}
