/**
 * Per-item metadata as upstream keeps it (xattrs on the item file), plus our publish time.
 * The uint32 values are raw native-endian 4-byte integers; strings carry no trailing NUL.
 */
import { endianness } from 'node:os';

export const XATTR_MAX_AGE = 'user.max_age';
export const XATTR_SHARE_LIMIT = 'user.share_limit';
export const XATTR_CMDLINE = 'user.cmdline';
export const XATTR_BOOT_TIME = 'user.boot_time';
/** ours: publish time in ms since the epoch, decimal string (upstream uses the file's btime) */
export const XATTR_CREATED = 'user.passim.created';

/** upstream treats G_MAXUINT32 as invalid data, so the largest usable value is one less */
export const MAX_U32_VALUE = 0xfffffffe;

export interface ItemMeta {
  maxAge: number;
  shareLimit: number;
  cmdline?: string;
  /** boot time at publish for --next-reboot items */
  bootTime?: string;
  /** ms since the epoch; undefined for upstream-written items (use the file's times) */
  created?: number;
}

const LE = endianness() === 'LE';

export function encodeU32(value: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(value >>> 0);
  else b.writeUInt32BE(value >>> 0);
  return b;
}

/** Decodes a 4-byte native-endian uint32; undefined for a wrong length or the invalid 0xffffffff. */
export function decodeU32(buf: Buffer): number | undefined {
  if (buf.length !== 4) return undefined;
  const v = LE ? buf.readUInt32LE(0) : buf.readUInt32BE(0);
  return v === 0xffffffff ? undefined : v;
}

/** Where an item's metadata is kept: xattrs on the file, or a sidecar file when xattrs are unsupported. */
export interface MetadataBackend {
  readonly kind: 'xattr' | 'sidecar';
  /** called on the temp file before it is renamed to its final name */
  write(tempPath: string, hash: string, meta: ItemMeta): Promise<void>;
  read(path: string, hash: string): Promise<ItemMeta>;
  /** forget what is kept outside the file (the sidecar); xattrs go with the file */
  remove(hash: string): Promise<void>;
  /** removes what a crash or a deleted item left behind; `held` = hashes of the items present */
  cleanup(held: Set<string>): Promise<void>;
}
