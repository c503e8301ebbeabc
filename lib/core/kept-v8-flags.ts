/**
 * V8 flags a process sets on itself at run time and keeps set. V8's flags are process-wide, and
 * every new isolate (each worker thread) re-runs V8's heap set-up, which overwrites some of them:
 * it raises `--semi-space-growth-factor` to at least 2, so one worker (the TLS certificate on a
 * first start, the static-dir checksum pool) silently undid the daemon's growth factor of 1 and
 * its young generation grew to 2 × 16 MiB again while serving. module-worker.ts puts the kept
 * flags back once each worker has set up its heap.
 */
import { setFlagsFromString } from 'node:v8';

let kept: readonly string[] = [];

/** Sets these flags now and again after each worker thread starts (replaces any earlier list). */
export function keepV8Flags(flags: readonly string[]): void {
  kept = [...flags];
  reapplyV8Flags();
}

/** Sets the kept flags again (after something may have overwritten them). */
export function reapplyV8Flags(): void {
  for (const f of kept) setFlagsFromString(f);
}
