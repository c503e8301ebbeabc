/** Why one source of a download failed (verified-download.ts, peer-request.ts): the batch moves on to the next source. */
export type SourceErrorKind =
  | 'mismatch' // a complete body with the wrong sha256: the source served wrong bytes
  | 'status'
  | 'length'
  | 'too-large'
  | 'too-slow'
  | 'timeout'
  | 'redirect'
  | 'tls'
  | 'network'
  | 'aborted'
  | 'fatal'; // our side (cannot write the temp file): no point trying other sources

export class SourceError extends Error {
  constructor(readonly kind: SourceErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SourceError';
  }
}
