/** Content-Type by file extension, for the items the server hands out. */

const TYPES: Record<string, string> = {
  xml: 'application/xml',
  gz: 'application/gzip',
  tgz: 'application/gzip',
  xz: 'application/x-xz',
  zst: 'application/zstd',
  zstd: 'application/zstd',
  bz2: 'application/x-bzip2',
  lz4: 'application/x-lz4',
  zip: 'application/zip',
  tar: 'application/x-tar',
  json: 'application/json',
  jcat: 'application/octet-stream',
  cab: 'application/vnd.ms-cab-compressed',
  txt: 'text/plain; charset=utf-8',
  asc: 'text/plain; charset=utf-8',
  sig: 'application/pgp-signature',
  html: 'text/html; charset=utf-8',
  htm: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  yaml: 'application/yaml',
  yml: 'application/yaml',
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  ico: 'image/x-icon',
  iso: 'application/x-iso9660-image',
  img: 'application/octet-stream',
  deb: 'application/vnd.debian.binary-package',
  rpm: 'application/x-rpm',
  msi: 'application/x-msi',
  exe: 'application/vnd.microsoft.portable-executable',
  bin: 'application/octet-stream',
};

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** The Content-Type for a basename, from its last extension (case-insensitive). */
export function contentTypeFor(basename: string): string {
  const dot = basename.lastIndexOf('.');
  if (dot <= 0 || dot === basename.length - 1) return DEFAULT_CONTENT_TYPE;
  return TYPES[basename.slice(dot + 1).toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}
