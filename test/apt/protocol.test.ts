/**
 * lib/apt against a scripted stdin, as apt's worker would drive it: the real method process
 * (contrib/apt/methods/passim → dist/apt/main.js) for capabilities, signals, EOF and the requests
 * that go straight to the mirror (a loopback HTTP mirror; no peers are looked for on that path);
 * the handler in-process with a stand-in engine for hash-known requests answered out of order.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { execa, type ResultPromise } from 'execa';
import { MessageReader, parseMessage, formatMessage, type Message } from '../../lib/apt/messages.js';
import { AptConfig, dequote } from '../../lib/apt/config.js';
import { AptMethod } from '../../lib/apt/method.js';
import type { BatchEntry, FetchBatchLike } from '../../lib/fetch/batch-api.js';
import type { FetchResult } from '../../lib/fetch/fetch.js';
import { ChecksumMismatchError, NotFoundError } from '../../lib/core/errors.js';
import { startMirror, type Mirror } from '../helpers/mirror-server.js';
import { aptSandbox, CONF_50PASSIM, METHOD, sha256 } from './repo.js';
import { canRun } from './tools.js';
import { capabilities } from '../../lib/apt/replies.js';
import { requires } from '../helpers/requires.js';

let work: string;
let mirror: Mirror;
const deb = Buffer.from('a package with an epoch and a plus in its path\n'.repeat(100));
const REPO = resolve(import.meta.dirname, '../..');
const DEB_PATH = '/debian/pool/main/a+b/libfoo_1:2.0_all.deb';
const DEB_URI_PATH = '/debian/pool/main/a%2Bb/libfoo_1%3a2.0_all.deb';
const release = Buffer.from('Origin: test\nSuite: stable\n');

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'passim-apt-proto-'));
  const root = join(work, 'mirror');
  await mkdir(join(root, 'debian/pool/main/a+b'), { recursive: true });
  await mkdir(join(root, 'debian/dists/stable'), { recursive: true });
  await writeFile(join(root, DEB_PATH), deb);
  await writeFile(join(root, 'debian/dists/stable/Release'), release);
  const old = new Date('2026-01-02T03:04:05Z');
  await utimes(join(root, 'debian/dists/stable/Release'), old, old);
  mirror = await startMirror(undefined, { root });
});

after(async () => {
  await mirror?.stop();
  await rm(work, { recursive: true, force: true });
});

/** The method as apt runs it, with a reader over its stdout. */
class MethodProc {
  readonly proc: ResultPromise;
  readonly #reader = new MessageReader();
  readonly #got: Message[] = [];
  #waiters: Array<() => void> = [];

