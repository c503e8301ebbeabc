/**
 * The apt acquire method: reads apt's messages (601 Configuration, 600 URI Acquire) and answers
 * each request as it finishes, in any order (we announce Pipeline, apt keeps up to 10 in flight).
 *
 * - A request with `Expected-SHA256` (every .deb, every index file the Release file lists, by-hash
 *   or not) goes to the batch engine: LAN peers first, then the URI; verified, written to apt's
 *   Filename through temp + rename; apt is answered, then the file is published to the local
 *   daemon in the background (publisher.ts; waited for at exit).
 * - One without (InRelease, Release, Release.gpg) goes straight to the mirror (mirror-fetch.ts).
 * - The scheme comes from each URI (apt may start us under any name); the URI is echoed as sent.
 * - EOF on stdin or SIGINT/SIGTERM: in-flight mirror requests are dropped, the engine gets a
 *   moment to finish its publishes, exit 0.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { isValidBasename } from '../core/basename.js';
import { sha256File } from '../core/sha256.js';
import type { FetchBatchLike } from '../fetch/batch-api.js';
import type { FetchResult } from '../fetch/result.js';
import { AptConfig } from './config.js';
import { createEngine, type EngineFactory } from './engine.js';
import { engineFailure } from './failures.js';
import { MessageReader, type Message } from './messages.js';
import { MirrorDispatchers } from './mirror-dispatchers.js';
import { MirrorError, mirrorFetch, networkFailure } from './mirror-fetch.js';
import { BackgroundPublisher } from './publisher.js';
import { APT_HASHES, parseAcquire, type AcquireRequest } from './request.js';
import * as reply from './replies.js';

/** what the daemon's audit log records as the publisher */
const CMDLINE = 'apt (passim method)';

export interface MethodOptions {
  input: Readable;
  /** where replies go (apt's pipe); `write` of whole messages */
  output: { write(s: string): unknown };
  /** the batch engine, made on the first hash-known request */
  engine?: EngineFactory;
  env?: NodeJS.ProcessEnv;
  /** control socket of the local daemon */
  socketPath?: string;
  /** longest wait at exit for the engine's publishes (ms; default 30000, 2000 when requests were cut off) */
  closeTimeoutMs?: number;
  /** a line per message in and out, with ms since the process started (env PASSIM_APT_TRACE=1 in main.ts) */
  trace?: (line: string) => void;
}

export class AptMethod {
  readonly config = new AptConfig();
  readonly #o: MethodOptions;
  readonly #dispatchers: MirrorDispatchers;
  readonly #publisher: BackgroundPublisher;
  readonly #ac = new AbortController();
  #engine: Promise<FetchBatchLike> | undefined;
  /** batches replaced by a fresh one (closed at exit) */
  readonly #retired: Array<Promise<FetchBatchLike>> = [];
  /** outputs given to the current batch */
  readonly #outputs = new Set<string>();
  #inflight = 0;
  #stopping: Promise<void> | undefined;

  constructor(o: MethodOptions) {
    this.#o = o;
    this.#dispatchers = new MirrorDispatchers(this.config, o.env ?? process.env);
    this.#publisher = new BackgroundPublisher(o.socketPath, { cmdline: CMDLINE });
  }

  /** Reads stdin until EOF (or stop()), then shuts down; resolves when done. */
  run(): Promise<void> {
    // apt's first requests are on their way: meanwhile load the engine and ask the daemon what it holds
    void this.#batch().then((e) => e.warm?.(), () => {});
    const reader = new MessageReader();
    const { input } = this.#o;
    return new Promise<void>((resolve) => {
      const finish = () => {
        input.off('data', onData);
        void this.stop().then(resolve);
      };
      const onData = (chunk: Buffer) => {
        let msgs: Message[];
        try {
          msgs = reader.push(chunk);
        } catch {
          finish();
          return;
        }
        for (const m of msgs) {
          this.#o.trace?.(`<- ${m.code} ${m.get('URI') ?? ''}`);
          this.handle(m);
        }
      };
      input.on('data', onData);
      input.once('end', () => {
        const last = reader.end();
        if (last) this.handle(last);
        finish();
      });
      input.once('error', finish);
      this.#ac.signal.addEventListener('abort', finish, { once: true });
    });
  }

