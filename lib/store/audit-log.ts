/**
 * The audit log, one event a line as upstream writes it:
 *   `<ISO8601 UTC> PBLSH|SHARE|DELTE k=v,k=v`
 * with ',' '=' '\' in keys and values escaped by a backslash. Each line is one write on an
 * O_APPEND descriptor, so lines from concurrent writers never interleave.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

export type AuditType = 'PBLSH' | 'SHARE' | 'DELTE';
export type AuditFields = Array<[string, string | number]>;

export interface AuditEntry {
  time: string;
  type: string;
  fields: Map<string, string>;
}

export function escapeAuditValue(v: string): string {
  // a line break would split the entry: those become spaces (they have no escape upstream)
  return v.replace(/[\r\n]/g, ' ').replace(/[\\,=]/g, (c) => `\\${c}`);
}

export function formatAuditLine(time: Date, type: AuditType, fields: AuditFields): string {
  const kv = fields.map(([k, v]) => `${escapeAuditValue(k)}=${escapeAuditValue(String(v))}`).join(',');
  return `${time.toISOString()} ${type} ${kv}\n`;
}

/** Splits `k=v,k=v` honouring backslash escapes; undefined when malformed. */
export function parseAuditFields(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  let key: string | undefined;
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      if (i + 1 >= text.length) return undefined;
      cur += text[++i];
    } else if (c === '=' && key === undefined) {
      key = cur;
      cur = '';
    } else if (c === ',') {
      if (key === undefined) return undefined;
      out.set(key, cur);
      key = undefined;
      cur = '';
    } else if (c === '=') {
      return undefined;
    } else {
      cur += c;
    }
  }
  if (key === undefined) return cur === '' ? out : undefined;
  out.set(key, cur);
  return out;
}

export function parseAuditLine(line: string): AuditEntry | undefined {
  const a = line.indexOf(' ');
  if (a <= 0) return undefined;
  const b = line.indexOf(' ', a + 1);
  const type = b < 0 ? line.slice(a + 1) : line.slice(a + 1, b);
  if (!/^[A-Z]{5}$/.test(type)) return undefined;
  const time = line.slice(0, a);
  if (Number.isNaN(Date.parse(time))) return undefined;
  const fields = parseAuditFields(b < 0 ? '' : line.slice(b + 1));
  if (!fields) return undefined;
  return { time, type, fields };
}

export class AuditLog {
  private fh?: FileHandle;
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly path: string, private readonly now: () => number = Date.now) {}

  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    this.fh = await open(this.path, 'a', 0o640);
  }

  /** Appends one line; appends are written in call order. */
  append(type: AuditType, fields: AuditFields): Promise<void> {
    const line = Buffer.from(formatAuditLine(new Date(this.now()), type, fields), 'utf8');
    const next = this.chain.then(async () => {
      if (!this.fh) throw new Error('audit log is not open');
      await this.fh.write(line);
    });
    this.chain = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.fh?.close();
    this.fh = undefined;
  }
}
