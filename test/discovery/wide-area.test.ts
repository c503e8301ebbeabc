/**
 * Wide-area DNS-SD pieces on their own: UPDATE encoding (class NONE / ANY deletes, prerequisites,
 * the update-lease option), TSIG sign/verify (request and response MACs, tampering, BADKEY),
 * the key file (tsig-keygen format, world-readable refused), the config keys, and the zone lookup
 * against a small DNS server on loopback that answers only what it is asked (no additional
 * records). The same code against a real BIND is in test/netns/wide-area.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { encodeUpdate, readHeader, recordOffsets, skipName, CLASS_ANY, CLASS_IN, CLASS_NONE, EDNS_UPDATE_LEASE } from '../../lib/discovery/wide-area/update-message.js';
import { sign, verify, readTsig, type TsigKey } from '../../lib/discovery/wide-area/tsig.js';
import { loadKeyFile, parseKeyFile } from '../../lib/discovery/wide-area/key-file.js';
import { hostLabelFor, instanceOfName, instanceOps, itemDeleteOp, refreshedOf, subtypeNameIn } from '../../lib/discovery/wide-area/records.js';
import { zoneBrowseMany } from '../../lib/discovery/wide-area/lookup.js';
import { parseDaemonConfig } from '../../lib/core/config.js';
import { ConfigError } from '../../lib/core/errors.js';
import type { Peer } from '../../lib/discovery/types.js';

const KEY: TsigKey = { name: 'passim', algorithm: 'hmac-sha256', secret: Buffer.from('wZtBaKb9XQ9IqFZNcUKSAiTg4pW3zpS/arEB77xiADU=', 'base64') };
const OTHER: TsigKey = { ...KEY, secret: randomBytes(32) };
const H = 'ab'.repeat(32);

function records(buf: Buffer) {
  return recordOffsets(buf).map((off) => {
    const name = (dnsPacket as unknown as { name: { decode(b: Buffer, o: number): string } }).name.decode(buf, off);
    const p = skipName(buf, off);
    return { name, type: buf.readUInt16BE(p), klass: buf.readUInt16BE(p + 2), ttl: buf.readUInt32BE(p + 4), rdlength: buf.readUInt16BE(p + 8), rdata: buf.subarray(p + 10, p + 10 + buf.readUInt16BE(p + 8)) };
  });
}

test('UPDATE: opcode 5, zone section, prerequisite, adds, class NONE and class ANY deletes, lease option last', () => {
  const msg = encodeUpdate({
    id: 0x1234,
    zone: 'cache.test',
    prerequisites: [{ name: 'Passim-1A2B._cache._tcp.cache.test', type: 'SRV', present: false }],
    updates: [
      ...instanceOps({ domain: 'cache.test', instance: 'Passim-1A2B', hostLabel: 'h-1a2b', port: 27500, addresses: ['10.98.0.1'], refreshed: 1000 }),
      itemDeleteOp(H.slice(0, 60), 'cache.test', 'Passim-1A2B'),
    ],
    lease: 7200,
  });
  const h = readHeader(msg);
  assert.equal(h.id, 0x1234);
  assert.equal(h.opcode, 5);
  assert.equal(h.qr, false);
  assert.deepEqual(h.counts, [1, 1, 9, 1]);
  const rr = records(msg);
  // prerequisite "SRV RRset absent": class NONE, TTL 0, no RDATA
  assert.deepEqual([rr[0]!.type, rr[0]!.klass, rr[0]!.ttl, rr[0]!.rdlength], [33, CLASS_NONE, 0, 0]);
  // add PTR under the service, class IN, TTL 60
  assert.equal(rr[1]!.name, '_cache._tcp.cache.test');
  assert.deepEqual([rr[1]!.type, rr[1]!.klass, rr[1]!.ttl], [12, CLASS_IN, 60]);
  // delete the SRV RRset: class ANY, TTL 0, empty
  assert.deepEqual([rr[2]!.type, rr[2]!.klass, rr[2]!.ttl, rr[2]!.rdlength], [33, CLASS_ANY, 0, 0]);
  assert.deepEqual([rr[3]!.type, rr[3]!.klass], [33, CLASS_IN]);
  assert.equal(rr[3]!.rdata.readUInt16BE(4), 27500);
  // TXT carries the refresh time
  assert.match(rr[5]!.rdata.toString('latin1'), /refreshed=1000/);
  // our item PTR deleted with class NONE and its RDATA (only ours goes)
  const del = rr[9]!;
  assert.equal(del.name, subtypeNameIn(H, 'cache.test'));
  assert.deepEqual([del.type, del.klass, del.ttl], [12, CLASS_NONE, 0]);
  assert.ok(del.rdlength > 0);
  // OPT with the update lease (RFC 9664): option 2, 4 bytes, 7200
  const opt = rr[10]!;
  assert.equal(opt.type, 41);
  assert.equal(opt.rdata.readUInt16BE(0), EDNS_UPDATE_LEASE);
  assert.equal(opt.rdata.readUInt16BE(2), 4);
  assert.equal(opt.rdata.readUInt32BE(4), 7200);
});

test('TSIG: a signed request verifies; one flipped bit, another secret or a stale time does not', () => {
  const msg = encodeUpdate({ id: 7, zone: 'cache.test', updates: [itemDeleteOp(H.slice(0, 60), 'cache.test', 'Passim-0001')] });
  const now = 1_800_000_000;
  const { message, mac } = sign(msg, KEY, { now });
  assert.equal(mac.length, 32);
  assert.equal(readHeader(message).counts[3], 1, 'ARCOUNT counts the TSIG record');
  const t = readTsig(message)!;
  assert.equal(t.keyName, 'passim');
  assert.equal(t.fields.algorithm, 'hmac-sha256');
  assert.equal(t.fields.originalId, 7);
  assert.deepEqual(verify(message, KEY, { now }), { ok: true, error: 0, fields: t.fields });
  // from byte 2: the ID is covered as Original ID in the TSIG record, not where it stands
  const macAt = message.length - 6 - 2 - 32;
  for (const i of [...Array.from({ length: t.offset - 2 }, (_, k) => k + 2), macAt, macAt + 31]) {
    const bad = Buffer.from(message);
    bad[i]! ^= 0x01;
    const v = verify(bad, KEY, { now });
    assert.ok(!v.ok || v.error !== 0, `flipping a bit at ${i} must not verify`);
  }
  assert.equal(verify(message, OTHER, { now }).ok, false);
  assert.deepEqual(verify(message, KEY, { now: now + 301 }), { ok: false, reason: 'time signed outside the fudge (clocks differ)' });
});

test('TSIG: a response MAC covers the request MAC; an unsigned BADKEY answer is reported, not verified', () => {
  const req = sign(encodeUpdate({ id: 9, zone: 'cache.test', updates: [] }), KEY);
  const answer = Buffer.from(req.message.subarray(0, 12 + 'cache.test'.length + 2 + 4));
  answer.writeUInt16BE(0xa800, 2); // QR, opcode UPDATE, NOERROR
  answer.writeUInt16BE(0, 10);
  const resp = sign(answer, KEY, { requestMac: req.mac });
  assert.equal(verify(resp.message, KEY, { requestMac: req.mac }).ok, true);
  assert.equal(verify(resp.message, KEY, { requestMac: randomBytes(32) }).ok, false, 'answer to another request');
  assert.equal(verify(resp.message, KEY).ok, false, 'no request MAC');
  // what a server sends for an unknown key: NOTAUTH, TSIG with error BADKEY (17) and no MAC
  const badkey = Buffer.from(answer);
  badkey.writeUInt16BE(0xa809, 2);
  const unsigned = sign(badkey, { ...KEY, secret: Buffer.alloc(0) }, { error: 17 }).message;
  const t = readTsig(unsigned)!;
  const stripped = Buffer.concat([unsigned.subarray(0, t.offset), rebuildWithoutMac(unsigned.subarray(t.offset))]);
  const v = verify(stripped, KEY, { requestMac: req.mac });
  assert.equal(v.ok && v.error, 17);
});

/** The same TSIG record with MAC size 0 (as servers send with BADKEY/BADSIG). */
function rebuildWithoutMac(rr: Buffer): Buffer {
  const p = skipName(rr, 0);
  const rdStart = p + 10;
  const afterAlg = skipName(rr, rdStart);
  const macLen = rr.readUInt16BE(afterAlg + 8);
  const out = Buffer.concat([rr.subarray(0, afterAlg + 8), Buffer.from([0, 0]), rr.subarray(afterAlg + 10 + macLen)]);
  out.writeUInt16BE(rr.readUInt16BE(p + 8) - macLen, p + 8);
  return out;
}

