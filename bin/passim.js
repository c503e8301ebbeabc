#!/usr/bin/env node
// The thin entry: all logic lives in lib/ (compiled to dist/ by `npm ci`).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`passim: error: ${err && err.message ? err.message : String(err)}\n`);
  if (process.argv.includes('--verbose') || process.argv.includes('-v')) process.stderr.write(`${err && err.stack}\n`);
  process.exitCode = 1;
});
