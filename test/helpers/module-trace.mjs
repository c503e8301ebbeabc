// `node --import ./module-trace.mjs …` with MODULE_TRACE=FILE: appends the URL of every module the
// process loads (ESM and CommonJS) to FILE, one per line (the loader hooks are in module-trace-hooks.mjs).
import { register } from 'node:module';
import { appendFileSync } from 'node:fs';
import Module from 'node:module';

const out = process.env.MODULE_TRACE;
if (out) {
  register('./module-trace-hooks.mjs', import.meta.url, { data: { out } });
  // CommonJS packages required from inside other CommonJS packages bypass the ESM hooks
  const load = Module._load;
  Module._load = function (request, parent, ...rest) {
    const m = load.call(this, request, parent, ...rest);
    try {
      appendFileSync(out, `${Module._resolveFilename(request, parent)}\n`);
    } catch {
      // builtins and the like
    }
    return m;
  };
}
