/**
 * V8 flags the daemon sets on itself as it starts (cli/serve-run.ts), before it loads its modules.
 * Each one measured with bench/measures/daemon-rss.ts on a 2-core machine (RSS, second start):
 *
 * - `--semi-space-growth-factor=1`: the young generation keeps its initial size. Serving bytes
 *   makes short-lived objects fast enough that V8 otherwise grows each semi-space to 16 MiB and
 *   keeps it: peak RSS serving 1 GiB to 8 peers at once ~114 → ~90 MiB (~75 MiB with the next).
 * - `--no-opt`: no optimising compiler. The daemon's JavaScript is glue between native TLS,
 *   hashing and file I/O; TurboFan's compile jobs only leave malloc'd memory behind in the
 *   background threads that ran them: idle RSS ~66 → ~53 MiB, serving throughput unchanged within
 *   the noise of the measurement.
 *
 * (`--max-semi-space-size` would do the first more directly, but V8 reads it only when the heap is
 * set up, i.e. on the command line; the growth factor is read each time the space would grow.)
 * PASSIM_DAEMON_V8_FLAGS replaces the list (empty: none), for measuring what each one does.
 * They are kept (core/kept-v8-flags.ts): each worker thread's start would otherwise reset the
 * growth factor to 2.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { keepV8Flags } from '../core/kept-v8-flags.js';

export const DAEMON_V8_FLAGS = ['--semi-space-growth-factor=1', '--no-opt'] as const;

export function applyDaemonV8Flags(env: NodeJS.ProcessEnv = process.env): string[] {
  const flags = env.PASSIM_DAEMON_V8_FLAGS !== undefined ? env.PASSIM_DAEMON_V8_FLAGS.split(/\s+/).filter(Boolean) : [...DAEMON_V8_FLAGS];
  keepV8Flags(flags);
  return flags;
}

let collect: (() => void) | undefined;

/**
 * One full garbage collection now. For after a burst that the small young generation (above)
 * promoted wholesale, such as the first scan of a big static dir: its transient objects sit in
 * the old generation, counted in RSS, until V8's own next full collection, which an idle daemon
 * may not reach for a long time.
 */
export function collectGarbage(): void {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  // compacting: without it, the pages the garbage was on stay committed (and in RSS), each holding a few live objects
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    collect();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
}
