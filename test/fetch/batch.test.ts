/**
 * The batch engine on loopback: the `--from` list and its errors, FetchBatch against real HTTPS
 * servers (a keep-alive CDN that counts connections and concurrent requests, a fake daemon that
 * answers POST /peers), and the real CLI `passim fetch --from` with a real local daemon.
 * Peers come from injected finders (or --no-peers for the CLI), so nothing here multicasts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { ControlClient } from '../../lib/control/client.js';
import { ExitCode, NotFoundError, ChecksumMismatchError, UsageError, worstExitCode } from '../../lib/core/errors.js';
import type { BrowseMany } from '../../lib/discovery/types.js';
import { FetchBatch } from '../../lib/fetch/batch.js';
import { parseBatchList } from '../../lib/fetch/batch-list.js';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { honest, makeCert, rmDir, sha256, startServer, tempDir, tempFilesIn, type KeyCert, type TestServer } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/passim.js');
const H = (s: string) => createHash('sha256').update(s).digest('hex');

let kc: KeyCert;
const dirs: string[] = [];
const dir = () => {
  const d = tempDir();
  dirs.push(d);
  return d;
};

before(async () => {
  kc = await makeCert();
});
after(() => {
  for (const d of dirs) rmDir(d);
});

describe('--from list', () => {
  it('reads SHA256 NAME [URL…], skipping blank lines and comments', () => {
    const list = `# a comment\n\n${H('a')} a.bin https://m.example/a.bin http://m2.example/a.bin\n  ${H('b').toUpperCase()}\tb.bin  \r\n`;
    assert.deepEqual(parseBatchList(list, 'L'), [
      { sha256: H('a'), name: 'a.bin', urls: ['https://m.example/a.bin', 'http://m2.example/a.bin'] },
      { sha256: H('b'), name: 'b.bin', urls: [] },
    ]);
  });

  for (const [what, line, msg] of [
    ['a short hash', 'abc a.bin', /L:3: .*"abc" is not 64 hex digits/],
    ['no name', `${H('x')}`, /L:3: a NAME is missing/],
    ['a name with a slash', `${H('x')} ../x`, /L:3: /],
    ['a URL that is not http(s)', `${H('x')} x.bin ftp://m/x`, /L:3: not an http\(s\) URL: "ftp:\/\/m\/x"/],
    ['a name listed twice', `${H('y')} a.bin`, /L:3: a\.bin is listed twice \(first on line 2\)/],
  ] as const) {
    it(`${what} is a usage error naming its line`, () => {
      assert.throws(() => parseBatchList(`# head\n${H('a')} a.bin\n${line}\n`, 'L'), (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match((err as Error).message, msg);
        return true;
      });
    });
  }

  it('the worst exit code: usage > other error > daemon > mismatch > not found > ok', () => {
    assert.equal(worstExitCode([]), 0);
    assert.equal(worstExitCode([0, 3, 0]), 3);
    assert.equal(worstExitCode([3, 4, 3]), 4);
    assert.equal(worstExitCode([4, 1]), 1);
    assert.equal(worstExitCode([1, 2, 5]), 2);
    assert.equal(worstExitCode([0, 77]), 1);
  });
});

interface Cdn {
  port: number;
  url(p: string): string;
  requests: string[];
  connections: number;
  maxConcurrent: number;
  close(): Promise<void>;
}

/**
 * A keep-alive HTTPS mirror over a map of path → bytes; each response waits `delayMs`. With
 * `holdUntil`, responses are also held until that many requests are in flight at once (or 5 s
 * passed), so a client's real concurrency shows whatever the machine's load.
 */
