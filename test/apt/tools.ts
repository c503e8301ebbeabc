/** What the real-apt tests need on the machine; a skip reason naming the Debian package when missing. */
import { access } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';

async function have(cmd: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    try {
      await access(join(dir, cmd), constants.X_OK);
      return true;
    } catch { /* next */ }
  }
  return false;
}

/** false when apt-get, dpkg-deb and dpkg-scanpackages are there; else the reason to skip. */
export async function canRun(): Promise<false | string> {
  if (!(await have('apt-get'))) return 'needs apt-get (Debian package apt)';
  if (!(await have('dpkg-deb')) || !(await have('dpkg-scanpackages'))) return 'needs dpkg-deb and dpkg-scanpackages (Debian package dpkg-dev)';
  return false;
}
