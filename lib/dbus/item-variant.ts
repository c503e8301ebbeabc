/**
 * ItemInfo ⇄ the a{sv} vardict of upstream's PassimItem (libpassim/passim-item.c), the format of
 * GetItems() entries and of Publish()'s attributes. Key names and value types are upstream's:
 *
 *   hash s · filename s · cmdline s · max-age u · share-limit u · share-count u · size t ·
 *   flags t (1 disabled, 2 next-reboot) · ctime x (unix seconds)
 *
 * We also send `basename` (s), the same value as `filename`; libpassim ignores unknown keys.
 */
import dbus from 'dbus-next';
import type { ItemInfo, PublishOptions } from '../store/types.js';
import { MAX_COUNT } from '../control/api.js';
import { DbusReplyError, ERROR_INVALID_ARGS } from './errors.js';
// upstream's PassimItem defaults (passim_item_init) are the store's
import { DEFAULT_MAX_AGE, DEFAULT_SHARE_LIMIT } from '../core/defaults.js';

export const ITEM_FLAG_NONE = 0n;
export const ITEM_FLAG_DISABLED = 1n << 0n;
export const ITEM_FLAG_NEXT_REBOOT = 1n << 1n;


type Vardict = Record<string, InstanceType<typeof dbus.Variant>>;

function flagsOf(item: ItemInfo): bigint {
  let flags = ITEM_FLAG_NONE;
  if (item.disabled) flags |= ITEM_FLAG_DISABLED;
  if (item.nextReboot) flags |= ITEM_FLAG_NEXT_REBOOT;
  return flags;
}

/**
 * One GetItems() entry. Static-dir items have no max-age or share-limit (0 here); upstream uses
 * G_MAXUINT32 for "unlimited", which its clients print as such, so that is what we send.
 */
export function itemToVardict(item: ItemInfo): Vardict {
  const unlimited = (n: number) => (n <= 0 ? MAX_COUNT : Math.min(n, MAX_COUNT));
  const v = (sig: string, value: unknown) => new dbus.Variant(sig, value);
  const out: Vardict = {
    hash: v('s', item.hash),
    filename: v('s', item.basename),
    basename: v('s', item.basename),
    'max-age': v('u', unlimited(item.maxAge)),
    'share-limit': v('u', unlimited(item.shareLimit)),
    'share-count': v('u', Math.min(Math.max(0, item.shareCount), MAX_COUNT)),
    size: v('t', BigInt(Math.max(0, Math.trunc(item.size)))),
    flags: v('t', flagsOf(item)),
    ctime: v('x', BigInt(Math.floor(item.created / 1000))),
  };
  if (item.cmdline) out.cmdline = v('s', item.cmdline);
  return out;
}

function invalid(text: string): never {
  throw new DbusReplyError(ERROR_INVALID_ARGS, text);
}

/** A variant's value as an integer, whatever integer type the client chose (u, t, i, x, q, n, y). */
function integerOf(key: string, value: unknown): bigint {
  const variant = value as { signature?: unknown; value?: unknown } | undefined;
  if (!variant || typeof variant !== 'object' || !('signature' in variant)) invalid(`attribute ${key} is not a variant`);
  const sig = String(variant.signature);
  if (!['y', 'n', 'q', 'i', 'u', 'x', 't'].includes(sig)) invalid(`attribute ${key} must be an integer, got type '${sig}'`);
  const raw = variant.value;
  if (typeof raw === 'bigint') return raw;
  if (typeof raw === 'number' && Number.isInteger(raw)) return BigInt(raw);
  return invalid(`attribute ${key} is not an integer`);
}

function stringOf(key: string, value: unknown): string {
  const variant = value as { signature?: unknown; value?: unknown } | undefined;
  if (!variant || typeof variant !== 'object' || variant.signature !== 's' || typeof variant.value !== 'string') {
    invalid(`attribute ${key} must be a string`);
  }
  return variant.value as string;
}

function count32(key: string, value: unknown): number {
  const n = integerOf(key, value);
  if (n < 0n || n > BigInt(MAX_COUNT)) invalid(`attribute ${key} out of range: ${n}`);
  return Number(n);
}

export interface ParsedPublish {
  opts: PublishOptions;
  /** the hash the client claims; upstream ignores it and so do we (the daemon hashes what it reads) */
  claimedHash?: string;
}

/**
 * Publish()'s attributes → store PublishOptions, with upstream's checks: a basename without '/',
 * share-count below share-limit. Missing max-age / share-limit take upstream's defaults (libpassim
 * leaves out zero values). Unknown keys are ignored, as upstream does.
 */
export function parsePublishAttrs(attrs: unknown): ParsedPublish {
  if (!attrs || typeof attrs !== 'object' || Array.isArray(attrs)) invalid('attributes must be a{sv}');
  const get = (key: string): unknown => (Object.prototype.hasOwnProperty.call(attrs, key) ? (attrs as Record<string, unknown>)[key] : undefined);

  const nameValue = get('filename') ?? get('basename');
  if (nameValue === undefined) invalid('filename attribute required');
  const basename = stringOf('filename', nameValue);
  if (basename.length === 0) invalid('invalid basename: empty');
  if (basename.includes('/')) invalid('invalid basename');
  if (basename.includes('\0')) invalid('invalid basename');

  const maxAge = get('max-age') === undefined ? DEFAULT_MAX_AGE : count32('max-age', get('max-age'));
  const shareLimit = get('share-limit') === undefined ? DEFAULT_SHARE_LIMIT : count32('share-limit', get('share-limit'));
  const shareCount = get('share-count') === undefined ? 0 : count32('share-count', get('share-count'));
  if (maxAge === 0) invalid('max-age must be at least 1 second');
  if (shareCount >= shareLimit) invalid(`share count ${shareCount} >= share-limit ${shareLimit}`);

  let nextReboot = false;
  if (get('flags') !== undefined) {
    const flags = integerOf('flags', get('flags'));
    if (flags < 0n) invalid('attribute flags out of range');
    nextReboot = (flags & ITEM_FLAG_NEXT_REBOOT) !== 0n;
  }

  const hashValue = get('hash');
  const claimedHash = hashValue === undefined ? undefined : stringOf('hash', hashValue);
  return { opts: { basename, maxAge, shareLimit, nextReboot }, claimedHash };
}
