/**
 * `passim fetch NAME|URL (--sha256 HASH | --sha256-url URL) [--cdn URL]… [-o PATH]`: the client.
 * Peers first (mDNS), then each CDN URL; the bytes are verified before they reach the target.
 * `passim fetch URL` takes URL as the first CDN and NAME from its last path segment.
 * With `-o -` the data goes to stdout, so the summary line (or --json) goes to stderr.
 * Env PASSIM_CDN_CA: a PEM file of extra CA certificates trusted for CDN and checksum URLs.
 * Herd suppression (lib/fetch/herd.ts): when another host on the LAN is already fetching the file
 * from outside, wait for it (at most --herd-wait ms) and take it from the LAN; --no-herd: never.
 * `passim fetch --from FILE|-` fetches a list of files in one batch (fetch-batch.ts).
 * The checksum is the trust root: --sha256-url must be https unless --insecure-checksum-url.
 * Beside mDNS, peers are looked up in a wide-area DNS-SD zone when --domain or passim.conf's Domain
 * names one (lib/fetch/zone-finder.ts).
 */
import { humanBytes } from '../../core/human-units.js';
import { isHttpUrl } from '../../fetch/batch-list.js';
import type { BatchOptions } from '../../fetch/batch.js';
import type { Argv, CommandModule } from 'yargs';
import { handler, withSocket, type SocketArgs } from '../base.js';
import { countError } from '../../control/api.js';
import { isSha256 } from '../../core/sha256.js';

export interface FetchArgs extends SocketArgs {
  target?: string;
  from?: string;
  'insecure-checksum-url'?: boolean;
  sha256?: string;
  'sha256-url'?: string;
  /** `--no-cdn` shows up as a `false` entry */
  cdn?: Array<string | boolean>;
  output?: string;
  timeout: number;
  peers: boolean;
  publish: boolean;
  'max-age'?: string;
  'share-limit'?: string;
  herd: boolean;
  'herd-wait': number;
  domain?: string;
  'dns-server'?: string;
}

const URLISH = /^https?:\/\//i;


/** NAME from the last path segment of a URL (percent-decoded), or undefined. */
export function nameFromUrl(url: string): string | undefined {
  try {
    const seg = new URL(url).pathname.split('/').pop() ?? '';
    return seg ? decodeURIComponent(seg) : undefined;
  } catch {
    return undefined;
  }
}

/** The usage error for a plain-http checksum URL: it names the risk. */
export function insecureChecksumMessage(url: string): string {
  return `--sha256-url ${url} is not https: anyone on the path could swap the file and its hash together, and the hash is all that makes a download trusted; use https, or --insecure-checksum-url to accept the risk`;
}

/** The checks of every fetch command line (true, or the usage error), for yargs and the lean path (fetch-argv.ts). */
export function checkFetchArgs(a: FetchArgs): true | string {
  if (typeof a['herd-wait'] !== 'number' || !Number.isFinite(a['herd-wait']) || a['herd-wait'] < 0 || a['herd-wait'] > 3_600_000) return '--herd-wait must be a number of milliseconds from 0 to 3600000';
  if (typeof a.timeout !== 'number' || !Number.isFinite(a.timeout) || a.timeout < 0 || a.timeout > 600_000) return '--timeout must be a number of milliseconds from 0 to 600000';
  if (a.output === '') return '--output must not be empty';
  if (a.domain !== undefined && typeof a.domain !== 'string') return '--domain needs a domain name (or \'\' for off)';
  if (a.from !== undefined) {
    if (typeof a.from !== 'string' || a.from === '') return '--from must name a file (or - for stdin)';
    if (a.target !== undefined) return 'give either NAME or --from FILE, not both';
    if (a.sha256 !== undefined || a['sha256-url'] !== undefined) return '--sha256 and --sha256-url do not apply to --from (each line holds its sha256)';
    if (((a.cdn ?? []) as unknown[]).some((u) => u !== false)) return '--cdn does not apply to --from (put the URLs on each line)';
    if (a.output === '-') return '-o - (stdout) does not apply to --from: -o is a directory';
    if (a.from === '-' && process.stdin.isTTY) return '--from - reads the list from stdin, which is a terminal';
    return countError(a['max-age'], 'max-age') ?? countError(a['share-limit'], 'share-limit') ?? true;
  }
  if (typeof a.target !== 'string' || a.target === '') return 'NAME (or --from FILE) is required';
  const hasHash = a.sha256 !== undefined;
  const hasUrl = a['sha256-url'] !== undefined;
  if (hasHash === hasUrl) return 'exactly one of --sha256 HASH or --sha256-url URL is required';
  if (hasHash && (typeof a.sha256 !== 'string' || !isSha256(a.sha256))) return `--sha256 must be 64 hex digits, got ${JSON.stringify(String(a.sha256).slice(0, 80))}`;
  if (hasUrl && !isHttpUrl(String(a['sha256-url']))) return `--sha256-url must be an http(s) URL, got ${JSON.stringify(a['sha256-url'])}`;
  if (hasUrl && !/^https:/i.test(String(a['sha256-url'])) && !a['insecure-checksum-url']) return insecureChecksumMessage(String(a['sha256-url']));
  for (const u of (a.cdn ?? []) as unknown[]) if (u !== false && (typeof u !== 'string' || !isHttpUrl(u))) return `--cdn must be an http(s) URL, got ${JSON.stringify(u)}`;
  if (URLISH.test(a.target) && (!isHttpUrl(a.target) || !nameFromUrl(a.target))) return `cannot take a file name from the URL ${a.target}`;
  return countError(a['max-age'], 'max-age') ?? countError(a['share-limit'], 'share-limit') ?? true;
}

