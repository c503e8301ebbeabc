/** Download and carbon savings: bytes served to peers, summed from SHARE lines of the audit log. */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Savings } from './types.js';
import { parseAuditLine } from './audit-log.js';

/** kg CO2e for `bytes` at `carbonCost` kg/GB (GB = 1024³ bytes, as upstream). */
export function carbonSaving(bytes: number, carbonCost: number): number {
  return (bytes * carbonCost) / 1024 ** 3;
}

export function savingsFor(bytes: number, carbonCost: number): Savings {
  return { downloadSaving: bytes, carbonSaving: carbonSaving(bytes, carbonCost) };
}

/** Sums `size` over the well-formed SHARE lines; a missing log is 0. */
export async function readDownloadSaving(auditLogPath: string): Promise<number> {
  let total = 0;
  const input = createReadStream(auditLogPath, { encoding: 'utf8' });
  try {
    const lines = createInterface({ input, crlfDelay: Infinity });
    for await (const line of lines) {
      const e = parseAuditLine(line);
      if (!e || e.type !== 'SHARE') continue;
      const size = e.fields.get('size');
      if (size === undefined || !/^\d+$/.test(size)) continue;
      total += Number(size);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  } finally {
    input.destroy();
  }
  return total;
}