async function startCdn(files: Map<string, Buffer>, delayMs = 5, holdUntil = 0): Promise<Cdn> {
  let active = 0;
  const held: Array<() => void> = [];
  let holding = holdUntil > 0;
  const release = () => {
    holding = false;
    for (const go of held.splice(0)) go();
  };
  const holdTimer = holding ? setTimeout(release, 5000) : undefined;
  const cdn: Cdn = { port: 0, url: (p) => `https://127.0.0.1:${cdn.port}${p}`, requests: [], connections: 0, maxConcurrent: 0, close: async () => {} };
  const server = createHttpsServer({ key: kc.key, cert: kc.cert, keepAliveTimeout: 5000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    cdn.requests.push(path);
    active++;
    cdn.maxConcurrent = Math.max(cdn.maxConcurrent, active);
    const answer = () => setTimeout(() => {
      active--;
      const body = files.get(path);
      if (!body) return res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    }, delayMs);
    if (!holding) return answer();
    held.push(answer);
    if (active >= holdUntil) release();
  });
  server.on('secureConnection', () => cdn.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cdn.port = (server.address() as { port: number }).port;
  cdn.close = () => new Promise<void>((r) => {
    if (holdTimer) clearTimeout(holdTimer);
    server.closeAllConnections();
    server.close(() => r());
  });
  return cdn;
}

/** A control socket that knows status, items and (unless `old`) POST /peers. */
async function startCacheDaemon(d: string, peers: Record<string, Array<{ address: string; port: number; instance: string; host: string }>>, old = false) {
  const socketPath = join(d, 'passim.sock');
  const asked: string[][] = [];
  const json = (res: ServerResponse, code: number, body: unknown) => {
    const s = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) }).end(s);
  };
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && u.pathname === '/status') return json(res, 200, { version: 't', status: 'running', port: 1, name: 'Passim-SELF', uri: '', downloadSaving: 0, carbonSaving: 0, items: 0 });
    if (req.method === 'GET' && u.pathname === '/items') return json(res, 200, []);
    if (req.method === 'POST' && u.pathname === '/peers' && !old) {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        const hashes = (JSON.parse(body) as { hashes: string[] }).hashes;
        asked.push(hashes);
        json(res, 200, { peers: Object.fromEntries(hashes.filter((h) => peers[h]).map((h) => [h, peers[h]])) });
      });
      return;
    }
    if (req.method === 'POST' && u.pathname === '/items') {
      req.resume();
      req.on('end', () => json(res, 201, {}));
      return;
    }
    json(res, 404, { error: { code: 'PASSIM_USAGE', message: `no such control route: ${req.method} ${u.pathname}` } });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  return { socketPath, asked, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

/** A finder that records each round's hashes and answers from a table. */
function tableFinder(table: Record<string, number[]>) {
  const rounds: string[][] = [];
  const finder: BrowseMany = async (hashes, opts) => {
    rounds.push([...hashes]);
    for (const h of hashes) for (const port of table[h] ?? []) opts.onPeer(h, { address: '127.0.0.1', port, instance: `Passim-P${port}`, host: 'p.local' }, 'mdns');
  };
  return { finder, rounds };
}

describe('FetchBatch', () => {
  it('fetches many files over a few reused connections, at most 8 at once per mirror, one discovery round for entries added one by one', async () => {
    const d = dir();
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 40; i++) files.set(`/f${i}.bin`, randomBytes(2000 + i));
    const cdn = await startCdn(files, 20, 8);
    const { finder, rounds } = tableFinder({});
    // a long gather window: the round starts when close() says no more entries come (no timing in the test)
    const batch = new FetchBatch({ outputDir: d, finders: [finder], cdnCa: kc.cert, socketPath: join(d, 'none.sock'), timeoutMs: 20, gatherMs: 60_000 });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const results = [];
      for (const [p, data] of files) {
        results.push(batch.add({ sha256: sha256(data), name: p.slice(1), urls: [cdn.url(p)] }));
        await new Promise((r) => setImmediate(r)); // apt's way: one by one
      }
      const closing = batch.close();
      const rs = await Promise.all(results);
      await closing;
      for (const r of rs) {
        assert.equal(r.source, 'cdn');
        assert.deepEqual(readFileSync(r.path), files.get(`/${r.path.split('/').pop()}`));
      }
      assert.equal(rounds.length, 1, 'one discovery round');
      assert.equal(rounds[0]!.length, 40);
      assert.equal(cdn.requests.length, 40);
      // the mirror holds its answers until 8 are asked at once: fewer means the pool queued them
      assert.equal(cdn.maxConcurrent, 8, `8 requests at once (never more), saw ${cdn.maxConcurrent}`);
      assert.ok(cdn.connections <= 8, `connections reused: ${cdn.connections} TLS connections for 40 requests`);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), [], '40 queued files are no listener leak to warn about on stderr');
    } finally {
      process.off('warning', onWarning);
      await batch.close();
      await cdn.close();
    }
    assert.deepEqual(tempFilesIn(d), []);
  });

  it('a peer the daemon has heard of is used without asking the finders; the rest go to the finders', async () => {
    const d = dir();
    const a = randomBytes(5000);
    const b = randomBytes(6000);
    const pa = await startServer(kc, honest(a));
    const pb = await startServer(kc, honest(b));
    const dm = await startCacheDaemon(d, { [sha256(a)]: [{ address: '127.0.0.1', port: pa.port, instance: 'Passim-AAAA', host: 'a.local' }] });
    const { finder, rounds } = tableFinder({ [sha256(b)]: [pb.port] });
    const batch = new FetchBatch({ outputDir: d, finders: [finder], socketPath: dm.socketPath, timeoutMs: 20, publish: false });
    try {
      const [ra, rb] = await Promise.all([
        batch.add({ sha256: sha256(a), name: 'a.bin', urls: [] }),
        batch.add({ sha256: sha256(b), name: 'b.bin', urls: [] }),
      ]);
      assert.equal(ra.source, 'peer');
      assert.equal(rb.source, 'peer');
      assert.deepEqual(dm.asked, [[sha256(a), sha256(b)]], 'the daemon was asked once, for both');
      assert.deepEqual(rounds, [[sha256(b)]], 'only the hash the daemon did not know went to the finders');
      assert.equal(pa.requests.length, 1);
      assert.deepEqual(readFileSync(join(d, 'a.bin')), a);
      assert.deepEqual(readFileSync(join(d, 'b.bin')), b);
    } finally {
      await batch.close();
      await dm.close();
      await pa.close();
      await pb.close();
    }
  });

  it('files held by two peers are spread over both (at most 2 at once per peer)', async () => {
    const d = dir();
    const files = Array.from({ length: 12 }, (_, i) => randomBytes(4000 + i));
    const byHash = new Map(files.map((b) => [sha256(b), b]));
    let active = 0;
    let most = 0;
    const serve = (req: { path: string }, sock: import('node:tls').TLSSocket) => {
      const h = /sha256=([0-9a-f]{64})/.exec(req.path)![1]!;
      active++;
      most = Math.max(most, active);
      setTimeout(() => {
        active--;
        honest(byHash.get(h)!)(req as never, sock);
      }, 10);
    };
    const p1 = await startServer(kc, serve);
    const p2 = await startServer(kc, serve);
    const { finder } = tableFinder(Object.fromEntries(files.map((b) => [sha256(b), [p1.port, p2.port]])));
    const batch = new FetchBatch({ outputDir: d, finders: [finder], socketPath: join(d, 'none.sock'), timeoutMs: 20, publish: false });
    try {
      const rs = await Promise.all(files.map((b, i) => batch.add({ sha256: sha256(b), name: `f${i}`, urls: [] })));
      for (const r of rs) assert.equal(r.source, 'peer');
      assert.ok(p1.requests.length >= 3 && p2.requests.length >= 3, `spread: ${p1.requests.length} + ${p2.requests.length}`);
      assert.equal(p1.requests.length + p2.requests.length, files.length);
      assert.ok(most <= 4, `at most 2 per peer at once, saw ${most} over both`);
    } finally {
      await batch.close();
      await p1.close();
      await p2.close();
    }
  });

  it('a daemon without the peers route (404) means no cache, not an error', async () => {
    const d = dir();
    const dm = await startCacheDaemon(d, {}, true);
    const client = new ControlClient(dm.socketPath);
    try {
      assert.deepEqual(await client.peers([H('x')]), { peers: {} });
    } finally {
      await client.destroy();
      await dm.close();
    }
  });

  it('two entries with one hash are fetched once; failures reject with their own error class', async () => {
    const d = dir();
    const data = randomBytes(3000);
    const cdn = await startCdn(new Map([['/x', data], ['/bad', randomBytes(3000)]]));
    const batch = new FetchBatch({ outputDir: d, finders: [], cdnCa: kc.cert, socketPath: join(d, 'none.sock') });
    try {
      const [r1, r2, bad, missing] = await Promise.allSettled([
        batch.add({ sha256: sha256(data), name: 'one.bin', urls: [cdn.url('/x')] }),
        batch.add({ sha256: sha256(data), name: 'two.bin', urls: [cdn.url('/x')] }),
        batch.add({ sha256: H('bad'), name: 'bad.bin', urls: [cdn.url('/bad')] }),
        batch.add({ sha256: H('missing'), name: 'missing.bin', urls: [cdn.url('/missing')] }),
      ]);
      assert.equal(r1.status, 'fulfilled');
      assert.equal(r2.status, 'fulfilled');
      assert.deepEqual(readFileSync(join(d, 'two.bin')), data);
      assert.equal(cdn.requests.filter((p) => p === '/x').length, 1, 'one download for both');
      assert.ok(bad.status === 'rejected' && bad.reason instanceof ChecksumMismatchError);
      assert.ok(missing.status === 'rejected' && missing.reason instanceof NotFoundError);
      assert.equal(existsSync(join(d, 'bad.bin')), false);
    } finally {
      await batch.close();
      await cdn.close();
    }
    assert.deepEqual(tempFilesIn(d), []);
  });
});

