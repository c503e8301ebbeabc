/**
 * Starts a worker thread on a module next to the caller: its compiled .js, or — when the caller
 * itself runs from .ts source under tsx (the tests) — the .ts, after registering tsx's loader in
 * the worker (a worker does not inherit its parent's loader hooks).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

const onlineHooks: Array<() => void> = [];

/**
 * `fn` runs each time a worker started here is up (its 'online' event). For process-wide V8 flags
 * that a new isolate resets: V8 sets up each isolate's heap, a worker's too, with
 * --semi-space-growth-factor raised to at least 2 (daemon/v8-flags.ts puts its own back).
 */
export function onWorkerOnline(fn: () => void): void {
  onlineHooks.push(fn);
}

/** `callerUrl`: the caller's import.meta.url; `name`: the module's path without extension ("./x-worker"). */
export function startModuleWorker(callerUrl: string, name: string, opts: WorkerOptions = {}): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const url = new URL(`${name}${fromSource ? '.ts' : '.js'}`, callerUrl);
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`;
  const worker = fromSource ? new Worker(boot, { ...opts, eval: true }) : new Worker(url, opts);
  if (onlineHooks.length) worker.once('online', () => { for (const fn of onlineHooks) fn(); });
  return worker;
}
