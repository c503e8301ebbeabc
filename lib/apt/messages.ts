/**
 * apt's method protocol on the wire (doc/method.dbk, apt-pkg/acquire-method.cc): a message is a
 * header line `NNN Status` followed by `Key: Value` lines and ends at a blank line. A value may go
 * on over lines that start with a space. Keys are matched without regard to case, and a key may
 * repeat (`Config-Item`). apt reads "\n\n" and "\r\n\r\n" alike; so does this reader.
 */
import { StringDecoder } from 'node:string_decoder';

export class Message {
  constructor(
    readonly code: number,
    readonly status: string,
    readonly fields: ReadonlyArray<readonly [string, string]>,
  ) {}

  /** The first value of `key` (any case), or undefined. */
  get(key: string): string | undefined {
    const k = key.toLowerCase();
    for (const [name, value] of this.fields) if (name.toLowerCase() === k) return value;
    return undefined;
  }

  /** Every value of `key` (any case), in order. */
  all(key: string): string[] {
    const k = key.toLowerCase();
    return this.fields.filter(([name]) => name.toLowerCase() === k).map(([, value]) => value);
  }
}

/** Parses one message's text (without the blank line that ended it); undefined when it has no `NNN` header. */
export function parseMessage(text: string): Message | undefined {
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[0] === '') lines.shift();
  const head = /^(\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (!head) return undefined;
  const fields: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && fields.length) {
      const last = fields[fields.length - 1]!;
      last[1] += `\n${line.trimStart()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue; // not a field: apt's LookupTag would not find anything in it either
    fields.push([line.slice(0, colon).trim(), line.slice(colon + 1).replace(/^[ \t]+/, '').replace(/[ \t]+$/, '')]);
  }
  return new Message(Number(head[1]), head[2] ?? '', fields);
}

/**
 * Splits a byte stream into messages: feed it chunks as they come, it returns the messages each
 * chunk completed. Text is UTF-8 (URIs come percent-encoded; file names may hold UTF-8).
 */
export class MessageReader {
  #decoder = new StringDecoder('utf8');
  #buf = '';

  push(chunk: Buffer | string): Message[] {
    this.#buf += typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    const out: Message[] = [];
    for (;;) {
      const m = /\r?\n\r?\n/.exec(this.#buf);
      if (!m) break;
      const text = this.#buf.slice(0, m.index);
      this.#buf = this.#buf.slice(m.index + m[0].length).replace(/^[\r\n]+/, '');
      const msg = parseMessage(text);
      if (msg) out.push(msg);
    }
    if (this.#buf.length > 16 * 1024 * 1024) throw new Error('apt method protocol: a message over 16 MiB without its end');
    return out;
  }

  /** What is left at EOF, if it makes a message (apt always ends with a blank line; be lenient). */
  end(): Message | undefined {
    const rest = this.#buf + this.#decoder.end();
    this.#buf = '';
    return rest.trim() ? parseMessage(rest) : undefined;
  }
}

export type FieldValue = string | number | boolean | undefined;

/**
 * Formats one message as apt reads it. Empty and undefined values are left out (as apt's own
 * SendMessage does); a multi-line value goes on with continuation lines. Control characters apt
 * would reject (it aborts on them) become spaces.
 */
export function formatMessage(code: number, status: string, fields: ReadonlyArray<readonly [string, FieldValue]>): string {
  let out = `${code} ${status}\n`;
  for (const [key, raw] of fields) {
    if (raw === undefined || raw === '') continue;
    const value = String(raw).replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ' ');
    out += `${key}: ${value.split('\n').join('\n ')}\n`;
  }
  return `${out}\n`;
}