test('key file: tsig-keygen output parses; other algorithms, no secret and a world-readable file are refused', async () => {
  const text = 'key "passim" {\n\talgorithm hmac-sha256;\n\tsecret "wZtBaKb9XQ9IqFZNcUKSAiTg4pW3zpS/arEB77xiADU=";\n};\n';
  assert.deepEqual(parseKeyFile(text, 'k'), KEY);
  assert.deepEqual(parseKeyFile(`# comment\n/* c */ ${text}`, 'k'), KEY);
  assert.throws(() => parseKeyFile(text.replace('hmac-sha256', 'hmac-md5'), 'k'), /hmac-md5 is not supported/);
  assert.throws(() => parseKeyFile('key "x" { algorithm hmac-sha256; };', 'k'), /no secret/);
  assert.throws(() => parseKeyFile('nothing here', 'k'), /tsig-keygen/);
  const dir = await mkdtemp(join(tmpdir(), 'passim-key-'));
  try {
    const f = join(dir, 'passim.key');
    await writeFile(f, text);
    await chmod(f, 0o644);
    await assert.rejects(loadKeyFile(f), (e: Error) => e instanceof ConfigError && /readable or writable by every user \(mode 0644\).*chmod 600/.test(e.message));
    await chmod(f, 0o600);
    assert.deepEqual(await loadKeyFile(f), KEY);
    await chmod(f, 0o640);
    assert.deepEqual(await loadKeyFile(f), KEY);
    await assert.rejects(loadKeyFile(join(dir, 'missing')), ConfigError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('config: Domain, DnsServer, DnsKeyFile parse; bad values name the key and line', () => {
  const { config } = parseDaemonConfig('[daemon]\nDomain=Cache.Example.COM.\nDnsServer=10.99.0.254:5353\nDnsKeyFile=/etc/passim.key\n', 'f');
  assert.equal(config.domain, 'cache.example.com');
  assert.equal(config.dnsServer, '10.99.0.254:5353');
  assert.equal(config.dnsKeyFile, '/etc/passim.key');
  assert.equal(parseDaemonConfig('[daemon]\n', 'f').config.domain, '');
  assert.equal(parseDaemonConfig('[daemon]\nDnsServer=[fd00::1]:53\n', 'f').config.dnsServer, '[fd00::1]:53');
  assert.throws(() => parseDaemonConfig('[daemon]\nDomain=bad domain\n', 'f'), /f:2: key "Domain"/);
  assert.throws(() => parseDaemonConfig('[daemon]\nDomain=x.local\n', 'f'), /Domain/);
  assert.throws(() => parseDaemonConfig('[daemon]\nDnsServer=dns.example.com\n', 'f'), /DnsServer/);
  assert.throws(() => parseDaemonConfig('[daemon]\nDnsServer=10.0.0.1:70000\n', 'f'), /DnsServer/);
  assert.throws(() => parseDaemonConfig('[daemon]\nDnsKeyFile=relative.key\n', 'f'), /DnsKeyFile/);
});

test('names: host label keeps machines apart; instance and refresh time read back', () => {
  assert.equal(hostLabelFor('runner.example.com', 'Passim-1A2B'), 'runner-1a2b');
  assert.equal(hostLabelFor('runner', 'Passim-1A2B #2'), 'runner-1a2b-2');
  assert.equal(instanceOfName('Passim-1A2B._cache._tcp.cache.test.', 'cache.test'), 'Passim-1A2B');
  assert.equal(instanceOfName('a.b._cache._tcp.cache.test', 'cache.test'), undefined);
  assert.equal(refreshedOf([['x=1'], ['refreshed=1700000000']]), 1_700_000_000);
  assert.equal(refreshedOf([['']]), undefined);
});

/** A DNS server on loopback answering from a table; never any additional records. */
async function tinyDns(table: Map<string, dnsPacket.Answer[]>): Promise<{ port: number; asked: string[]; sock: Socket }> {
  const sock = createSocket('udp4');
  const asked: string[] = [];
  sock.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0]!;
    asked.push(`${question.type} ${question.name}`);
    const answers = (table.get(`${question.type} ${question.name.toLowerCase()}`) ?? []);
    const reply = dnsPacket.encode({ id: q.id, type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER | (answers.length ? 0 : 3), questions: q.questions, answers });
    sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, asked, sock };
}

test('zone lookup: PTR, then SRV + TXT, then A; no additional records needed; stale and own instances skipped', async () => {
  const D = 'cache.test';
  const now = 1_800_000_000;
  const sub = subtypeNameIn(H, D);
  const inst = (n: string) => `${n}._cache._tcp.${D}`;
  const table = new Map<string, dnsPacket.Answer[]>([
    [`PTR ${sub}`, ['Passim-0001', 'Passim-0002', 'Passim-0003', 'Passim-0004'].map((n) => ({ name: sub, type: 'PTR', ttl: 60, data: inst(n) }))],
    ...['0001', '0002', '0003', '0004'].flatMap((n, i) => [
      [`SRV ${inst(`Passim-${n}`).toLowerCase()}`, [{ name: inst(`Passim-${n}`), type: 'SRV', ttl: 60, data: { port: 27500 + i, target: `h${n}.${D}` } }]],
      [`TXT ${inst(`Passim-${n}`).toLowerCase()}`, [{ name: inst(`Passim-${n}`), type: 'TXT', ttl: 60, data: [`refreshed=${n === '0002' ? now - 3600 : now - 30}`] }]],
      [`A h${n}.${D}`, [{ name: `h${n}.${D}`, type: 'A', ttl: 60, data: `10.99.0.${i + 1}` }]],
    ] as Array<[string, dnsPacket.Answer[]]>),
  ]);
  const dns = await tinyDns(table);
  try {
    const found: Array<[string, Peer, string]> = [];
    const many = zoneBrowseMany({ domain: D, server: { address: '127.0.0.1', port: dns.port }, now: () => now });
    await many([H, 'cd'.repeat(32)], { onPeer: (h, p, via) => found.push([h, p, via]), excludeInstances: ['passim-0004'], timeoutMs: 500 });
    const peers = found.map(([h, p, via]) => `${h.slice(0, 4)} ${p.instance} ${p.address}:${p.port} ${via}`).sort();
    assert.deepEqual(peers, [`abab Passim-0001 10.99.0.1:27500 dns`, `abab Passim-0003 10.99.0.3:27502 dns`]);
    assert.ok(!dns.asked.includes(`A h0002.${D}`), 'a stale instance costs no address lookup');
    assert.ok(!dns.asked.some((q) => q.includes('0004')), 'our own instance is not looked up');
    await assert.rejects(many(['nothex'], { onPeer: () => {} }), /sha256/i);
  } finally {
    dns.sock.close();
  }
});

/** A UDP "DNS server" on loopback answering every message with `answer(msg)` (or nothing). */
async function fakeServer(answer: (msg: Buffer) => Buffer | undefined): Promise<{ port: number; got: Buffer[]; close(): void }> {
  const sock = createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (msg, rinfo) => {
    got.push(msg);
    const reply = answer(msg);
    if (reply) sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, got, close: () => sock.close() };
}

function replyTo(msg: Buffer, rcode: number): Buffer {
  // header + zone section only, as servers answer updates
  const end = skipName(msg, 12) + 4;
  const r = Buffer.from(msg.subarray(0, end));
  r.writeUInt16BE(0x8000 | (5 << 11) | rcode, 2);
  r.writeUInt16BE(0, 6); r.writeUInt16BE(0, 8); r.writeUInt16BE(0, 10);
  return r;
}

async function failures(answer: (msg: Buffer) => Buffer | undefined, n: number) {
  const { Registrar } = await import('../../lib/discovery/wide-area/registrar.js');
  const srv = await fakeServer(answer);
  const lines: string[] = [];
  const reg = new Registrar({
    domain: 'cache.test', server: { address: '127.0.0.1', port: srv.port }, key: KEY, instance: 'Passim-0001', hostLabel: 'h-0001',
    port: 27500, addresses: () => ['10.98.0.1'], timeoutMs: 100,
    logger: { error: (m) => lines.push(`error ${m}`), warn: (m) => lines.push(`warn ${m}`), info: (m) => lines.push(`info ${m}`), debug() {} },
  });
  const failed: Error[] = [];
  const done = new Promise<void>((r) => reg.on('failed', (e) => { failed.push(e); if (failed.length === n) r(); }));
  reg.setHashes([H]);
  await reg.start();
  await done;
  const status = reg.status();
  await reg.stop(500);
  srv.close();
  return { lines, failed, status, got: srv.got };
}

test('registrar: an unreachable server is one log line, then retries with backoff; mDNS is not its business', async () => {
  const r = await failures(() => undefined, 2);
  assert.equal(r.lines.length, 1, r.lines.join('\n'));
  assert.match(r.lines[0]!, /^warn wide-area: no answer from DNS server 127\.0\.0\.1:\d+: .*retrying with backoff$/);
  assert.equal(r.status.state, 'failing');
  assert.equal(r.status.items, 0);
  assert.equal(r.status.pending, 1);
  // every try was a signed UPDATE claiming the instance name
  for (const m of r.got) {
    assert.equal(readHeader(m).opcode, 5);
    assert.ok(readTsig(m), 'signed');
  }
});

test('registrar: REFUSED names the update policy; an unsigned NOERROR is not believed', async () => {
  const refused = await failures((m) => replyTo(m, 5), 2);
  assert.equal(refused.lines.length, 1);
  assert.match(refused.lines[0]!, /refused the update of cache\.test \(REFUSED\): the zone's update policy must allow key "passim"/);
  const unsigned = await failures((m) => replyTo(m, 0), 1);
  assert.match(unsigned.lines[0]!, /failed TSIG verification \(the answer is not signed\)/);
  // a NOERROR signed with the right key for this very request is accepted: the claim goes through
  const { Registrar } = await import('../../lib/discovery/wide-area/registrar.js');
  const srv = await fakeServer((m) => sign(replyTo(m, 0), KEY, { requestMac: readTsig(m)!.fields.mac }).message);
  const reg = new Registrar({
    domain: 'cache.test', server: { address: '127.0.0.1', port: srv.port }, key: KEY, instance: 'Passim-0001', hostLabel: 'h-0001',
    port: 27500, addresses: () => ['10.98.0.1'], timeoutMs: 500, logger: { error() {}, warn() {}, info() {}, debug() {} },
  });
  reg.setHashes([H]);
  await reg.start();
  await reg.whenIdle();
  const st = reg.status();
  assert.equal(st.state, 'registered');
  assert.equal(st.items, 1);
  assert.ok(st.lastUpdate);
  await reg.stop(1000);
  srv.close();
  // claim (with its prerequisite), the item, then at stop: the instance removal and the item's class NONE delete
  assert.deepEqual(srv.got.map((m) => readHeader(m).counts.slice(1, 3)), [[1, 8], [0, 1], [0, 5], [0, 1]]);
});

test('the daemon refuses to start with a key file other users can read, naming the file and the fix', async () => {
  const { startDaemon, makeRoot } = await import('../helpers/daemon.js');
  const root = await makeRoot();
  try {
    const key = join(root, 'dns.key');
    await writeFile(key, 'key "passim" { algorithm hmac-sha256; secret "wZtBaKb9XQ9IqFZNcUKSAiTg4pW3zpS/arEB77xiADU="; };\n');
    await chmod(key, 0o644);
    // DnsServer on loopback: nothing is ever sent (the daemon stops before it starts registering)
    await writeFile(join(root, 'config', 'passim.conf'), `[daemon]\nDomain=cache.test\nDnsServer=127.0.0.1:9\nDnsKeyFile=${key}\n`);
    await assert.rejects(startDaemon({ root }), (e: Error) => new RegExp(`${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: DnsKeyFile is readable or writable by every user \\(mode 0644\\).*chmod 600`).test(e.message));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
