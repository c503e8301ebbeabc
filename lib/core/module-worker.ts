/**
 * Starts a worker thread on a module next to the caller: its compiled .js, or — when the caller
 * itself runs from .ts source under tsx (the tests) — the .ts, after registering tsx's loader in
 * the worker (a worker does not inherit its parent's loader hooks).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `callerUrl`: the caller's import.meta.url; `name`: the module's path without extension ("./x-worker"). */
export function startModuleWorker(callerUrl: string, name: string, opts: WorkerOptions = {}): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const url = new URL(`${name}${fromSource ? '.ts' : '.js'}`, callerUrl);
  if (!fromSource) return new Worker(url, opts);
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { ...opts, eval: true });
}
