#!/usr/bin/env node
// The thin entry: all logic lives in lib/ (compiled to dist/ by `npm ci`).
// `passim serve` with plain flags takes a lean path that never loads the CLI parser (the daemon
// runs for weeks: what it loads, it keeps); everything else, --help included, goes to the full CLI.
import { reportError } from '../dist/cli/base.js';

const argv = process.argv.slice(2);
const verbose = argv.includes('--verbose') || argv.includes('-v');
const serve = argv.includes('serve') ? (await import('../dist/cli/serve-argv.js')).parseServeArgv(argv) : undefined;
if (serve) {
  const [{ handler }, { runServe }] = await Promise.all([import('../dist/cli/base.js'), import('../dist/cli/serve-run.js')]);
  await handler(runServe)(serve);
} else {
  const { main } = await import('../dist/cli/main.js');
  main(argv).catch((err) => {
    // errors that escape a command's handler: one line and the exit code of their class, as there
    process.exitCode = reportError(err, verbose);
  });
}
