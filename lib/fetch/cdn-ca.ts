/** The extra CA certificates a fetch trusts for CDN and checksum URLs (dispatchers.ts's cdnAgent). */
import { readFileSync } from 'node:fs';
import { PassimError } from '../core/errors.js';

/** Extra CA certificates for the CDN: the given PEM, else the file named by PASSIM_CDN_CA. */
export function resolveCdnCa(cdnCa?: string | Buffer, env: NodeJS.ProcessEnv = process.env): string | Buffer | undefined {
  if (cdnCa !== undefined && cdnCa !== '') return cdnCa;
  const file = env.PASSIM_CDN_CA;
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new PassimError(`cannot read PASSIM_CDN_CA ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
