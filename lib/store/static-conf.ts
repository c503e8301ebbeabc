/**
 * The static-dir configs: each `<configDir>/passim.d/*.conf` is a key file with `[passim]` `Path=/dir`.
 * A bad file is reported and skipped; it never stops the others.
 */
import { readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { parseKeyFile } from '../core/keyfile.js';

export interface StaticConfScan {
  /** absolute dirs to publish, in conf-file name order, without duplicates */
  dirs: string[];
  /** one message per bad conf file, keyed by its path */
  problems: Map<string, string>;
}

export function parseStaticConf(text: string, file: string): string {
  const kf = parseKeyFile(text, file);
  const path = kf.get('passim')?.get('Path');
  if (!path) throw new Error(`${file}: no Path= in [passim]`);
  const dir = path.value.trim();
  if (!isAbsolute(dir)) throw new Error(`${file}:${path.line}: Path must be absolute, got ${JSON.stringify(dir)}`);
  if (dir.includes('\0')) throw new Error(`${file}:${path.line}: Path must not contain NUL, got ${JSON.stringify(dir)}`);
  return dir;
}

export async function readStaticConfs(confDir: string): Promise<StaticConfScan> {
  const out: StaticConfScan = { dirs: [], problems: new Map() };
  let names: string[];
  try {
    names = (await readdir(confDir)).filter((n) => n.endsWith('.conf')).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    const file = join(confDir, name);
    try {
      const dir = parseStaticConf(await readFile(file, 'utf8'), file);
      if (!out.dirs.includes(dir)) out.dirs.push(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      out.problems.set(file, (err as Error).message);
    }
  }
  return out;
}