  handle(msg: Message): void {
    if (this.#stopping) return;
    if (msg.code === 601) this.config.addItems(msg.all('Config-Item'));
    else if (msg.code === 600) {
      const req = parseAcquire(msg);
      this.#inflight++;
      void this.acquire(req).finally(() => this.#inflight--);
    }
    // anything else (603 Media Changed, …) is not for an http method
  }

  #send(s: string): void {
    if (this.#stopping && this.#ac.signal.aborted) return;
    this.#o.trace?.(`-> ${s.slice(0, s.indexOf('\n'))} ${/^URI: (.*)$/m.exec(s)?.[1] ?? ''} ${/^Message: (.*)$/m.exec(s)?.[1] ?? ''}`);
    try {
      this.#o.output.write(s);
    } catch {
      /* apt went away: stop() follows from EOF */
    }
  }

  async acquire(req: AcquireRequest): Promise<void> {
    const { url } = req;
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      this.#send(reply.uriFailure(req.uri, { message: `passim: cannot fetch ${req.uri} (only http and https URIs)` }));
      return;
    }
    if (!req.filename) {
      this.#send(reply.uriFailure(req.uri, { message: 'no Filename in the request' }));
      return;
    }
    if (req.proxy) this.config.set(`Acquire::${url.protocol.slice(0, -1)}::Proxy::${url.hostname}`, req.proxy);
    try {
      if (req.sha256) await this.#viaEngine(req, url, req.sha256);
      else await this.#viaMirror(req, url);
    } catch (err) {
      // nothing above should throw; if it does, apt still gets an answer
      this.#send(reply.uriFailure(req.uri, { message: `passim: ${(err as Error)?.message ?? String(err)}`.split('\n')[0]! }));
    }
  }

  /** The file apt asks for may already be complete at its Filename (apt's http method checks too). */
  async #alreadyThere(req: AcquireRequest, sha256: string): Promise<number | undefined> {
    if (req.expectedSize === undefined) return undefined;
    const st = await stat(req.filename).catch(() => undefined);
    if (!st?.isFile() || st.size !== req.expectedSize) return undefined;
    const got = await sha256File(req.filename).catch(() => undefined);
    return got?.sha256 === sha256 ? got.size : undefined;
  }

