/** Validation of the basename an item is published and served under. */
import { InvalidNameError } from './errors.js';

/** Longest basename accepted, in UTF-8 bytes: 255 (NAME_MAX) less the "<sha256>-" prefix. */
export const MAX_BASENAME_BYTES = 255 - 65;

/**
 * Returns the basename if it is safe to use as a file name inside the store, else throws.
 * Rejects empty, ".", "..", anything with "/" or NUL or control characters, and over-long names.
 */
export function validateBasename(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidNameError('name is empty');
  if (name === '.' || name === '..') throw new InvalidNameError(`name not allowed: ${name}`);
  if (name.includes('/')) throw new InvalidNameError(`name must not contain "/": ${JSON.stringify(name)}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new InvalidNameError(`name must not contain control characters: ${JSON.stringify(name)}`);
  if (Buffer.byteLength(name, 'utf8') > MAX_BASENAME_BYTES) throw new InvalidNameError(`name longer than ${MAX_BASENAME_BYTES} bytes`);
  if (!name.isWellFormed()) throw new InvalidNameError('name is not valid unicode');
  return name;
}

export function isValidBasename(name: string): boolean {
  try {
    validateBasename(name);
    return true;
  } catch {
    return false;
  }
}
