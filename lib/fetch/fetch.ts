/**
 * The single-file fetch: a batch of one (batch.ts holds the one fetch path: local daemon, peers,
 * herd, each URL, verified download to temp + rename, publish). This adds what only a single fetch
 * has: the sha256 may come from a checksum file (--sha256-url), and the output may be stdout or a
 * directory.
 */
import { UsageError } from '../core/errors.js';
import { validateBasename } from '../core/basename.js';
import { normaliseSha256 } from '../core/sha256.js';
import { FetchBatch, type BatchOptions } from './batch.js';
import { DEFAULT_DISCOVERY_MS, type FetchProgress, type FetchResult } from './result.js';

export { DEFAULT_DISCOVERY_MS, type FetchProgress, type FetchResult };

/** A single fetch takes the batch's options (one file, so no output dir or gathering) and these. */
export interface FetchOptions extends Omit<BatchOptions, 'outputDir' | 'gatherMs' | 'onProgress'> {
  /** basename of the file (what peers serve it as, and the default output name) */
  name: string;
  /** expected sha256 (any case); or give sha256Url */
  sha256?: string;
  /** checksum file to read the sha256 for `name` from (verified TLS; https unless insecureChecksumUrl) */
  sha256Url?: string;
  /** accept an http:// sha256Url: anyone on the path could swap file and hash together */
  insecureChecksumUrl?: boolean;
  /** CDN URLs, tried in order after the peers */
  cdn: string[];
  /** target path; '-' = stdout; an existing directory = <dir>/<name>; default ./<name> */
  output?: string;
  onProgress?: (ev: FetchProgress) => void;
}

export async function fetchFile(opts: FetchOptions): Promise<FetchResult> {
  const name = validateBasename(opts.name);
  if (opts.sha256 && opts.sha256Url) throw new UsageError('give either a sha256 or a sha256 URL, not both');
  if (!opts.sha256 && !opts.sha256Url) throw new UsageError('a sha256 is required (--sha256 or --sha256-url)');
  if (opts.sha256Url && !/^https:/i.test(opts.sha256Url) && !opts.insecureChecksumUrl) {
    throw new UsageError(`the checksum URL ${opts.sha256Url} is not https: anyone on the path could swap the file and its hash together (use https, or accept the risk explicitly)`);
  }
  const sha256 = opts.sha256 ? normaliseSha256(opts.sha256) : undefined;
  const emit = (ev: FetchProgress) => opts.onProgress?.(ev);
  const { name: _name, sha256: _sha256, sha256Url: _url, insecureChecksumUrl: _insecure, cdn: _cdn, output: _output, onProgress: _progress, ...batchOptions } = opts;
  const batch = new FetchBatch({ ...batchOptions, onProgress: emit, gatherMs: 0 });
  try {
    const entry = { sha256: sha256 ?? '', name, urls: opts.cdn, output: opts.output };
    if (!sha256) {
      emit({ type: 'checksum', url: opts.sha256Url! });
      entry.sha256 = await batch.checksum(opts.sha256Url!, name);
    }
    return await batch.add(entry);
  } finally {
    await batch.close();
  }
}
