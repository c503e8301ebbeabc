// Loader hooks for module-trace.mjs: every loaded URL goes to the file given at registration.
import { appendFileSync } from 'node:fs';

let out;
export function initialize(data) {
  out = data.out;
}
export async function load(url, context, next) {
  if (out) appendFileSync(out, url + '\n');
  return next(url, context);
}