/** Runs `passim fetch` with its flags read (by yargs, or by fetch-argv.ts); the exit code. */
export async function runFetch(args: FetchArgs): Promise<number> {
  const { validateBasename } = await import('../../core/basename.js');
  const { fetchFile } = await import('../../fetch/fetch.js');
  const { resolvePaths } = await import('../../core/paths.js');
  const { commandLine } = await import('./publish.js');
  const { zoneFinders } = await import('../../fetch/zone-finder.js');
  const extraFinders = args.peers ? await zoneFinders({ domain: args.domain, dnsServer: args['dns-server'] }) : [];
  // what the flags say about where to look and what to do after, for one file or a list alike
  const batch: BatchOptions = {
    timeoutMs: args.timeout,
    peers: args.peers,
    useCdn: !(args.cdn ?? []).includes(false),
    publish: args.publish,
    herd: args.herd,
    herdWaitMs: args['herd-wait'],
    maxAge: args['max-age'] === undefined ? undefined : Number(args['max-age']),
    shareLimit: args['share-limit'] === undefined ? undefined : Number(args['share-limit']),
    socketPath: resolvePaths({ socketPath: args.socket }).socketPath,
    cmdline: commandLine(),
    extraFinders,
  };
  if (args.from !== undefined) {
    const { runBatch } = await import('./fetch-batch.js');
    return runBatch({ from: args.from, output: args.output, json: args.json, quiet: args.quiet, verbose: args.verbose }, batch);
  }

  let name = args.target!;
  const cdn = (args.cdn ?? []).filter((u): u is string => typeof u === 'string');
  if (URLISH.test(name)) {
    const url = name;
    name = nameFromUrl(url)!;
    cdn.unshift(url);
  }
  validateBasename(name);
  const toStdout = args.output === '-';

  // progress only for a human watching stderr
  // (a pty with 0 columns — `script`, some CI runners — makes ora loop redrawing: no spinner there)
  const columns = process.stderr.columns ?? 0;
  const showProgress = Boolean(process.stderr.isTTY) && columns >= 20 && !args.quiet && !args.json;
  let spinner: { text: string; start(): unknown; stop(): unknown } | undefined;
  if (showProgress) {
    const { default: ora } = await import('ora');
    spinner = ora({ text: `looking for ${name}`, stream: process.stderr, discardStdin: false }).start() as typeof spinner;
  }
  let lastDraw = 0;
  let label = '';
  // one line only: ora redraws by counting wrapped lines
  const show = (t: string) => {
    if (spinner) spinner.text = t.length > columns - 4 ? `${t.slice(0, Math.max(0, columns - 5))}…` : t;
  };
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await fetchFile({
      name,
      sha256: args.sha256,
      sha256Url: args['sha256-url'],
      insecureChecksumUrl: args['insecure-checksum-url'],
      ...batch,
      cdn,
      output: args.output,
      signal: ac.signal,
      onProgress: (ev) => {
        if (ev.type === 'skip' && (args.verbose || spinner) && !args.quiet) {
          const where = ev.source === 'cdn' ? ev.url : ev.source === 'local' ? 'local daemon' : `peer ${ev.peer}`;
          if (spinner) spinner.stop();
          process.stderr.write(`passim: skipped ${where}: ${ev.reason}\n`);
          if (spinner) spinner.start();
        } else if (ev.type === 'publish-failed' && !args.quiet) {
          if (spinner) spinner.stop();
          process.stderr.write(`passim: warning: could not publish to the local daemon: ${ev.reason}\n`);
        } else if (ev.type === 'herd') {
          const e = ev.event;
          const text = e.type === 'wait' ? `waiting for ${e.claimers.join(', ') || 'another host'}, already fetching ${name}`
            : e.type === 'won' ? `fetching ${name} for the LAN${e.bidders > 1 ? ` (chosen among ${e.bidders} hosts)` : ''}`
            : e.type === 'give-up' ? `no longer waiting: ${e.reason}`
            : e.type === 'stalled' ? 'the download stalled: letting other hosts take over'
            : undefined;
          if (text && args.verbose && !args.quiet) {
            if (spinner) spinner.stop();
            process.stderr.write(`passim: ${text}\n`);
            if (spinner) spinner.start();
          } else if (text && spinner) show(text);
        } else if (spinner && ev.type === 'try') {
          label = `fetching ${name} from ${ev.source === 'cdn' ? new URL(ev.url).host : ev.source === 'local' ? 'the local daemon' : `peer ${ev.peer}`}`;
          show(label);
        } else if (spinner && ev.type === 'checksum') {
          show(`reading the sha256 of ${name} from ${ev.url}`);
        } else if (spinner && ev.type === 'bytes') {
          const now = Date.now();
          if (now - lastDraw < 100) return;
          lastDraw = now;
          const pct = ev.total ? ` (${Math.floor((ev.received * 100) / Math.max(1, ev.total))}%)` : '';
          show(`${label} — ${humanBytes(ev.received)}${ev.total ? ` / ${humanBytes(ev.total)}` : ''}${pct}`);
        }
      },
    });
    spinner?.stop();
    spinner = undefined;
    const data = {
      path: result.path,
      sha256: result.sha256,
      size: result.size,
      source: result.source,
      peer: result.peer ?? null,
      ms: result.ms,
      waitedMs: result.waitedMs,
    };
    // with -o - stdout holds the file: the report goes to stderr
    const out = toStdout ? process.stderr : process.stdout;
    if (args.json) {
      out.write(JSON.stringify(data, null, 2) + '\n');
    } else if (!(toStdout && args.quiet)) {
      const from = result.source === 'peer' ? `peer ${result.peer}` : result.source === 'local' ? 'the local daemon' : `the CDN (${new URL(result.url).host})`;
      const what = toStdout ? `fetched ${name}` : `saved ${result.path === `${process.cwd()}/${name}` ? name : result.path}`;
      out.write(`${what} (${humanBytes(result.size)}) from ${from} in ${result.ms} ms\n`);
    }
    return 0;
  } catch (err) {
    if (ac.signal.aborted) {
      process.stderr.write('passim: interrupted\n');
      return 130;
    }
    throw err;
  } finally {
    spinner?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export const fetchCommand: CommandModule<SocketArgs, FetchArgs> = {
  command: 'fetch [target]',
  describe: 'download NAME (or URL) from a LAN peer, else the CDN, verified by sha256',
  builder: (y: Argv<SocketArgs>) =>
    withSocket(y)
      .positional('target', { type: 'string', describe: 'NAME, or the CDN URL (NAME = its last path segment)' })
      .option('from', { type: 'string', describe: 'fetch every file of a list: lines "SHA256 NAME [URL…]" (- = stdin); -o is then a directory', requiresArg: true })
      .option('sha256', { type: 'string', describe: 'expected sha256 (64 hex digits)', requiresArg: true })
      .option('sha256-url', { type: 'string', describe: 'checksum file (SHA256SUMS, sha256sum or BSD format, or a bare hash) to take the sha256 of NAME from; https only', requiresArg: true })
      .option('insecure-checksum-url', { type: 'boolean', describe: 'accept an http:// --sha256-url (anyone on the path could swap file and hash)' })
      .option('cdn', { type: 'string', array: true, describe: 'CDN URL to fall back to (repeatable, tried in order); --no-cdn: peers only' })
      .option('output', { alias: 'o', type: 'string', describe: 'where to write (default ./NAME; a directory; - for stdout)', requiresArg: true })
      .option('timeout', { type: 'number', default: 400, describe: 'peer discovery timeout in ms', requiresArg: true })
      .option('peers', { type: 'boolean', default: true, describe: 'look for peers (--no-peers: CDN only)' })
      .option('publish', { type: 'boolean', default: true, describe: 'publish the file to the local daemon afterwards (--no-publish to skip)' })
      .option('max-age', { type: 'string', describe: 'max-age when publishing (seconds)', requiresArg: true })
      .option('share-limit', { type: 'string', describe: 'share-limit when publishing', requiresArg: true })
      .option('herd', { type: 'boolean', default: true, describe: 'wait for a LAN host already fetching it and take it from there' })
      .option('herd-wait', { type: 'number', default: 60_000, describe: 'longest such wait, in ms', requiresArg: true })
      .option('domain', { type: 'string', describe: 'also look for peers in this wide-area DNS-SD zone (default Domain= of passim.conf; \'\' = off)' })
      .option('dns-server', { type: 'string', describe: 'DNS server ADDR[:PORT] for --domain (default DnsServer= of passim.conf, else the system resolver)', requiresArg: true })
      .check((a) => checkFetchArgs(a as FetchArgs))
      .example('$0 fetch firmware.cab --sha256 5f1c…e2 --cdn https://cdn.example.com/firmware.cab', '')
      .example('$0 fetch https://cdn.example.com/repomd.xml --sha256-url https://cdn.example.com/SHA256SUMS', '')
      .example('$0 fetch data.bin --sha256 5f1c…e2 --no-cdn -o - | tar x', 'peers only, to stdout')
      .example('$0 fetch --from files.txt -o downloads/ --json', 'many files in one batch') as unknown as Argv<FetchArgs>,
  handler: handler<FetchArgs>(runFetch),
};
