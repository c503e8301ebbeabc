/** Where a fetched file goes: its final path and the directory its temp file is written in. */
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PassimError, UsageError } from '../core/errors.js';

export interface OutputTarget {
  /** undefined: stdout */
  final?: string;
  /** the temp file's directory (the target's, so the rename is atomic) */
  dir: string;
}

/**
 * `output` '-' is stdout; an existing directory means `<dir>/<name>`; a path ending in `/` must be
 * an existing directory; otherwise the path itself, whose directory must exist.
 */
export async function resolveOutput(output: string | undefined, name: string): Promise<OutputTarget> {
  if (output === '-') return { dir: tmpdir() };
  let final = resolve(output ?? name);
  const st = await stat(final).catch(() => undefined);
  const inDir = st?.isDirectory() ?? false;
  if (inDir) final = join(final, name);
  else if (output !== undefined && /[/\\]$/.test(output)) throw new UsageError(`output directory does not exist: ${output}`);
  const dir = dirname(final);
  const dst = await stat(dir).catch(() => undefined);
  if (!dst?.isDirectory()) throw new PassimError(`cannot write ${final}: no such directory ${dir}`);
  // the first stat already said the path itself is no directory (a batch stats once less per file)
  if (inDir && (await stat(final).catch(() => undefined))?.isDirectory()) throw new PassimError(`cannot write ${final}: is a directory`);
  return { final, dir };
}
