/**
 * What the method says to apt (the fields apt's worker reads, apt-pkg/acquire-worker.cc):
 * 100 Capabilities, 101 Log, 102 Status, 200 URI Start, 201 URI Done, 400 URI Failure.
 * Every reply about a request carries its URI exactly as apt sent it: apt finds the item by it.
 */
import { formatMessage, type FieldValue } from './messages.js';
import type { AptHash } from './request.js';

/**
 * Pipeline: apt keeps up to Acquire::Max-Pipeline-Depth (10; 50passim raises it) requests in
 * flight with us (we answer them as they finish); Send-Config: we need the proxy and timeout
 * settings; Send-URI-Encoded: URIs come %-encoded and go back unchanged.
 * contrib/apt/methods/passim prints these same bytes itself, before node starts (apt waits for
 * them, and its probe reads nothing else): test/apt/protocol.test.ts checks the two agree.
 */
export function capabilities(): string {
  return formatMessage(100, 'Capabilities', [
    ['Version', '1.0 (passim)'],
    ['Pipeline', 'true'],
    ['Send-Config', 'true'],
    ['Send-URI-Encoded', 'true'],
  ]);
}

export function log(uri: string | undefined, message: string): string {
  return formatMessage(101, 'Log', [['URI', uri ?? '<UNKNOWN>'], ['Message', message]]);
}

export function status(uri: string | undefined, message: string): string {
  return formatMessage(102, 'Status', [['URI', uri ?? '<UNKNOWN>'], ['Message', message]]);
}

/** RFC 1123 as apt writes it (`Sun, 06 Nov 1994 08:49:37 GMT`). */
export function rfc1123(d: Date): string {
  return d.toUTCString();
}

export function uriStart(uri: string, o: { size?: number; lastModified?: Date; usedMirror?: string } = {}): string {
  return formatMessage(200, 'URI Start', [
    ['URI', uri],
    ['Size', o.size || undefined],
    ['Last-Modified', o.lastModified ? rfc1123(o.lastModified) : undefined],
    ['UsedMirror', o.usedMirror],
  ]);
}

export interface Done {
  filename: string;
  size?: number;
  lastModified?: Date;
  /** `<name>-Hash` fields; Checksum-FileSize-Hash is added from `size` */
  hashes?: Partial<Record<AptHash, string>>;
  imsHit?: boolean;
}

export function uriDone(uri: string, d: Done): string {
  const fields: Array<[string, FieldValue]> = [
    ['URI', uri],
    ['Filename', d.filename],
    ['Size', d.size || undefined],
    ['Last-Modified', d.lastModified ? rfc1123(d.lastModified) : undefined],
  ];
  for (const [name, value] of Object.entries(d.hashes ?? {})) {
    if (name === 'MD5Sum') fields.push(['MD5-Hash', value]); // the old name apt still reads
    fields.push([`${name}-Hash`, value]);
  }
  if (d.hashes && d.size !== undefined) fields.push(['Checksum-FileSize-Hash', d.size]);
  if (d.imsHit) fields.push(['IMS-Hit', 'true']);
  return formatMessage(201, 'URI Done', fields);
}

export interface Failure {
  message: string;
  /** e.g. HttpError404, MaximumSizeExceeded, HashSumMismatch, Timeout, ConnectionRefused */
  failReason?: string;
  /** apt retries (Acquire::Retries) */
  transient?: boolean;
}

export function uriFailure(uri: string, f: Failure): string {
  return formatMessage(400, 'URI Failure', [
    ['URI', uri],
    ['Message', f.message.replace(/[\r\n]+/g, ' ')],
    ['FailReason', f.failReason],
    ['Transient-Failure', f.transient ? 'true' : undefined],
  ]);
}
