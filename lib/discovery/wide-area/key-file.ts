/**
 * Reads the TSIG key for DNS updates from a file in the format `tsig-keygen` writes (BIND's
 * named.conf syntax, also what Knot's `keymgr`-free setups copy):
 *
 *   key "passim" {
 *       algorithm hmac-sha256;
 *       secret "BASE64";
 *   };
 *
 * The secret lets anyone rewrite the zone's passim records, so a key file that other users can
 * read is refused with an error saying how to fix it.
 */
import { open } from 'node:fs/promises';
import { ConfigError } from '../../core/errors.js';
import { HMAC_SHA256, type TsigKey } from './tsig.js';

const MAX_KEY_FILE = 64 * 1024;

/** Parses the first `key "NAME" { algorithm …; secret "…"; };` block. Throws ConfigError. */
export function parseKeyFile(text: string, file: string): TsigKey {
  // comments as named.conf allows: #, //, /* */
  const clean = text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|\s)(#|\/\/)[^\n]*/g, '$1');
  const m = /\bkey\s+"?([A-Za-z0-9._-]+)"?\s*\{([^}]*)\}\s*;/.exec(clean);
  if (!m) throw new ConfigError('no `key "NAME" { algorithm …; secret "…"; };` block (the format tsig-keygen writes)', file);
  const name = m[1]!.replace(/\.$/, '');
  const body = m[2]!;
  const alg = /\balgorithm\s+"?([A-Za-z0-9-]+)"?\s*;/.exec(body)?.[1]?.toLowerCase();
  const secret = /\bsecret\s+"([A-Za-z0-9+/=\s]+)"\s*;/.exec(body)?.[1]?.replace(/\s+/g, '');
  if (!alg) throw new ConfigError(`key "${name}": no algorithm`, file);
  if (alg !== HMAC_SHA256) throw new ConfigError(`key "${name}": algorithm ${alg} is not supported; use hmac-sha256 (tsig-keygen -a hmac-sha256)`, file);
  if (!secret) throw new ConfigError(`key "${name}": no secret "BASE64";`, file);
  const bytes = Buffer.from(secret, 'base64');
  if (bytes.length < 16) throw new ConfigError(`key "${name}": the secret is ${bytes.length} bytes; need at least 16`, file);
  return { name, algorithm: HMAC_SHA256, secret: bytes };
}

/**
 * Opens the key file, refuses it when others can read or write it (mode & 0o006), and parses it.
 * Throws ConfigError naming the file.
 */
export async function loadKeyFile(file: string): Promise<TsigKey> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new ConfigError(`DnsKeyFile: cannot open: ${(err as Error).message}`, file);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ConfigError('DnsKeyFile: not a regular file', file);
    if (st.mode & 0o006) {
      throw new ConfigError(`DnsKeyFile is readable or writable by every user (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); ` +
        `the secret must be private: chmod 600 (or 640 with group passim) ${file}`, file);
    }
    if (st.size > MAX_KEY_FILE) throw new ConfigError(`DnsKeyFile: ${st.size} bytes is too large for a key file`, file);
    return parseKeyFile(await fh.readFile('utf8'), file);
  } finally {
    await fh.close();
  }
}
