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
import { parseArgs } from 'node:util';
import type { ServeArgs } from './serve-run.js';

const OPTIONS = {
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean', short: 'v' },
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

const REPEATABLE = new Set(['bind', 'interface']);

/** The serve flags of a plain `passim [globals] serve [flags]`, or undefined: use the full parser. */
export function parseServeArgv(argv: readonly string[]): ServeArgs | undefined {
  if (!argv.includes('serve') || argv.includes('--')) return undefined;
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true, tokens: true });
  } catch {
    return undefined;
  }
  if (parsed.positionals.length !== 1 || parsed.positionals[0] !== 'serve') return undefined;
  const seen = new Set<string>();
  const args = new Set<number>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    // short flags only as themselves (-q, -v), never grouped (-qv: two tokens from one arg)
    if (args.has(t.index)) return undefined;
    args.add(t.index);
    // each non-repeatable flag once
    const name = t.name === 'no-dbus' ? 'dbus' : t.name;
    if (seen.has(name) && !REPEATABLE.has(name)) return undefined;
    seen.add(name);
    if (t.value !== undefined && t.value === '') return undefined;
  }
  const v = parsed.values;
  let port: number | undefined;
  if (v.port !== undefined) {
    if (!/^(0|[1-9]\d{0,4})$/.test(v.port)) return undefined;
    port = Number(v.port);
  }
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
