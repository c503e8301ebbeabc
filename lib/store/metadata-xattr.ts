/** Item metadata in xattrs on the item file, exactly as upstream passimd writes and reads them. */
import type { Logger } from '../core/logger.js';
import { getXattr, listXattrs, setXattr, xattrToString } from './xattr.js';
import {
  XATTR_BOOT_TIME, XATTR_CMDLINE, XATTR_CREATED, XATTR_MAX_AGE,
  XATTR_SHARE_LIMIT, decodeU32, encodeU32, type ItemMeta, type MetadataBackend,
} from './item-metadata.js';
import { DEFAULT_MAX_AGE, DEFAULT_SHARE_LIMIT } from '../core/defaults.js';

export async function writeMetaXattrs(path: string, meta: ItemMeta): Promise<void> {
  await setXattr(path, XATTR_MAX_AGE, encodeU32(meta.maxAge));
  await setXattr(path, XATTR_SHARE_LIMIT, encodeU32(meta.shareLimit));
  if (meta.cmdline !== undefined) await setXattr(path, XATTR_CMDLINE, Buffer.from(meta.cmdline, 'utf8'));
  if (meta.bootTime !== undefined) await setXattr(path, XATTR_BOOT_TIME, Buffer.from(meta.bootTime, 'utf8'));
  if (meta.created !== undefined) await setXattr(path, XATTR_CREATED, Buffer.from(String(Math.round(meta.created)), 'utf8'));
}

function u32(path: string, name: string, raw: Buffer | undefined, fallback: number, log?: Logger): number {
  if (raw === undefined) return fallback;
  const v = decodeU32(raw);
  if (v === undefined) {
    log?.warn(`${path}: invalid ${name} xattr (${raw.length} bytes), using ${fallback}`);
    return fallback;
  }
  return v;
}

/**
 * Lists the file's xattrs once, then reads the ones present in parallel: loading 10,000 items
 * costs one listing plus 2–5 reads each, and no failing lookups for attributes upstream never set.
 */
export async function readMetaXattrs(path: string, log?: Logger): Promise<ItemMeta> {
  const present = new Set(await listXattrs(path));
  const get = (name: string) => (present.has(name) ? getXattr(path, name) : Promise.resolve(undefined));
  const [maxAge, shareLimit, cmdlineRaw, bootTimeRaw, createdRaw] = await Promise.all(
    [XATTR_MAX_AGE, XATTR_SHARE_LIMIT, XATTR_CMDLINE, XATTR_BOOT_TIME, XATTR_CREATED].map(get),
  );
  const meta: ItemMeta = {
    maxAge: u32(path, XATTR_MAX_AGE, maxAge, DEFAULT_MAX_AGE, log),
    shareLimit: u32(path, XATTR_SHARE_LIMIT, shareLimit, DEFAULT_SHARE_LIMIT, log),
  };
  const cmdline = xattrToString(cmdlineRaw);
  if (cmdline !== undefined) meta.cmdline = cmdline;
  const bootTime = xattrToString(bootTimeRaw);
  if (bootTime !== undefined) meta.bootTime = bootTime;
  const created = xattrToString(createdRaw);
  if (created !== undefined && /^\d+$/.test(created)) meta.created = Number(created);
  return meta;
}

export class XattrMetadata implements MetadataBackend {
  readonly kind = 'xattr' as const;
  constructor(private readonly log?: Logger) {}
  write(tempPath: string, _hash: string, meta: ItemMeta): Promise<void> {
    return writeMetaXattrs(tempPath, meta);
  }
  read(path: string): Promise<ItemMeta> {
    return readMetaXattrs(path, this.log);
  }
  async remove(): Promise<void> {}
  async cleanup(): Promise<void> {}
}
