/**
 * Item metadata in `<dataDir>/.meta/<sha256>.json` for filesystems without user xattrs.
 * Written temp + fsync + rename before the item itself is renamed into place.
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../core/logger.js';
import { isAtomicTempName, writeFileAtomic } from '../core/atomic-write.js';
import { readMetaXattrs } from './metadata-xattr.js';
import { MAX_U32_VALUE, type ItemMeta, type MetadataBackend } from './item-metadata.js';
import { DEFAULT_MAX_AGE, DEFAULT_SHARE_LIMIT } from '../core/defaults.js';

export const SIDECAR_DIR = '.meta';

function u32Field(v: unknown, fallback: number): number {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_U32_VALUE ? (v as number) : fallback;
}

export function parseSidecar(text: string): ItemMeta {
  const j = JSON.parse(text) as Record<string, unknown>;
  const meta: ItemMeta = {
    maxAge: u32Field(j.maxAge, DEFAULT_MAX_AGE),
    shareLimit: u32Field(j.shareLimit, DEFAULT_SHARE_LIMIT),
  };
  if (typeof j.cmdline === 'string') meta.cmdline = j.cmdline;
  if (typeof j.bootTime === 'string') meta.bootTime = j.bootTime;
  if (typeof j.created === 'number' && Number.isFinite(j.created)) meta.created = j.created;
  return meta;
}

export class SidecarMetadata implements MetadataBackend {
  readonly kind = 'sidecar' as const;
  private readonly dir: string;
  constructor(dataDir: string, private readonly log?: Logger) {
    this.dir = join(dataDir, SIDECAR_DIR);
  }

  sidecarPath(hash: string): string {
    return join(this.dir, `${hash}.json`);
  }

  async write(_tempPath: string, hash: string, meta: ItemMeta): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.sidecarPath(hash), JSON.stringify(meta) + '\n');
  }

  async read(path: string, hash: string): Promise<ItemMeta> {
    try {
      return parseSidecar(await readFile(this.sidecarPath(hash), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log?.warn(`${this.sidecarPath(hash)}: unreadable, using defaults: ${(err as Error).message}`);
    }
    // no sidecar: the file may still carry upstream's xattrs (e.g. the store moved filesystems)
    try {
      return await readMetaXattrs(path, this.log);
    } catch {
      return { maxAge: DEFAULT_MAX_AGE, shareLimit: DEFAULT_SHARE_LIMIT };
    }
  }

  async remove(hash: string): Promise<void> {
    await unlink(this.sidecarPath(hash)).catch(() => {});
  }

  async cleanup(held: Set<string>): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /^([0-9a-f]{64})\.json$/.exec(name);
      const orphan = m ? !held.has(m[1]) : isAtomicTempName(name);
      if (orphan) await unlink(join(this.dir, name)).catch(() => {});
    }
  }
}