  constructor(cmd = METHOD, env: Record<string, string> = {}) {
    this.proc = execa(cmd, [], {
      env: { PATH: process.env.PATH!, PASSIM_SOCKET: join(work, 'no-daemon.sock'), ...env },
      extendEnv: false, buffer: false, reject: false, stderr: 'inherit',
    });
    this.proc.stdout!.on('data', (c: Buffer) => {
      this.#got.push(...this.#reader.push(c));
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  send(text: string): void {
    this.proc.stdin!.write(text);
  }

  /** The next message (in arrival order) matching `pred`, removed from the queue. */
  async next(pred: (m: Message) => boolean = () => true, ms = 20_000): Promise<Message> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.#got.findIndex(pred);
      if (i >= 0) return this.#got.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no such message; got ${JSON.stringify(this.#got.map((m) => [m.code, m.fields]))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  async exit(): Promise<number | undefined> {
    const r = await this.proc;
    return r.exitCode ?? undefined;
  }
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const acquire = (fields: Record<string, string>) => formatMessage(600, 'URI Acquire', Object.entries(fields));
const config = (items: string[]) => formatMessage(601, 'Configuration', items.map((i) => ['Config-Item', i] as const));

test('100 Capabilities first, with Pipeline, Send-Config and Send-URI-Encoded; SIGINT right after it (apt\'s probe) ends it; SIGINT later exits 0', async () => {
  const probe = new MethodProc();
  const caps = await probe.next();
  assert.equal(caps.code, 100);
  assert.equal(caps.status, 'Capabilities');
  assert.equal(caps.get('Pipeline'), 'true');
  assert.equal(caps.get('Send-Config'), 'true');
  assert.equal(caps.get('Send-URI-Encoded'), 'true');
  assert.match(caps.get('Version') ?? '', /passim/);
  // apt's probe: SIGINT as soon as it has read the 100; apt reaps it without looking at how it ended
  probe.proc.kill('SIGINT');
  const r = await probe.proc;
  assert.ok(r.exitCode === 0 || r.signal === 'SIGINT', `exit ${r.exitCode} signal ${r.signal}`);
  // a worker that is up and answering: SIGINT is a clean exit 0
  const m = new MethodProc();
  await m.next((x) => x.code === 100);
  m.send(acquire({ URI: mirror.url('/debian/dists/stable/Release'), Filename: join(work, 'Release-sigint') }));
  await m.next((x) => x.code === 201);
  m.proc.kill('SIGINT');
  assert.equal(await m.exit(), 0);
});

test('the launcher announces exactly capabilities() before node starts; node then does not repeat it', async () => {
  const m = new MethodProc();
  let first = '';
  await new Promise<void>((r) => m.proc.stdout!.once('data', (c: Buffer) => { first = c.toString(); r(); }));
  assert.ok(first.startsWith(capabilities()), JSON.stringify(first));
  m.send(acquire({ URI: mirror.url('/debian/dists/stable/Release'), Filename: join(work, 'Release-caps') }));
  await m.next((x) => x.code === 201);
  m.proc.stdin!.end();
  assert.equal(await m.exit(), 0);
  const all = [...new MessageReader().push(first)];
  assert.equal(all.filter((x) => x.code === 100).length, 1);
});

test('contrib/apt/50passim as apt reads it: http and https go to the passim method', async (t) => {
  const reason = await canRun();
  if (reason) { t.skip(reason); return; }
  const sb = await aptSandbox(await mkdtemp(join(work, 'conf-')), 'deb [trusted=yes] http://127.0.0.1:9/ stable main', { method: null });
  await copyFile(CONF_50PASSIM, join(sb.root, 'etc/apt/apt.conf.d/50passim'));
  const r = await execa('apt-config', ['dump'], { env: sb.env, extendEnv: false });
  assert.match(r.stdout, /^Dir::Bin::Methods::http "passim";$/im);
  assert.match(r.stdout, /^Dir::Bin::Methods::https "passim";$/im);
  assert.match(r.stdout, /^Acquire::Max-Pipeline-Depth "\d+";$/m);
});

test('EOF on stdin: exits 0', async () => {
  const m = new MethodProc();
  await m.next((x) => x.code === 100);
  m.send(config(['Acquire::http::Timeout=5']));
  m.proc.stdin!.end();
  assert.equal(await m.exit(), 0);
});

test('a mirror request: 200 then 201 with the URI byte-identical (%-encoded), Filename, Size, hashes; the file is there', async () => {
  const m = new MethodProc();
  await m.next((x) => x.code === 100);
  const uri = mirror.url(DEB_URI_PATH);
  const file = join(work, 'libfoo.deb');
  m.send(config(['Acquire::http::Timeout=10']));
  m.send(acquire({ URI: uri, Filename: file, 'Expected-MD5Sum': md5(deb) }));
  const start = await m.next((x) => x.code === 200);
  assert.equal(start.get('URI'), uri);
  const done = await m.next((x) => x.code === 201);
  assert.equal(done.get('URI'), uri, 'echoed exactly as sent');
  assert.equal(done.get('Filename'), file);
  assert.equal(done.get('Size'), String(deb.length));
  assert.equal(done.get('SHA256-Hash'), sha256(deb));
  assert.equal(done.get('MD5Sum-Hash'), md5(deb), 'the hashes apt expects are reported too');
  assert.equal(done.get('Checksum-FileSize-Hash'), String(deb.length));
  assert.ok((await readFile(file)).equals(deb));
  assert.equal(mirror.count(DEB_URI_PATH), 1);
  assert.deepEqual((await readdir(work)).filter((n) => n.includes('.passim-')), [], 'no temp file left');
  m.proc.kill('SIGINT');
  assert.equal(await m.exit(), 0);
});

test('mirror answers: 404 → HttpError404 (apt then falls back from InRelease to Release); If-Modified-Since → IMS-Hit; Maximum-Size; refused → transient', async () => {
  const m = new MethodProc();
  await m.next((x) => x.code === 100);
  m.send(config(['Acquire::http::Timeout=10']));
  const inrelease = mirror.url('/debian/dists/stable/InRelease');
  m.send(acquire({ URI: inrelease, Filename: join(work, 'InRelease'), 'Index-File': 'true', 'Maximum-Size': '10000000', 'Fail-Ignore': 'true' }));
  const f404 = await m.next((x) => x.code === 400 && x.get('URI') === inrelease);
  assert.equal(f404.get('FailReason'), 'HttpError404');
  assert.equal(f404.get('Transient-Failure'), undefined);

  // apt sends the mtime of the file it has: not modified since → IMS hit, nothing written
  const rel = mirror.url('/debian/dists/stable/Release');
  const relFile = join(work, 'Release');
  m.send(acquire({ URI: rel, Filename: relFile, 'Last-Modified': new Date('2026-01-02T03:04:05Z').toUTCString() }));
  const ims = await m.next((x) => x.code === 201 && x.get('URI') === rel);
  assert.equal(ims.get('IMS-Hit'), 'true');
  assert.equal(await stat(relFile).catch(() => undefined), undefined);
  // modified since → the file, stamped with the mirror's Last-Modified (apt's next IMS comes from it)
  m.send(acquire({ URI: rel, Filename: relFile, 'Last-Modified': new Date('2025-01-01T00:00:00Z').toUTCString() }));
  const got = await m.next((x) => x.code === 201 && x.get('URI') === rel);
  assert.equal(got.get('IMS-Hit'), undefined);
  assert.equal(got.get('Last-Modified'), new Date('2026-01-02T03:04:05Z').toUTCString());
  assert.ok((await readFile(relFile)).equals(release));
  assert.equal((await stat(relFile)).mtime.toISOString(), '2026-01-02T03:04:05.000Z');

  // Maximum-Size smaller than the file
  const big = join(work, 'too-big.deb');
  m.send(acquire({ URI: mirror.url(DEB_URI_PATH), Filename: big, 'Maximum-Size': '100' }));
  const tooBig = await m.next((x) => x.code === 400 && x.get('URI') === mirror.url(DEB_URI_PATH));
  assert.equal(tooBig.get('FailReason'), 'MaximumSizeExceeded');
  assert.equal(await stat(big).catch(() => undefined), undefined);

  // nobody listening: a transient failure apt may retry
  const closed = await freePort();
  const refused = `http://127.0.0.1:${closed}/x`;
  m.send(acquire({ URI: refused, Filename: join(work, 'x') }));
  const f = await m.next((x) => x.code === 400 && x.get('URI') === refused);
  assert.equal(f.get('Transient-Failure'), 'true');
  // not http(s): a failure, not a crash
  m.send(acquire({ URI: 'ftp://example.invalid/x', Filename: join(work, 'y') }));
  assert.match((await m.next((x) => x.code === 400 && x.get('URI') === 'ftp://example.invalid/x')).get('Message') ?? '', /only http and https/);
  m.proc.stdin!.end();
  assert.equal(await m.exit(), 0);
});

test('Acquire::http::Proxy from 601 Configuration: mirror requests go through the proxy', async () => {
  const seen: string[] = [];
  const proxy = await forwardProxy(seen);
  try {
    const m = new MethodProc();
    await m.next((x) => x.code === 100);
    m.send(config([`Acquire::http::Proxy=http://127.0.0.1:${proxy.port}/`]));
    const uri = mirror.url('/debian/dists/stable/Release');
    m.send(acquire({ URI: uri, Filename: join(work, 'Release-proxied') }));
    const done = await m.next((x) => (x.code === 201 || x.code === 400) && x.get('URI') === uri);
    assert.equal(done.code, 201, done.get('Message'));
    assert.deepEqual(seen, [uri], 'the proxy got the absolute URI');
    m.proc.kill('SIGINT');
    assert.equal(await m.exit(), 0);
  } finally {
    proxy.server.close();
    proxy.server.closeAllConnections();
  }
});

test('started under another name (a symlink called https): the scheme comes from each URI', { skip: requires('readlink') }, async () => {
  // the method script resolves the symlink with readlink (coreutils; always there beside apt)
  const link = join(work, 'https');
  await symlink(METHOD, link);
  const m = new MethodProc(link);
  await m.next((x) => x.code === 100);
  const uri = mirror.url('/debian/dists/stable/Release');
  m.send(acquire({ URI: uri, Filename: join(work, 'Release-2') }));
  assert.equal((await m.next((x) => x.code === 201 || x.code === 400)).code, 201);
  m.proc.stdin!.end();
  assert.equal(await m.exit(), 0);
});

test('installed as a copy (/usr/lib/apt/methods/passim): finds passim through the `passim` on PATH; with none, apt\'s own http method answers', async () => {
  const dir = await mkdtemp(join(work, 'installed-'));
  await mkdir(join(dir, 'methods'));
  await mkdir(join(dir, 'bin'));
  await copyFile(METHOD, join(dir, 'methods/passim'));
  await chmod(join(dir, 'methods/passim'), 0o755);
  await symlink(join(REPO, 'bin/passim.js'), join(dir, 'bin/passim'));
  const nodeDir = dirname(process.execPath);
  const m = new MethodProc(join(dir, 'methods/passim'), { PATH: `${join(dir, 'bin')}:${nodeDir}:/usr/bin:/bin` });
  assert.equal((await m.next()).get('Version'), '1.0 (passim)');
  const uri = mirror.url('/debian/dists/stable/Release');
  m.send(acquire({ URI: uri, Filename: join(dir, 'Release') }));
  assert.equal((await m.next((x) => x.code === 201 || x.code === 400)).code, 201);
  m.proc.stdin!.end();
  assert.equal(await m.exit(), 0);
  if (!(await stat('/usr/lib/apt/methods/http').catch(() => undefined))) return;
  // no passim on PATH (and the copy is not in a passim tree): apt keeps working through its own method
  const fallback = new MethodProc(join(dir, 'methods/passim'), { PATH: `${nodeDir}:/usr/bin:/bin` });
  const caps = await fallback.next();
  assert.equal(caps.code, 100);
  assert.doesNotMatch(caps.get('Version') ?? '', /passim/);
  fallback.proc.kill('SIGINT');
  await fallback.proc;
});

test('reader: messages split anywhere, \\r\\n, continuation lines, repeated keys; config: %-quoted items, apt\'s lookup order', () => {
  const text = '601 Configuration\r\nConfig-Item: Acquire::http::Proxy=http://p%3a1/\r\nConfig-Item: Acquire::https::Proxy::mirror.example=DIRECT\r\n\r\n' +
    '600 URI Acquire\nURI: http://h/a%20b\nMessage: one\n two\n\n';
  for (let cut = 1; cut < text.length; cut += 7) {
    const r = new MessageReader();
    const got = [...r.push(Buffer.from(text.slice(0, cut))), ...r.push(Buffer.from(text.slice(cut)))];
    assert.equal(got.length, 2, `cut at ${cut}`);
    assert.deepEqual(got[0]!.all('config-item'), ['Acquire::http::Proxy=http://p%3a1/', 'Acquire::https::Proxy::mirror.example=DIRECT']);
    assert.equal(got[1]!.get('uri'), 'http://h/a%20b');
    assert.equal(got[1]!.get('Message'), 'one\ntwo');
  }
  assert.equal(parseMessage('not a message'), undefined);
  assert.equal(dequote('a%3db%25'), 'a=b%');
  const c = new AptConfig();
  c.addItems(['Acquire::http::Proxy=http://p%3a1/', 'Acquire::https::Proxy::mirror.example=DIRECT', 'Acquire::http::Timeout=7', 'Acquire::https::mirror.example::Timeout=3']);
  assert.equal(c.proxyFor(new URL('http://deb.example/x'), {}), 'http://p:1/');
  assert.equal(c.proxyFor(new URL('https://other.example/x'), {}), 'http://p:1/', 'https falls back to http');
  assert.equal(c.proxyFor(new URL('https://mirror.example/x'), {}), undefined, 'DIRECT');
  assert.equal(new AptConfig().proxyFor(new URL('http://a.example/x'), { http_proxy: 'http://e:2/', no_proxy: '.example' }), undefined);
  assert.equal(c.methodInt('https', 'Timeout', 'mirror.example', 30), 3);
  assert.equal(c.methodInt('https', 'Timeout', 'other.example', 30), 7);
  // formatting: multi-line values continue, control characters never reach apt
  assert.equal(formatMessage(400, 'URI Failure', [['URI', 'u'], ['Message', 'a\nb\x01c'], ['Skip', undefined]]), '400 URI Failure\nURI: u\nMessage: a\n b c\n\n');
});

/** A stand-in engine whose add() calls resolve when the test says so. */
function scriptedEngine() {
  const calls: Array<{ entry: BatchEntry; resolve: (r: FetchResult) => void; reject: (e: unknown) => void }> = [];
  let closed = false;
  const engine: FetchBatchLike = {
    add: (entry) => new Promise((resolve, reject) => calls.push({ entry, resolve, reject })),
    close: async () => { closed = true; },
  };
  const result = (e: BatchEntry, size: number): FetchResult => ({
    path: e.output!, sha256: e.sha256, size, source: 'peer', peer: '10.98.0.1:27500', url: e.urls[0]!, ms: 1, published: true, skipped: [], waitedMs: 0,
  });
  return { engine, calls, result, closed: () => closed };
}

test('hash-known requests go to the engine (name, URI, Filename) and are answered in the order they finish; engine failures map to apt\'s FailReasons', async () => {
  const input = new PassThrough();
  const out: Message[] = [];
  const reader = new MessageReader();
  const s = scriptedEngine();
  const method = new AptMethod({ input, output: { write: (t: string) => out.push(...reader.push(t)) }, engine: async () => s.engine, socketPath: join(work, 'none.sock') });
  const running = method.run();
  const uris = [1, 2, 3, 4].map((i) => `http://mirror.example/debian/pool/main/p/p${i}/p${i}_1%3a1.0_all.deb`);
  const hashes = uris.map((u) => sha256(u));
  input.write(uris.map((u, i) => acquire({ URI: u, Filename: join(work, `partial-p${i}_1%3a1.0_all.deb`), 'Expected-SHA256': hashes[i]!.toUpperCase(), 'Expected-Checksum-FileSize': '123' })).join(''));
  await until(() => s.calls.length === 4);
  // the requests reach the engine concurrently, in no set order: index them by request from here on
  s.calls.sort((x, y) => hashes.indexOf(x.entry.sha256) - hashes.indexOf(y.entry.sha256));
  assert.deepEqual(s.calls.map((c) => c.entry.sha256), hashes, 'lower-cased');
  assert.deepEqual(s.calls.map((c) => c.entry.urls), uris.map((u) => [u]));
  assert.equal(s.calls[0]!.entry.output, join(work, 'partial-p0_1%3a1.0_all.deb'));
  assert.equal(s.calls[0]!.entry.name, 'partial-p0_1%3a1.0_all.deb');
  // finish in reverse order, one failing like a 404 from the mirror, one with wrong bytes everywhere
  const answered = () => out.filter((m) => m.code === 201 || m.code === 400);
  const steps: Array<() => void> = [
    () => s.calls[3]!.resolve(s.result(s.calls[3]!.entry, 123)),
    () => s.calls[2]!.reject(new NotFoundError('could not fetch p3: no peer found; cdn http://mirror.example/…: HTTP 404')),
    () => s.calls[1]!.reject(new ChecksumMismatchError(hashes[1]!, '', 'no source sent the right bytes')),
    () => s.calls[0]!.resolve(s.result(s.calls[0]!.entry, 123)),
  ];
  for (const [i, step] of steps.entries()) {
    step();
    await until(() => answered().length === i + 1);
  }
  const answers = answered();
  assert.deepEqual(answers.map((m) => m.get('URI')), [uris[3], uris[2], uris[1], uris[0]]);
  assert.deepEqual(answers.map((m) => m.code), [201, 400, 400, 201]);
  assert.equal(answers[0]!.get('SHA256-Hash'), hashes[3]);
  assert.equal(answers[0]!.get('Filename'), join(work, 'partial-p3_1%3a1.0_all.deb'));
  assert.equal(answers[1]!.get('FailReason'), 'HttpError404');
  assert.equal(answers[2]!.get('FailReason'), 'HashSumMismatch');
  // every 201 came after its 200
  for (const u of [uris[0], uris[3]]) {
    const i200 = out.findIndex((m) => m.code === 200 && m.get('URI') === u);
    const i201 = out.findIndex((m) => m.code === 201 && m.get('URI') === u);
    assert.ok(i200 >= 0 && i200 < i201, `200 before 201 for ${u}`);
  }
  input.end();
  await running;
  assert.ok(s.closed(), 'the engine is closed at EOF (its publishes finish)');
});

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, 'close');
  return port;
}

/** A forward HTTP proxy on loopback (absolute-form GET only) that records what it was asked for. */
async function forwardProxy(seen: string[]): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    const target = new URL(req.url ?? '');
    const up = httpRequest({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  server.on('connect', (_req, sock) => { sock.destroy(); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

test('with a proxy configured, a hash-known file the LAN does not have comes from the mirror through the proxy, verified before it gets the name', async () => {
  const seen: string[] = [];
  const proxy = await forwardProxy(seen);
  const input = new PassThrough();
  const out: Message[] = [];
  const reader = new MessageReader();
  const asked: BatchEntry[] = [];
  const engine: FetchBatchLike = {
    add: async (entry) => {
      asked.push(entry);
      throw new NotFoundError('could not fetch: no peer found');
    },
    close: async () => {},
  };
  const method = new AptMethod({ input, output: { write: (t: string) => out.push(...reader.push(t)) }, engine: async () => engine, socketPath: join(work, 'none.sock') });
  const running = method.run();
  try {
    input.write(config([`Acquire::http::Proxy=http://127.0.0.1:${proxy.port}/`]));
    const uri = mirror.url(DEB_URI_PATH);
    const good = join(work, 'proxied-good.deb');
    const bad = join(work, 'proxied-bad.deb');
    input.write(acquire({ URI: uri, Filename: good, 'Expected-SHA256': sha256(deb), 'Expected-Checksum-FileSize': String(deb.length) }));
    const done = await next(out, (m) => (m.code === 201 || m.code === 400) && m.get('Filename') === good);
    assert.equal(done.code, 201, done.get('Message'));
    assert.deepEqual(asked.map((e) => e.urls), [[]], 'the batch was asked for the LAN only');
    assert.deepEqual(seen, [uri], 'the mirror through the proxy');
    assert.equal(done.get('SHA256-Hash'), sha256(deb));
    assert.ok((await readFile(good)).equals(deb));
    // the mirror's bytes do not match what apt expects: no file under the name, HashSumMismatch
    input.write(acquire({ URI: uri, Filename: bad, 'Expected-SHA256': sha256('something else') }));
    const f = await next(out, (m) => m.code === 400);
    assert.equal(f.get('FailReason'), 'HashSumMismatch');
    assert.equal(await stat(bad).catch(() => undefined), undefined);
    assert.deepEqual((await readdir(work)).filter((n) => n.includes('.passim-')), [], 'no temp file left');
  } finally {
    input.end();
    await running;
    proxy.server.close();
    proxy.server.closeAllConnections();
  }
});

async function next(out: Message[], pred: (m: Message) => boolean): Promise<Message> {
  await until(() => out.some(pred));
  return out.find(pred)!;
}
