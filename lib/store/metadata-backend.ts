/** Picks where item metadata goes: xattrs when the data dir's filesystem takes them, else a sidecar. */
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../core/logger.js';
import type { MetadataBackend } from './item-metadata.js';
import { SidecarMetadata } from './metadata-sidecar.js';
import { XattrMetadata } from './metadata-xattr.js';
import { isXattrUnsupported, setXattr } from './xattr.js';
import { tempFileName } from './item-file.js';

export type MetadataMode = 'auto' | 'xattr' | 'sidecar';

/** True when a user xattr can be set on a new file in `dir`. */
export async function dirSupportsUserXattrs(dir: string): Promise<boolean> {
  const probe = join(dir, tempFileName());
  const fh = await open(probe, 'wx', 0o600);
  await fh.close();
  try {
    await setXattr(probe, 'user.passim.probe', '1');
    return true;
  } catch (err) {
    if (isXattrUnsupported(err)) return false;
    throw err;
  } finally {
    await unlink(probe).catch(() => {});
  }
}

export async function chooseMetadataBackend(dataDir: string, mode: MetadataMode, log?: Logger): Promise<MetadataBackend> {
  if (mode === 'xattr') return new XattrMetadata(log);
  if (mode === 'sidecar' || !(await dirSupportsUserXattrs(dataDir))) {
    if (mode === 'auto') log?.info(`${dataDir}: filesystem has no user xattrs, keeping item metadata in ${join(dataDir, '.meta')}`);
    return new SidecarMetadata(dataDir, log);
  }
  return new XattrMetadata(log);
}