describe('passim fetch --from (real CLI, real local daemon)', () => {
  let daemon: TestDaemon;
  let cdn: Cdn;
  const local = [randomBytes(7000), randomBytes(8000)];
  const remote = [randomBytes(9000), randomBytes(10_000), randomBytes(11_000)];
  const wrong = randomBytes(4000);

  before(async () => {
    // the CLI runs from dist/ (others' type errors still emit: no reject)
    await execa('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, reject: false });
    daemon = await startDaemon();
    // the daemon holds two files already
    for (const [i, data] of local.entries()) {
      const p = join(dir(), `local${i}.bin`);
      writeFileSync(p, data);
      const c = new ControlClient(daemon.socket);
      await c.publish(p);
      await c.destroy();
    }
    const files = new Map<string, Buffer>(remote.map((b, i) => [`/remote${i}.bin`, b]));
    files.set('/wrong.bin', wrong);
    cdn = await startCdn(files);
  });

  after(async () => {
    await cdn?.close();
    await daemon?.stop();
    await daemon?.cleanup();
  });

  function run(args: string[], input?: string, cwd?: string) {
    return execa('node', [BIN, ...args], {
      reject: false,
      input,
      cwd,
      env: { PASSIM_CDN_CA: kc.certFile, PASSIM_SOCKET: daemon.socket },
      timeout: 60_000,
    });
  }

  it('a bad line is a usage error naming it, before anything is downloaded', async () => {
    const d = dir();
    const list = `${sha256(remote[0]!)} remote0.bin ${cdn.url('/remote0.bin')}\nnot-a-hash x.bin\n`;
    const before = cdn.requests.length;
    const r = await run(['fetch', '--from', '-', '--no-peers', '-o', d], list);
    assert.equal(r.exitCode, ExitCode.USAGE, r.stderr);
    assert.match(r.stderr, /stdin:2: /);
    assert.equal(cdn.requests.length, before, 'nothing downloaded');
    assert.deepEqual(readdirSync(d), []);
  });

  it('gets files from the local daemon and the CDN, one JSON line each; a wrong hash fails alone (exit 4), a missing file is 3', async () => {
    const d = dir();
    const lines = [
      `# from the daemon`,
      ...local.map((b, i) => `${sha256(b)} local${i}.bin ${cdn.url(`/nope${i}`)}`),
      `# from the mirror`,
      ...remote.map((b, i) => `${sha256(b)} remote${i}.bin ${cdn.url(`/remote${i}.bin`)}`),
      `${H('not these bytes')} wrong.bin ${cdn.url('/wrong.bin')}`,
      `${H('nowhere')} missing.bin ${cdn.url('/missing.bin')}`,
    ];
    const listFile = join(dir(), 'list.txt');
    writeFileSync(listFile, lines.join('\n') + '\n');
    const r = await run(['fetch', '--from', listFile, '--no-peers', '-o', d, '--json']);
    assert.equal(r.exitCode, ExitCode.CHECKSUM, `worst of the files: ${r.stderr}`);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(out.length, 7, 'one line per file');
    const by = new Map(out.map((o) => [String(o.path).split('/').pop(), o]));
    for (const [i, b] of local.entries()) {
      const o = by.get(`local${i}.bin`)!;
      assert.equal(o.source, 'local');
      assert.equal(o.size, b.length);
      assert.equal(o.sha256, sha256(b));
      assert.equal(typeof o.ms, 'number');
      assert.deepEqual(readFileSync(join(d, `local${i}.bin`)), b);
    }
    for (const [i, b] of remote.entries()) {
      const o = by.get(`remote${i}.bin`)!;
      assert.equal(o.source, 'cdn');
      assert.equal(o.peer, null);
      assert.deepEqual(readFileSync(join(d, `remote${i}.bin`)), b);
    }
    assert.equal(by.get('wrong.bin')!.code, 'PASSIM_CHECKSUM_MISMATCH');
    assert.equal(by.get('wrong.bin')!.exit, 4);
    assert.match(String(by.get('wrong.bin')!.error), /wrong bytes/);
    assert.equal(existsSync(join(d, 'wrong.bin')), false, 'no file at the path of the wrong one');
    assert.equal(by.get('missing.bin')!.code, 'PASSIM_NOT_FOUND');
    assert.equal(by.get('missing.bin')!.exit, 3);
    assert.deepEqual(tempFilesIn(d), []);
    // what came from the mirror is now on the daemon, for the LAN
    const c = new ControlClient(daemon.socket);
    try {
      const held = new Set((await c.items()).map((i) => i.hash));
      for (const b of remote) assert.ok(held.has(sha256(b)), 'published');
      assert.equal(held.has(H('not these bytes')), false);
    } finally {
      await c.destroy();
    }
  });

  it('text output: one line per file; only a missing file gives exit 3', async () => {
    const d = dir();
    const list = `${sha256(remote[0]!)} r.bin ${cdn.url('/remote0.bin')}\n${H('nowhere2')} m.bin ${cdn.url('/m.bin')}\n`;
    const r = await run(['fetch', '--from', '-', '--no-peers', '-o', d], list);
    assert.equal(r.exitCode, ExitCode.NOT_FOUND, r.stderr);
    assert.match(r.stdout, /^saved .*r\.bin \(8\.8 KiB\) from the (CDN|local daemon)/m);
    assert.match(r.stderr, /passim: error: m\.bin: could not fetch/);
  });

  it('--sha256-url over plain http is refused, naming the risk, unless --insecure-checksum-url', async () => {
    const r = await run(['fetch', 'x.bin', '--sha256-url', 'http://127.0.0.1:1/SHA256SUMS', '--no-peers', '-o', dir()]);
    assert.equal(r.exitCode, ExitCode.USAGE);
    assert.match(r.stderr, /not https: anyone on the path could swap the file and its hash/);
    const r2 = await run(['fetch', 'x.bin', '--sha256-url', 'http://127.0.0.1:1/SHA256SUMS', '--insecure-checksum-url', '--no-peers', '-o', dir()]);
    assert.notEqual(r2.exitCode, ExitCode.USAGE, 'accepted (then fails to connect)');
  });
});
