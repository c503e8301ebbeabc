/**
 * `passim fetch --from` on a LAN of network namespaces: host A's daemon holds the files, host B
 * (no daemon) fetches the whole list from A with no request to the mirror, asking for all hashes
 * in multi-question mDNS queries (captured on the wire by host C); and host D, whose daemon has
 * heard A announce the files, gets them with no mDNS query at all (the daemon's peer cache).
 * Root only; CI runs it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile, readFile, readdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { createLan, netnsSkip, type Lan, type LanHost } from '../helpers/netns.js';
import { requires } from '../helpers/requires.js';
import { eventually } from '../helpers/eventually.js';
import { startDaemon, passim, type TestDaemon } from '../helpers/daemon.js';
import { MdnsHost, type HostEvent } from '../helpers/mdns-host-client.js';
import { ControlClient } from '../../lib/control/client.js';
import { subtypeName } from '../../lib/discovery/names.js';
import { ONE_SHOT_QUESTIONS } from '../../lib/discovery/browse-many.js';

const skip = netnsSkip() || requires('openssl');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ROOT = resolve(import.meta.dirname, '../..');
const N = 30;
const CDN_PORT = 8443;

let lan: Lan;
let A: LanHost, B: LanHost, C: LanHost, D: LanHost;
let daemonA: TestDaemon;
let daemonD: TestDaemon;
let work: string;
let capture: MdnsHost;
let cdn: ResultPromise;
let cdnCert: string;
const cdnHits: string[] = [];
const files: Array<{ name: string; data: Buffer; hash: string }> = [];
let list: string;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'passim-batch-lan-'));
  lan = await createLan(4);
  [A, B, C, D] = lan.hosts as [LanHost, LanHost, LanHost, LanHost];
  capture = await MdnsHost.start(C);
  await capture.call('capture');
  // D's daemon runs before A publishes, so it hears A's announcements
  [daemonA, daemonD] = await Promise.all([startDaemon({ host: A }), startDaemon({ host: D })]);

  const key = join(work, 'cdn.key');
  cdnCert = join(work, 'cdn.pem');
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${C.address}`, '-addext', `subjectAltName=IP:${C.address}`, '-keyout', key, '-out', cdnCert]);
  const routes: Record<string, { file: string }> = {};
  const client = new ControlClient(daemonA.socket);
  try {
    for (let i = 0; i < N; i++) {
      const data = randomBytes(10_000 + i);
      const name = `pkg${i}.deb`;
      const file = join(work, name);
      await writeFile(file, data);
      routes[`/pool/${name}`] = { file };
      files.push({ name, data, hash: sha(data) });
      await client.publish(file, { shareLimit: 10 });
    }
  } finally {
    await client.destroy();
  }
  list = files.map((f) => `${f.hash} ${f.name} https://${C.address}:${CDN_PORT}/pool/${f.name}`).join('\n') + '\n';
  cdn = C.spawn(process.execPath, ['--import', 'tsx', 'test/helpers/https-file-server.ts', JSON.stringify({ port: CDN_PORT, cert: cdnCert, key, routes })],
    { cwd: ROOT, buffer: false, stdin: 'ignore' });
  await new Promise<void>((res, rej) => {
    createInterface({ input: cdn.stdout! }).on('line', (l) => {
      if (l.startsWith('ready')) res();
      if (l.startsWith('hit ')) cdnHits.push(l.slice(4));
    });
    cdn.then(() => rej(new Error('CDN server exited')));
  });
});

after(async () => {
  if (skip) return;
  await capture?.close();
  await Promise.all([daemonA, daemonD].map(async (d) => { await d?.stop(); await d?.cleanup(); }));
  await lan?.destroy();
  await rm(work, { recursive: true, force: true });
});

/** mDNS queries a host sent asking for any of our files' subtypes. */
function queriesFrom(h: LanHost, since: number): HostEvent[] {
  const subs = new Set(files.map((f) => subtypeName(f.hash).toLowerCase()));
  return capture.events.slice(since).filter((e) => e.from === h.address && e.packet?.type === 'query' &&
    (e.packet.questions ?? []).some((q) => subs.has(q.name.toLowerCase())));
}

async function fetchList(h: LanHost, socket: string) {
  const out = await mkdtemp(join(work, `out-${h.ns}-`));
  const listFile = join(work, `list-${h.ns}`);
  await writeFile(listFile, list);
  const r = await passim(['fetch', '--from', listFile, '-o', out, '--json', '--socket', socket], { host: h, env: { PASSIM_CDN_CA: cdnCert } });
  const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { path: string; source: string; peer: string; error?: string });
  return { ...r, out, lines };
}

test('host B (no daemon) gets the whole list from host A: 0 mirror requests, several questions per query packet', { skip }, async () => {
  const mark = capture.mark();
  const r = await fetchList(B, join(work, 'no-daemon.sock'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.lines.length, N, 'one JSON line per file');
  for (const l of r.lines) {
    assert.equal(l.source, 'peer', JSON.stringify(l));
    assert.equal(l.peer, A.address);
  }
  for (const f of files) assert.deepEqual(await readFile(join(r.out, f.name)), f.data);
  assert.deepEqual(cdnHits, [], 'the mirror was never asked');
  assert.deepEqual((await readdir(r.out)).filter((n) => n.endsWith('.tmp')), []);

  const qs = queriesFrom(B, mark);
  assert.ok(qs.length > 0, 'B queried over mDNS');
  const asked = new Set(qs.flatMap((e) => e.packet!.questions!.map((q) => q.name.toLowerCase())));
  for (const f of files) assert.ok(asked.has(subtypeName(f.hash).toLowerCase()), `asked for ${f.name}`);
  const multi = qs.filter((e) => (e.packet!.questions ?? []).length > 1);
  assert.ok(multi.length > 0, 'at least one query carried several questions');
  // few enough that Avahi's 512-byte legacy unicast answer has room (browse-many.ts ONE_SHOT_QUESTIONS)
  for (const e of qs) assert.ok(e.packet!.questions!.length <= ONE_SHOT_QUESTIONS, `query of ${e.packet!.questions!.length} questions`);
  // every hash in one round: a packet per three questions (× 3 sends; one more packet each for the
  // instance's SRV/TXT/A questions sharing them), not one lookup per hash
  assert.ok(qs.length <= 3 * (Math.ceil(N / ONE_SHOT_QUESTIONS) + 1), `${qs.length} query packets for ${N} hashes`);
});

test("host D's daemon has heard A announce the files: D's batch gets them with no mDNS query for them", { skip }, async () => {
  // A's announcements go out within its budget (100 new items a second): wait until D has them all
  // (an announcement dropped for good, rather than delayed, would time this out)
  const c = new ControlClient(daemonD.socket);
  try {
    await eventually('D\'s daemon knows every hash from A\'s announcements', async () => {
      const reply = await c.peers(files.map((f) => f.hash));
      return Object.keys(reply.peers).length === N || undefined;
    }, 5000);
  } finally {
    await c.destroy();
  }
  const mark = capture.mark();
  const r = await fetchList(D, daemonD.socket);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.lines.length, N);
  for (const l of r.lines) assert.equal(l.source, 'peer', JSON.stringify(l));
  assert.deepEqual(cdnHits, [], 'the mirror was never asked');
  assert.deepEqual(queriesFrom(D, mark), [], 'no mDNS query for hashes the daemon knew');
});
