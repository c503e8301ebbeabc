/** Checks and fills in the options of a publish before any byte is read. */
import { UsageError } from '../core/errors.js';
import { validateBasename } from '../core/basename.js';
import { normaliseSha256 } from '../core/sha256.js';
import { MAX_U32_VALUE } from './item-metadata.js';
import { DEFAULT_MAX_AGE, DEFAULT_SHARE_LIMIT } from '../core/defaults.js';
import type { PublishOptions } from './types.js';

/** cmdline is informational; ext4 keeps all of a file's xattrs in one 4 KiB block, so keep it short */
export const MAX_CMDLINE_BYTES = 1024;

export interface CheckedPublishOptions {
  basename: string;
  maxAge: number;
  shareLimit: number;
  nextReboot: boolean;
  cmdline?: string;
  expectedSha256?: string;
}

function u32(name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_U32_VALUE) {
    throw new UsageError(`${name} must be a whole number from 0 to ${MAX_U32_VALUE}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function shortCmdline(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new UsageError('cmdline must be a string');
  let s = v.replace(/\0/g, ' ');
  while (Buffer.byteLength(s, 'utf8') > MAX_CMDLINE_BYTES) s = s.slice(0, -1);
  return s.isWellFormed() ? s : s.toWellFormed();
}

export function checkPublishOptions(opts: PublishOptions): CheckedPublishOptions {
  if (!opts || typeof opts !== 'object') throw new UsageError('publish options missing');
  return {
    basename: validateBasename(opts.basename),
    maxAge: u32('max-age', opts.maxAge, DEFAULT_MAX_AGE),
    shareLimit: u32('share-limit', opts.shareLimit, DEFAULT_SHARE_LIMIT),
    nextReboot: opts.nextReboot === true,
    cmdline: shortCmdline(opts.cmdline),
    expectedSha256: opts.expectedSha256 === undefined ? undefined : normaliseSha256(opts.expectedSha256),
  };
}
