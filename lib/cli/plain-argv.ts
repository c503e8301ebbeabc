/**
 * The lean paths' reading of a command line (serve-argv.ts, fetch-argv.ts): node:util parseArgs
 * for the plain forms only, so a command that must start fast (fetch) or stay small (serve) never
 * loads the CLI parser. It returns undefined for anything but `passim [globals] COMMAND [flags]
 * [args]` with each flag once (repeatable ones excepted), no empty value, no grouped short flags
 * and no `--`: bin/passim.js then hands the line to the full parser (lib/cli/main.ts), which
 * prints the help or the usage error exactly as it always did.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** The global flags every command takes (lib/cli/main.ts). */
export const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean', short: 'v' },
} as const;

type Options = NonNullable<ParseArgsConfig['options']>;

export interface PlainArgv<O extends Options> {
  values: ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: true }>>['values'];
  /** the arguments after the command */
  args: string[];
}

/**
 * `argv` read with `options` when it is a plain `command` line; `repeatable` flags may come more
 * than once; `negations` maps a `no-X` flag to the X it negates (X and no-X together: declined).
 */
export function plainArgv<O extends Options>(argv: readonly string[], command: string, options: O, o: { repeatable?: readonly string[]; negations?: Record<string, string>; maxArgs: number }): PlainArgv<O> | undefined {
  if (!argv.includes(command) || argv.includes('--')) return undefined;
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true, tokens: true });
  } catch {
    return undefined;
  }
  const [first, ...args] = parsed.positionals;
  if (first !== command || args.length > o.maxArgs) return undefined;
  const seen = new Set<string>();
  const indexes = new Set<number>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    // short flags only as themselves (-q, -v), never grouped (-qv: two tokens from one arg)
    if (indexes.has(t.index)) return undefined;
    indexes.add(t.index);
    const name = o.negations?.[t.name] ?? t.name;
    if (seen.has(name) && !o.repeatable?.includes(name)) return undefined;
    seen.add(name);
    if (t.value !== undefined && t.value === '') return undefined;
  }
  // a repeatable flag and its negation together (--cdn URL --no-cdn): the full parser's business
  const values = parsed.values as Record<string, unknown>;
  for (const [neg, name] of Object.entries(o.negations ?? {})) if (values[neg] !== undefined && values[name] !== undefined) return undefined;
  return { values: parsed.values as PlainArgv<O>['values'], args };
}

/** A plain non-negative integer flag value, or undefined when absent; NaN when not plain. */
export function plainInt(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  return /^(0|[1-9]\d{0,14})$/.test(v) ? Number(v) : Number.NaN;
}