  async #viaEngine(req: AcquireRequest, url: URL, sha256: string): Promise<void> {
    const have = await this.#alreadyThere(req, sha256);
    if (have !== undefined) {
      this.#send(reply.uriStart(req.uri, { size: have }));
      this.#send(reply.uriDone(req.uri, { filename: req.filename, size: have, hashes: { SHA256: sha256 } }));
      return;
    }
    const engine = await this.#engineFor(req.filename);
    this.#send(reply.uriStart(req.uri, { size: req.expectedSize }));
    try {
      const name = storeName(req, url);
      // the batch reaches the mirror directly with the system's CAs: when apt's configuration says
      // otherwise (a proxy, its own CA, no verification), the batch asks the LAN only and the
      // mirror is asked as apt's settings say (#viaMirror, verified against the sha256)
      const own = this.#ownMirrorPath(url);
      let r: FetchResult;
      try {
        r = await engine.add({ sha256, name, urls: own ? [] : [url.href], output: req.filename });
      } catch (err) {
        if (!own || (err as { code?: string }).code !== 'PASSIM_NOT_FOUND') throw err;
        await this.#viaMirror(req, url, { sha256, name });
        return;
      }
      // opened before apt hears of it (apt may move it at once), shared with the LAN afterwards
      if (r.source !== 'local') await this.#publisher.hold(req.filename, { name, sha256: r.sha256, size: r.size });
      this.#send(reply.log(req.uri, `${r.source}${r.peer ? ` ${r.peer}` : ''} in ${r.ms} ms`));
      this.#send(reply.uriDone(req.uri, { filename: req.filename, size: r.size, hashes: { SHA256: r.sha256 } }));
    } catch (err) {
      this.#send(reply.uriFailure(req.uri, engineFailure(err)));
    }
  }

  /**
   * The batch for a request. A batch writes each output once; apt retries a failed item (same
   * Filename) in the same process, so a retry gets a fresh batch.
   */
  #engineFor(filename: string): Promise<FetchBatchLike> {
    if (this.#outputs.has(filename)) {
      if (this.#engine) this.#retired.push(this.#engine);
      this.#engine = undefined;
      this.#outputs.clear();
    }
    this.#outputs.add(filename);
    return this.#batch();
  }

  /** The current batch, made if there is none. */
  #batch(): Promise<FetchBatchLike> {
    this.#engine ??= (this.#o.engine ?? createEngine)({ cmdline: CMDLINE, socketPath: this.#o.socketPath, signal: this.#ac.signal, publish: false });
    return this.#engine;
  }

  /** apt's configuration asks for a proxy or its own TLS settings for this URL */
  #ownMirrorPath(url: URL): boolean {
    if (this.config.proxyFor(url, this.#o.env ?? process.env)) return true;
    if (url.protocol !== 'https:') return false;
    return this.config.method('https', 'CaInfo', url.hostname) !== undefined || !this.config.methodBool('https', 'Verify-Peer', url.hostname, true);
  }

  /**
   * Straight to the mirror. `known`: a hash-known request the LAN did not have — verified against
   * its sha256 before it gets the file name, then published like any file from the mirror.
   */
  async #viaMirror(req: AcquireRequest, url: URL, known?: { sha256: string; name: string }): Promise<void> {
    try {
      const dispatcher = await this.#dispatchers.for(url);
      const wanted = APT_HASHES.filter((h) => req.expected[h]);
      const r = await mirrorFetch({
        url,
        filename: req.filename,
        lastModified: req.lastModified,
        maximumSize: req.maximumSize,
        hashes: wanted,
        dispatcher,
        timeoutMs: this.#dispatchers.timeoutMs(url),
        userAgent: this.config.method(url.protocol.slice(0, -1), 'User-Agent', url.hostname),
        expectedSha256: known?.sha256,
        signal: this.#ac.signal,
        // a hash-known request had its 200 already
        onStart: known ? undefined : (size, lastModified) => this.#send(reply.uriStart(req.uri, { size, lastModified })),
      });
      if (r.imsHit) {
        this.#send(reply.uriDone(req.uri, { filename: req.filename, lastModified: r.lastModified, imsHit: true }));
        return;
      }
      // verify what apt expects before it sees the file (a request without SHA256 may still carry MD5/SHA1/size)
      const wrong = wanted.find((h) => req.expected[h]!.toLowerCase() !== r.hashes[h]);
      if (wrong || (req.expectedSize !== undefined && r.size !== req.expectedSize)) {
        const { unlink } = await import('node:fs/promises');
        await unlink(req.filename).catch(() => {});
        this.#send(reply.uriFailure(req.uri, { message: `Hash Sum mismatch (${wrong ?? 'size'})`, failReason: 'HashSumMismatch' }));
        return;
      }
      if (known) await this.#publisher.hold(req.filename, { name: known.name, sha256: known.sha256, size: r.size });
      this.#send(reply.uriDone(req.uri, { filename: req.filename, size: r.size, lastModified: r.lastModified, hashes: r.hashes }));
    } catch (err) {
      this.#send(reply.uriFailure(req.uri, err instanceof MirrorError ? err.failure : networkFailure(err)));
    }
  }

  /** Stops reading, drops what is in flight, lets the engine finish its publishes (bounded). */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const cutOff = this.#inflight > 0;
      // what apt no longer waits for is dropped; files already delivered finish their publish
      this.#ac.abort();
      const engines = (await Promise.all([...this.#retired, ...(this.#engine ? [this.#engine] : [])].map((e) => e.catch(() => undefined))))
        .filter((e): e is FetchBatchLike => e !== undefined);
      const ms = this.#o.closeTimeoutMs ?? (cutOff ? 2_000 : 30_000);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...engines.map((e) => e.close().catch(() => {})), this.#publisher.close().catch(() => {})]),
        new Promise<void>((r) => { timer = setTimeout(r, ms); }),
      ]);
      clearTimeout(timer);
      await this.#dispatchers.close();
    })();
    return this.#stopping;
  }
}

/** The name the file is published under: apt's file name when it is a usable one, else the URI's last segment. */
function storeName(req: AcquireRequest, url: URL): string {
  const fromFile = basename(req.filename);
  if (isValidBasename(fromFile)) return fromFile;
  let last = url.pathname.split('/').pop() ?? '';
  try {
    last = decodeURIComponent(last);
  } catch { /* keep it encoded */ }
  return isValidBasename(last) ? last : 'apt-file';
}
