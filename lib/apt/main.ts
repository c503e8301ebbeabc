/**
 * Entry of the apt method: contrib/apt/methods/passim runs `node dist/apt/main.js`. apt starts a method and first
 * waits for its `100 Capabilities` — and starts a probe that only reads that and gets SIGINT — so
 * the capabilities go out before anything heavy is loaded, and a signal before then just exits.
 */
import { capabilities } from './replies.js';

async function main(): Promise<void> {
  let method: { stop(): Promise<void> } | undefined;
  const quit = () => {
    if (!method) process.exit(0);
    void method.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
  process.stdout.on('error', () => quit()); // apt closed its end
  // the launcher (contrib/apt/methods/passim) has announced them already when it says so
  if (process.env.PASSIM_APT_ANNOUNCED !== '1') process.stdout.write(capabilities());
  delete process.env.PASSIM_APT_ANNOUNCED;
  const trace = process.env.PASSIM_APT_TRACE ? (line: string) => process.stderr.write(`passim-apt ${new Date().toISOString().slice(17, 23)} pid ${process.pid} +${Math.round(performance.now())} ms ${line}\n`) : undefined;
  trace?.('-> 100 Capabilities');
  const { AptMethod } = await import('./method.js');
  trace?.('loaded');
  const m = new AptMethod({ input: process.stdin, output: process.stdout, trace });
  method = m;
  await m.run();
  process.exit(0);
}

await main();
