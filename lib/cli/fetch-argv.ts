/**
 * `passim fetch …` read without the CLI parser (plain-argv.ts), so a fetch starts downloading
 * without first loading yargs and building its help text (≈ 150 ms of CPU on the bench machine,
 * paid by every single fetch and every wrapper call). The same checks as the full parser
 * (checkFetchArgs); anything it declines — help, a usage error, an unusual form — goes to the full
 * parser, which answers as it always did.
 */
import type { FetchArgs } from './commands/fetch.js';
import { GLOBAL_OPTIONS, plainArgv, plainInt } from './plain-argv.js';

const OPTIONS = {
  ...GLOBAL_OPTIONS,
  socket: { type: 'string' },
  from: { type: 'string' },
  sha256: { type: 'string' },
  'sha256-url': { type: 'string' },
  'insecure-checksum-url': { type: 'boolean' },
  cdn: { type: 'string', multiple: true },
  'no-cdn': { type: 'boolean' },
  output: { type: 'string', short: 'o' },
  timeout: { type: 'string' },
  peers: { type: 'boolean' },
  'no-peers': { type: 'boolean' },
  publish: { type: 'boolean' },
  'no-publish': { type: 'boolean' },
  'max-age': { type: 'string' },
  'share-limit': { type: 'string' },
  herd: { type: 'boolean' },
  'no-herd': { type: 'boolean' },
  'herd-wait': { type: 'string' },
  domain: { type: 'string' },
  'dns-server': { type: 'string' },
} as const;

const NEGATIONS = { 'no-cdn': 'cdn', 'no-peers': 'peers', 'no-publish': 'publish', 'no-herd': 'herd' };

/** The flags of a plain `passim [globals] fetch [flags] [NAME|URL]` that pass every check, or undefined. */
export function parseFetchArgv(argv: readonly string[], check: (a: FetchArgs) => true | string): FetchArgs | undefined {
  const p = plainArgv(argv, 'fetch', OPTIONS, { repeatable: ['cdn'], negations: NEGATIONS, maxArgs: 1 });
  if (!p) return undefined;
  const v = p.values;
  const yes = (on: boolean | undefined, off: boolean | undefined) => (off ? false : on ?? true);
  const args: FetchArgs = {
    json: v.json,
    quiet: v.quiet,
    verbose: v.verbose,
    socket: v.socket,
    target: p.args[0],
    from: v.from,
    sha256: v.sha256,
    'sha256-url': v['sha256-url'],
    'insecure-checksum-url': v['insecure-checksum-url'],
    cdn: v['no-cdn'] ? [false] : v.cdn,
    output: v.output,
    timeout: plainInt(v.timeout) ?? 400,
    peers: yes(v.peers, v['no-peers']),
    publish: yes(v.publish, v['no-publish']),
    'max-age': v['max-age'],
    'share-limit': v['share-limit'],
    herd: yes(v.herd, v['no-herd']),
    'herd-wait': plainInt(v['herd-wait']) ?? 60_000,
    domain: v.domain,
    'dns-server': v['dns-server'],
  };
  return check(args) === true ? args : undefined;
}
