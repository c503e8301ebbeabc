import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { mkdtemp, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { Store } from '../../lib/store/store.js';
import { DEFAULT_CONFIG } from '../../lib/core/config.js';
import { statePaths } from '../../lib/core/paths.js';
import { PassimError } from '../../lib/core/errors.js';
import { createLogger } from '../../lib/core/logger.js';
import { startHttpsServer } from '../../lib/http/server.js';
import { loadOrCreateCertificate, certificateFingerprint } from '../../lib/http/tls.js';

async function tempStore(t: { after(fn: () => Promise<void>): void }): Promise<{ dir: string; store: Store }> {
  const dir = await mkdtemp(join(tmpdir(), 'passim-http-life-'));
  const store = new Store({ stateDir: dir });
  await store.load();
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, store };
}

function peerFingerprint(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, rejectUnauthorized: false, servername: 'localhost' }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

const cfg = (over: Partial<typeof DEFAULT_CONFIG> = {}) => ({ ...DEFAULT_CONFIG, port: 0, bind: ['127.0.0.1'], ...over });

test('the TLS certificate is created once (key 0600) and reused after a restart', async (t) => {
  const { dir, store } = await tempStore(t);
  const a = await startHttpsServer({ store, config: cfg(), stateDir: dir });
  const fp1 = await peerFingerprint(a.port);
  await a.close();
  const { tlsKey, tlsCert } = statePaths(dir);
  assert.equal((await stat(tlsKey)).mode & 0o777, 0o600);
  assert.equal(certificateFingerprint(await readFile(tlsCert, 'utf8')), fp1);
  const b = await startHttpsServer({ store, config: cfg(), stateDir: dir });
  t.after(() => b.close());
  assert.equal(await peerFingerprint(b.port), fp1);
  const cert = new X509Certificate(await readFile(tlsCert, 'utf8'));
  assert.match(cert.subjectAltName ?? '', /DNS:localhost/);
  assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  assert.ok(new Date(cert.validTo).getTime() > Date.now() + 10 * 365 * 86400_000, 'long validity');
  assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
});

test('a corrupt certificate is replaced with a warning', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'passim-http-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const first = await loadOrCreateCertificate(dir);
  await writeFile(statePaths(dir).tlsCert, '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n');
  const lines: string[] = [];
  const second = await loadOrCreateCertificate(dir, { logger: createLogger('warn', (l) => lines.push(l)) });
  assert.notEqual(second.cert, first.cert);
  assert.ok(lines.some((l) => l.startsWith('warn:') && l.includes('unusable')), lines.join('\n'));
  // a key from another pair is just as unusable
  const other = await mkdtemp(join(tmpdir(), 'passim-http-tls-'));
  t.after(() => rm(other, { recursive: true, force: true }));
  const foreign = await loadOrCreateCertificate(other);
  await writeFile(statePaths(dir).tlsKey, foreign.key);
  const third = await loadOrCreateCertificate(dir);
  assert.notEqual(third.cert, second.cert);
  assert.equal((await loadOrCreateCertificate(dir)).cert, third.cert, 'then stable');
});

test('a port in use is a clear PassimError', async (t) => {
  const { dir, store } = await tempStore(t);
  const a = await startHttpsServer({ store, config: cfg(), stateDir: dir });
  t.after(() => a.close());
  await assert.rejects(
    startHttpsServer({ store, config: cfg({ port: a.port }), stateDir: dir }),
    (err: unknown) => {
      assert.ok(err instanceof PassimError);
      assert.match(err.message, new RegExp(`^port ${a.port} is already in use`));
      return true;
    },
  );
});

test('localhostOnly listens on loopback only; close() stops listening', async (t) => {
  const { dir, store } = await tempStore(t);
  const s = await startHttpsServer({ store, config: cfg({ bind: [], localhostOnly: true }), stateDir: dir });
  assert.ok(s.addresses.length >= 1);
  for (const a of s.addresses) assert.match(a, /^(127\.0\.0\.1|\[::1\]):\d+$/);
  assert.equal(s.addresses[0], `127.0.0.1:${s.port}`);
  await peerFingerprint(s.port);
  await s.close();
  await assert.rejects(peerFingerprint(s.port), /ECONNREFUSED/);
});

test('no bind: all addresses (dual-stack when available), reachable over IPv4 loopback', async (t) => {
  const { dir, store } = await tempStore(t);
  const s = await startHttpsServer({ store, config: cfg({ bind: [] }), stateDir: dir });
  t.after(() => s.close());
  assert.equal(s.addresses.length, 1);
  assert.match(s.addresses[0], /^(\[::\]|0\.0\.0\.0):\d+$/);
  assert.ok((await peerFingerprint(s.port)).length > 0);
});
