/**
 * `passim fetch --from FILE|-`: many files in one process through the batch engine
 * (lib/fetch/batch.ts). The list is read and checked whole before anything is downloaded.
 * Output: one line per file as it finishes — saved files on stdout, failures on stderr; with
 * --json one JSON object per line on stdout (a failure has `error`, `code` and `exit`). The exit
 * code is the worst of the files (worstExitCode, lib/core/errors.ts). On a TTY one progress line
 * for the whole batch (files done / bytes) on stderr; nothing when piped.
 */
import type { BatchOptions } from '../../fetch/batch.js';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ExitCode, PassimError, UsageError, worstExitCode } from '../../core/errors.js';
import type { FetchResult } from '../../fetch/result.js';
import { humanBytes } from '../../core/human-units.js';

/** The list and how to report; where to look and what to do after are the batch's options. */
export interface BatchRunArgs {
  from: string;
  output?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

async function readList(from: string): Promise<{ text: string; source: string }> {
  if (from === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return { text: Buffer.concat(chunks).toString('utf8'), source: 'stdin' };
  }
  try {
    return { text: await readFile(from, 'utf8'), source: from };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read the list ${from}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code ?? String(err)}`);
  }
}

export async function runBatch(args: BatchRunArgs, options: BatchOptions): Promise<number> {
  const { parseBatchList } = await import('../../fetch/batch-list.js');
  const { text, source } = await readList(args.from);
  const entries = parseBatchList(text, source);
  const outDir = resolve(args.output ?? '.');
  if (!(await stat(outDir).catch(() => undefined))?.isDirectory()) throw new UsageError(`-o must be an existing directory with --from: ${args.output ?? '.'}`);
  if (!entries.length) return ExitCode.OK;

  const { FetchBatch } = await import('../../fetch/batch.js');
  const columns = process.stderr.columns ?? 0;
  const showProgress = Boolean(process.stderr.isTTY) && columns >= 20 && !args.quiet && !args.json;
  let spinner: { text: string; start(): unknown; stop(): unknown } | undefined;
  if (showProgress) {
    const { default: ora } = await import('ora');
    spinner = ora({ text: `looking for ${entries.length} files`, stream: process.stderr, discardStdin: false }).start() as typeof spinner;
  }
  let done = 0;
  let failed = 0;
  let bytes = 0;
  const received = new Map<string, number>();
  let lastDraw = 0;
  const draw = (force = false) => {
    if (!spinner) return;
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    let inFlight = 0;
    for (const n of received.values()) inFlight += n;
    const t = `${done}/${entries.length} files${failed ? ` (${failed} failed)` : ''}, ${humanBytes(bytes + inFlight)}`;
    spinner.text = t.length > columns - 4 ? `${t.slice(0, Math.max(0, columns - 5))}…` : t;
  };
  /**
   * A line out. On a terminal at once, without tearing the spinner; piped, the lines of files that
   * finish together go out in one write (a pipe write is synchronous, and wakes the reader each time).
   */
  const pending = new Map<NodeJS.WriteStream, string[]>();
  let flushing: NodeJS.Immediate | undefined;
  const flush = () => {
    flushing = undefined;
    for (const [stream, lines] of pending) if (lines.length) stream.write(lines.splice(0).join(''));
  };
  const say = (stream: NodeJS.WriteStream, line: string) => {
    if (!spinner) {
      let lines = pending.get(stream);
      if (!lines) pending.set(stream, (lines = []));
      lines.push(line + '\n');
      flushing ??= setImmediate(flush);
      return;
    }
    spinner.stop();
    stream.write(line + '\n');
    spinner.start();
  };

  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const batch = new FetchBatch({
    // many files: connections to a peer are kept alive across them (a TLS handshake per small file
    // would cost more than the file)
    peerPool: true,
    ...options,
    outputDir: outDir,
    signal: ac.signal,
    onProgress: (ev, entry) => {
      if (ev.type === 'bytes') {
        received.set(entry.name, ev.received);
        draw();
      } else if (ev.type === 'skip' && args.verbose && !args.quiet) {
        const where = ev.source === 'cdn' ? ev.url : ev.source === 'local' ? 'local daemon' : `peer ${ev.peer}`;
        say(process.stderr, `passim: ${entry.name}: skipped ${where}: ${ev.reason}`);
      } else if (ev.type === 'publish-failed' && !args.quiet) {
        say(process.stderr, `passim: warning: ${entry.name}: could not publish to the local daemon: ${ev.reason}`);
      }
    },
  });
  const codes: number[] = [];
  try {
    await Promise.all(entries.map(async (entry) => {
      let r: FetchResult;
      try {
        r = await batch.add(entry);
      } catch (err) {
        const e = err instanceof PassimError ? err : new PassimError(String((err as Error)?.message ?? err));
        const exit = e.exitCode;
        codes.push(exit);
        received.delete(entry.name);
        failed++;
        done++;
        if (args.json) {
          say(process.stdout, JSON.stringify({ path: join(outDir, entry.name), sha256: entry.sha256, size: null, source: null, peer: null, ms: null, error: e.message.split('\n')[0], code: e.code, exit }));
        } else {
          say(process.stderr, `passim: error: ${entry.name}: ${e.message.split('\n')[0]}`);
        }
        draw(true);
        return;
      }
      codes.push(ExitCode.OK);
      received.delete(entry.name);
      bytes += r.size;
      done++;
      if (args.json) {
        say(process.stdout, JSON.stringify({ path: r.path, sha256: r.sha256, size: r.size, source: r.source, peer: r.peer ?? null, ms: r.ms }));
      } else if (!args.quiet) {
        const from = r.source === 'peer' ? `peer ${r.peer}` : r.source === 'local' ? 'the local daemon' : `the CDN (${new URL(r.url).host})`;
        say(process.stdout, `saved ${r.path} (${humanBytes(r.size)}) from ${from} in ${r.ms} ms`);
      }
      draw(true);
    }));
    await batch.close();
  } finally {
    if (flushing) clearImmediate(flushing);
    flush();
    spinner?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await batch.close();
  }
  if (ac.signal.aborted) {
    process.stderr.write('passim: interrupted\n');
    return 130;
  }
  return worstExitCode(codes);
}
