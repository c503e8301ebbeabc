/**
 * What apt is told when the engine could not deliver a hash-known file. apt acts on the fields:
 * `FailReason: HttpError404` (a missing file: apt tries its alternatives, e.g. the non-by-hash
 * URI), `HashSumMismatch` (every source sent wrong bytes), `Transient-Failure: true` (timeouts,
 * resets, 5xx: apt retries per Acquire::Retries).
 */
import type { Failure } from './replies.js';

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504, 599]);

export function engineFailure(err: unknown): Failure {
  const e = err as { code?: string; message?: string };
  const message = `passim: ${(e?.message ?? String(err)).split('\n')[0]}`;
  if (e?.code === 'PASSIM_CHECKSUM_MISMATCH') return { message, failReason: 'HashSumMismatch' };
  // the mirror's answer is the last source tried: its HTTP status, if any, says what apt should do
  const statuses = [...(e?.message ?? '').matchAll(/HTTP (\d{3})/g)];
  const status = statuses.length ? Number(statuses[statuses.length - 1]![1]) : undefined;
  if (status !== undefined) return { message, failReason: `HttpError${status}`, transient: TRANSIENT_STATUS.has(status) };
  if (/timed out|deadline|stalled|too slow|under \d+ KiB\/s|no response headers|ECONNRESET|closed early|ECONNREFUSED|EAI_AGAIN/i.test(e?.message ?? '')) {
    return { message, failReason: /timed out|deadline|no response headers/i.test(e?.message ?? '') ? 'Timeout' : undefined, transient: true };
  }
  return { message };
}
