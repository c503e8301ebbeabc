/**
 * One `600 URI Acquire` as apt's worker sends it (apt-pkg/acquire-worker.cc QueueItem): `URI`
 * (%-encoded when we announced Send-URI-Encoded; echoed back byte-identical in every reply),
 * `Filename` (where apt wants the file), `Expected-<hash>` (SHA512, SHA256, SHA1, MD5Sum,
 * Checksum-FileSize), `Last-Modified` (RFC 1123, for If-Modified-Since), `Maximum-Size` (only when
 * the size is not known), `Proxy`, `Index-File`, `Fail-Ignore`.
 */
import { isSha256 } from '../core/sha256.js';
import type { Message } from './messages.js';

/** Hash names apt knows, as in `Expected-<name>` and `<name>-Hash`. */
export const APT_HASHES = ['SHA512', 'SHA256', 'SHA1', 'MD5Sum'] as const;
export type AptHash = (typeof APT_HASHES)[number];

export interface AcquireRequest {
  /** exactly as apt sent it */
  uri: string;
  /** parsed; undefined when the URI is not a URL we can fetch */
  url?: URL;
  filename: string;
  /** lower-case sha256 when apt knows it */
  sha256?: string;
  /** every Expected-<hash> apt sent (values as sent) */
  expected: Partial<Record<AptHash, string>>;
  /** Expected-Checksum-FileSize */
  expectedSize?: number;
  /** the most bytes apt accepts (the expected size when known, else Maximum-Size); undefined = no limit */
  maximumSize?: number;
  lastModified?: Date;
  proxy?: string;
  indexFile: boolean;
}

function positive(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,16}$/.test(v.trim())) return undefined;
  const n = Number(v.trim());
  return n > 0 ? n : undefined;
}

export function parseAcquire(msg: Message): AcquireRequest {
  const uri = msg.get('URI') ?? '';
  let url: URL | undefined;
  try {
    url = new URL(uri);
  } catch {
    url = undefined;
  }
  const expected: AcquireRequest['expected'] = {};
  for (const h of APT_HASHES) {
    const v = msg.get(`Expected-${h}`);
    if (v) expected[h] = v.trim();
  }
  const sha = expected.SHA256;
  const expectedSize = positive(msg.get('Expected-Checksum-FileSize'));
  const lm = msg.get('Last-Modified');
  const lmDate = lm ? new Date(lm) : undefined;
  return {
    uri,
    url,
    filename: msg.get('Filename') ?? '',
    sha256: sha && isSha256(sha) ? sha.toLowerCase() : undefined,
    expected,
    expectedSize,
    maximumSize: expectedSize ?? positive(msg.get('Maximum-Size')),
    lastModified: lmDate && !Number.isNaN(lmDate.getTime()) ? lmDate : undefined,
    proxy: msg.get('Proxy') || undefined,
    indexFile: /^(1|yes|true)$/i.test(msg.get('Index-File') ?? ''),
  };
}
