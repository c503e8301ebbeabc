#!/usr/bin/env node
// The thin entry: all logic lives in lib/ (compiled to dist/ by `npm ci`).
import { main } from '../dist/cli/main.js';
import { reportError } from '../dist/cli/base.js';

const argv = process.argv.slice(2);
main(argv).catch((err) => {
  // errors that escape a command's handler: one line and the exit code of their class, as there
  process.exitCode = reportError(err, argv.includes('--verbose') || argv.includes('-v'));
});
