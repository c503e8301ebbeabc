/**
 * Starts a worker thread on a module next to the caller: its compiled .js, or — when the caller
 * itself runs from .ts source under tsx (the tests) — the .ts, after registering tsx's loader in
 * the worker (a worker does not inherit its parent's loader hooks).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { reapplyV8Flags } from './kept-v8-flags.js';

/**
 * `callerUrl`: the caller's import.meta.url; `name`: the module's path without extension ("./x-worker").
 * The process's kept V8 flags are set again once the worker's heap is set up (kept-v8-flags.ts).
 */
export function startModuleWorker(callerUrl: string, name: string, opts: WorkerOptions = {}): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const url = new URL(`${name}${fromSource ? '.ts' : '.js'}`, callerUrl);
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`;
  const worker = fromSource ? new Worker(boot, { ...opts, eval: true }) : new Worker(url, opts);
  // 'online' comes after the worker's isolate exists; 'exit' covers one that failed before that
  worker.once('online', reapplyV8Flags);
  worker.once('exit', reapplyV8Flags);
  return worker;
}
