/**
 * The daemon's own reading of `passim serve …`, with node:util parseArgs, so the daemon process
 * never loads the CLI parser (yargs and its helpers cost memory for the daemon's whole life).
 *
 * It accepts only the plain forms (`--flag`, `--flag VALUE`, `--flag=VALUE`, repeatable flags
 * repeated, global `--json`/`--quiet`/`-q`/`--verbose`/`-v` before or after `serve`). Anything
 * else — `--help`, `--version`, an unknown or misspelt flag, a value that is not plainly valid, a
 * flag given twice, a positional, `--` — returns undefined, and bin/passim.js hands the command line
 * to the full parser (lib/cli/main.ts), which prints the help or the usage error exactly as before.
 * So help, errors and every flag behave identically; only the happy path is parsed here.
 */
import type { ServeArgs } from './serve-run.js';
import { GLOBAL_OPTIONS, plainArgv, plainInt } from './plain-argv.js';

const OPTIONS = {
  ...GLOBAL_OPTIONS,
  port: { type: 'string' },
  bind: { type: 'string', multiple: true },
  'localhost-only': { type: 'boolean' },
  'state-dir': { type: 'string' },
  config: { type: 'string' },
  'config-dir': { type: 'string' },
  socket: { type: 'string' },
  interface: { type: 'string', multiple: true },
  ipv6: { type: 'boolean' },
  dbus: { type: 'boolean' },
  'no-dbus': { type: 'boolean' },
  'instance-name': { type: 'string' },
} as const;

/** The serve flags of a plain `passim [globals] serve [flags]`, or undefined: use the full parser. */
export function parseServeArgv(argv: readonly string[]): ServeArgs | undefined {
  const p = plainArgv(argv, 'serve', OPTIONS, { repeatable: ['bind', 'interface'], negations: { 'no-dbus': 'dbus' }, maxArgs: 0 });
  if (!p) return undefined;
  const v = p.values;
  const port = plainInt(v.port);
  if (port !== undefined && !(port <= 99_999)) return undefined;
  return {
    json: v.json,
    quiet: v.quiet,
    verbose: v.verbose,
    port,
    bind: v.bind,
    'localhost-only': v['localhost-only'],
    'state-dir': v['state-dir'],
    config: v.config,
    'config-dir': v['config-dir'],
    socket: v.socket,
    interface: v.interface,
    ipv6: v.ipv6,
    dbus: v['no-dbus'] ? false : true,
    'instance-name': v['instance-name'],
  };
}
