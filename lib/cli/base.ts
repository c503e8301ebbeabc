/**
 * What every command shares: global flags, --json output, and turning any error into one line on
 * stderr plus the exit code of SPEC §2 (a stack trace only with --verbose).
 */
import type { Argv } from 'yargs';
import { ExitCode, PassimError } from '../core/errors.js';
import { normaliseSha256 } from '../core/sha256.js';

export interface GlobalArgs {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

export interface SocketArgs extends GlobalArgs {
  socket?: string;
}

export function withSocket<T>(y: Argv<T>) {
  return y.option('socket', {
    type: 'string',
    describe: 'control socket of the daemon (env PASSIM_SOCKET)',
    requiresArg: true,
  });
}

/** Prints a line of data to stdout: JSON when --json, else the text form. */
export function print(args: GlobalArgs, data: unknown, text: () => string): void {
  if (args.json) {
    process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  } else {
    const t = text();
    if (t) process.stdout.write(t.endsWith('\n') ? t : t + '\n');
  }
}

/** Informational message to stderr, silenced by --quiet. */
export function info(args: GlobalArgs, msg: string): void {
  if (!args.quiet) process.stderr.write(msg + '\n');
}

/** The message normaliseSha256 throws for a value that is not a sha256, for a yargs check. */
export function hashError(value: unknown): string {
  try {
    normaliseSha256(String(value));
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof PassimError) return err.exitCode;
  return ExitCode.ERROR;
}

export function reportError(err: unknown, verbose: boolean): number {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`passim: error: ${msg.split('\n')[0]}\n`);
  if (verbose && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  return exitCodeOf(err);
}

/** Wraps a command handler: errors become an exit code, never an unhandled rejection. */
export function handler<A extends GlobalArgs>(fn: (args: A) => Promise<number | void>) {
  return async (args: A): Promise<void> => {
    try {
      const code = await fn(args);
      process.exitCode = code ?? ExitCode.OK;
    } catch (err) {
      process.exitCode = reportError(err, Boolean(args.verbose));
    }
  };
}
