/**
 * The HTTPS server's self-signed certificate: generated in-process on first start (EC P-256),
 * kept in the state dir (key 0600) and reused on every restart, so peers see a stable identity.
 * A missing half, an unreadable file or a key that does not match the certificate is regenerated
 * with a warning.
 */
import { webcrypto, createPrivateKey, X509Certificate as NodeX509, randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hostname as osHostname } from 'node:os';
import type * as x509 from '@peculiar/x509';
import { statePaths } from '../core/paths.js';
import { startModuleWorker } from '../core/module-worker.js';
import { writeFileAtomic } from '../core/atomic-write.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';

export interface TlsMaterial {
  /** PEM, PKCS#8 */
  key: string;
  /** PEM */
  cert: string;
}

/** 20 years: peers never verify it (only the sha256 of the bytes matters), so it should simply never lapse. */
const VALIDITY_MS = 20 * 365 * 24 * 3600 * 1000;

/** A DNS name for the SAN: os.hostname() if it is one, else "localhost" only. */
function dnsName(name: string): string | undefined {
  return /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(name) ? name : undefined;
}

type X509CreateParams = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0];

/** Generates a fresh self-signed EC P-256 certificate for `host`. */
export async function generateCertificate(host: string = osHostname(), now: Date = new Date()): Promise<TlsMaterial> {
  // loaded only when a certificate is made (first start): keeps the daemon's memory and start lean
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1]>;
  const crypto = webcrypto as unknown as X509Crypto;
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const dns = dnsName(host);
  const cn = (dns ?? 'localhost').replace(/[,+"\\<>;=]/g, '');
  const sans: x509.JsonGeneralName[] = [];
  if (dns && dns !== 'localhost') sans.push({ type: 'dns', value: dns });
  sans.push({ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }, { type: 'ip', value: '::1' });
  const notBefore = new Date(now.getTime() - 24 * 3600 * 1000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      // positive 16-byte serial (top bit clear)
      serialNumber: '01' + randomBytes(15).toString('hex'),
      name: `CN=${cn}`,
      notBefore,
      notAfter: new Date(now.getTime() + VALIDITY_MS),
      signingAlgorithm: alg,
      keys: keys as unknown as X509CreateParams['keys'],
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(sans),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as X509CreateParams['keys']['publicKey'], false, crypto),
      ],
    },
    crypto,
  );
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  return { key, cert: cert.toString('pem') + '\n' };
}

/** generateCertificate() in a worker thread (tls-worker.ts), so its libraries leave with the thread. */
function generateInWorker(host: string): Promise<TlsMaterial> {
  return new Promise((resolve, reject) => {
    const w = startModuleWorker(import.meta.url, './tls-worker', { workerData: { host, now: Date.now() } });
    let got: TlsMaterial | undefined;
    w.once('message', (m: TlsMaterial) => {
      got = m;
      void w.terminate();
    });
    w.once('error', reject);
    // settles once the thread is gone, so nothing of it (threads, fds, memory) outlives the call
    w.once('exit', (code) => (got ? resolve(got) : reject(new Error(`exited (${code}) without a certificate`))));
  });
}

/** Throws unless `key` and `cert` parse, belong together and the certificate is currently valid. */
export function checkPair(pair: TlsMaterial, now: Date = new Date()): void {
  const key = createPrivateKey(pair.key);
  const cert = new NodeX509(pair.cert);
  if (!cert.checkPrivateKey(key)) throw new Error('the key does not match the certificate');
  if (new Date(cert.validTo).getTime() <= now.getTime()) throw new Error(`the certificate expired on ${cert.validTo}`);
}

/**
 * Returns the certificate stored under the state dir, creating (or replacing a broken) one.
 * The key is written before the certificate, each temp + rename, so a crash leaves either the old
 * pair, or a pair that fails checkPair() and is regenerated next start.
 */
export async function loadOrCreateCertificate(
  stateDir: string,
  opts: { logger?: Logger; hostname?: string } = {},
): Promise<TlsMaterial> {
  const log = opts.logger ?? silentLogger;
  const { tlsKey, tlsCert } = statePaths(stateDir);
  let existing: TlsMaterial | undefined;
  try {
    existing = { key: await readFile(tlsKey, 'utf8'), cert: await readFile(tlsCert, 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      log.warn(`cannot read the TLS certificate in ${dirname(tlsKey)} (${(err as Error).message}): generating a new one`);
    }
  }
  if (existing) {
    try {
      checkPair(existing);
      return existing;
    } catch (err) {
      log.warn(`the TLS certificate in ${dirname(tlsKey)} is unusable (${(err as Error).message}): generating a new one`);
    }
  }
  const fresh = await generateInWorker(opts.hostname ?? osHostname()).catch((err: Error) => {
    log.debug(`certificate worker: ${err.message}; generating in-process`);
    return generateCertificate(opts.hostname);
  });
  await mkdir(dirname(tlsKey), { recursive: true, mode: 0o700 });
  await writeFileAtomic(tlsKey, fresh.key, 0o600);
  await writeFileAtomic(tlsCert, fresh.cert, 0o644);
  log.info(`generated a self-signed TLS certificate in ${dirname(tlsKey)}`);
  return fresh;
}

/** sha256 fingerprint of a PEM certificate, "AA:BB:…" as node prints it. */
export function certificateFingerprint(certPem: string): string {
  return new NodeX509(certPem).fingerprint256;
}
