/**
 * Content-Type by file extension, for the items the server hands out: the type upstream's passimd
 * sends, which is GIO's guess from the shared-mime-info globs (/usr/share/mime/globs2; checked with
 * curl against upstream's passimd for every extension here). The bytes are sent as they are and never
 * decoded, so a text type carries no charset. For a name no glob matches (.bin, .jcat, .zstd, no
 * extension) GIO sniffs the content instead: we give the type of the usual content (a .jcat is gzip).
 */

const TYPES: Record<string, string> = {
  xml: 'application/xml',
  gz: 'application/gzip',
  tgz: 'application/x-compressed-tar',
  xz: 'application/x-xz',
  zst: 'application/zstd',
  zstd: 'application/zstd',
  bz2: 'application/x-bzip',
  lz4: 'application/x-lz4',
  zip: 'application/zip',
  tar: 'application/x-tar',
  json: 'application/json',
  jcat: 'application/gzip',
  cab: 'application/vnd.ms-cab-compressed',
  txt: 'text/plain',
  asc: 'text/plain',
  sig: 'application/pgp-signature',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  csv: 'text/csv',
  yaml: 'application/x-yaml',
  yml: 'application/x-yaml',
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  ico: 'image/vnd.microsoft.icon',
  iso: 'application/x-cd-image',
  img: 'application/x-raw-disk-image',
  deb: 'application/vnd.debian.binary-package',
  rpm: 'application/x-rpm',
  msi: 'application/x-msi',
  exe: 'application/x-ms-dos-executable',
  bin: 'application/octet-stream',
};

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** The Content-Type for a basename, from its last extension (case-insensitive). */
export function contentTypeFor(basename: string): string {
  const dot = basename.lastIndexOf('.');
  if (dot <= 0 || dot === basename.length - 1) return DEFAULT_CONTENT_TYPE;
  return TYPES[basename.slice(dot + 1).toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}
