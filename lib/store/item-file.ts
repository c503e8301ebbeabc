/** Names of files in the data dir: items are `<sha256>-<basename>`, temp files are dot-prefixed. */
import { randomBytes } from 'node:crypto';
import { isSha256 } from '../core/sha256.js';
import { isValidBasename } from '../core/basename.js';

/** Prefix of the temp files publish writes; load() deletes any it finds (a crash left them). */
export const TEMP_PREFIX = '.passim-tmp-';

export function itemFileName(hash: string, basename: string): string {
  return `${hash}-${basename}`;
}

/** Splits `<sha256>-<basename>` at the first '-'; undefined when the name is not an item. */
export function parseItemFileName(name: string): { hash: string; basename: string } | undefined {
  const dash = name.indexOf('-');
  if (dash < 0) return undefined;
  const hash = name.slice(0, dash);
  const basename = name.slice(dash + 1);
  if (!isSha256(hash) || !isValidBasename(basename)) return undefined;
  return { hash: hash.toLowerCase(), basename };
}

export function tempFileName(): string {
  return `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`;
}

export function isTempFileName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}
