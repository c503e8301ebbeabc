/**
 * Publishing what the method delivered, after apt has it. apt keeps a bounded number of requests
 * in flight and sends the next one only when it has an answer, so a publish (streaming the file
 * into the daemon's store, hashing, fsync) must not sit between the verified file and apt's
 * `201 URI Done`. The file is opened before the 201 — apt may rename or remove it right after —
 * and streamed to the daemon from that open file in the background, a few at a time; at exit the
 * method waits for them (apt waits for the method to exit).
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { ControlClient } from '../control/client.js';
import { withTimeout } from '../core/with-timeout.js';

export interface PublishJob {
  name: string;
  sha256: string;
  size: number;
}

export class BackgroundPublisher {
  #client: Promise<ControlClient> | undefined;
  #gone = false;
  #running = 0;
  readonly #queue: Array<() => void> = [];
  readonly #pending = new Set<Promise<void>>();
  /** hashes the daemon took (or already had) */
  readonly published = new Set<string>();

  constructor(
    private readonly socketPath: string | undefined,
    private readonly o: { cmdline: string; concurrency?: number; timeoutMs?: number } = { cmdline: 'apt (passim method)' },
  ) {}

  /** Opens `path` now; the publish itself runs later. Resolves once the file is open (safe to hand it to apt). */
  async hold(path: string, job: PublishJob): Promise<void> {
    if (this.#gone) return;
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch {
      return; // nothing to publish; apt still gets its file
    }
    const p = this.#slot(() => this.#publish(fh, job)).finally(() => {
      this.#pending.delete(p);
      return fh.close().catch(() => {});
    });
    this.#pending.add(p);
  }

  async #slot(fn: () => Promise<void>): Promise<void> {
    if (this.#running >= (this.o.concurrency ?? 4)) await new Promise<void>((r) => this.#queue.push(r));
    this.#running++;
    try {
      await fn();
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  async #publish(fh: FileHandle, job: PublishJob): Promise<void> {
    if (this.#gone) return;
    try {
      this.#client ??= (async () => {
        const { ControlClient } = await import('../control/client.js');
        const { resolvePaths } = await import('../core/paths.js');
        return new ControlClient(this.socketPath ?? resolvePaths().socketPath);
      })();
      const [c, { publishBody }] = await Promise.all([this.#client, import('../control/client.js')]);
      const ms = (this.o.timeoutMs ?? 60_000) + job.size / (10 * 1024);
      // a function, so the client may send it again (it reuses its connections to the daemon)
      const body = () => publishBody(fh, job.size);
      await withTimeout(c.publish(body, { name: job.name, sha256: job.sha256, size: job.size, cmdline: this.o.cmdline }), ms, 'no answer from the daemon');
      this.published.add(job.sha256);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'PASSIM_DAEMON_UNREACHABLE') this.#gone = true;
      else if (code === 'PASSIM_ITEM_EXISTS') this.published.add(job.sha256);
      // any other failure: the file is not shared; apt has it all the same
    }
  }

  /** Waits for every publish (bounded by the caller), then drops the daemon connection. */
  async close(): Promise<void> {
    while (this.#pending.size) await Promise.all([...this.#pending]);
    const c = await this.#client?.catch(() => undefined);
    await c?.close().catch(() => {});
  }
}
