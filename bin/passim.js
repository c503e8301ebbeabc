#!/usr/bin/env node
// The thin entry: all logic lives in lib/ (compiled to dist/ by `npm ci`).
// `passim serve` and `passim fetch` with plain flags take lean paths that never load the CLI parser
// (the daemon runs for weeks: what it loads, it keeps; a fetch should start downloading at once);
// everything else, --help and usage errors included, goes to the full CLI.
import { reportError } from '../dist/cli/base.js';

const argv = process.argv.slice(2);
const verbose = argv.includes('--verbose') || argv.includes('-v');
const serve = argv.includes('serve') ? (await import('../dist/cli/serve-argv.js')).parseServeArgv(argv) : undefined;
const lean = !serve && argv.includes('fetch') ? await leanFetch() : undefined;
if (serve) {
  const [{ handler }, { runServe }] = await Promise.all([import('../dist/cli/base.js'), import('../dist/cli/serve-run.js')]);
  await handler(runServe)(serve);
} else if (lean) {
  const { handler } = await import('../dist/cli/base.js');
  await handler(lean.runFetch)(lean.args);
} else {
  const { main } = await import('../dist/cli/main.js');
  main(argv).catch((err) => {
    // errors that escape a command's handler: one line and the exit code of their class, as there
    process.exitCode = reportError(err, verbose);
  });
}

/** A plain `passim fetch …` that passes every check: its flags and runner; else undefined. */
async function leanFetch() {
  const [{ parseFetchArgv }, { checkFetchArgs, runFetch }] = await Promise.all([import('../dist/cli/fetch-argv.js'), import('../dist/cli/commands/fetch.js')]);
  const args = parseFetchArgv(argv, checkFetchArgs);
  return args && { args, runFetch };
}
