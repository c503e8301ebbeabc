/** --sha256-url: parsing checksum files, and fetching one over verified TLS. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NotFoundError, PassimError } from '../../lib/core/errors.js';
import { parseChecksumFile, pickChecksum } from '../../lib/fetch/checksum-file.js';
import { fetchFile } from '../../lib/fetch/fetch.js';
import { Fixtures, fakeBrowse, honest, makeCert, respond, sha256, status, type KeyCert } from './helpers.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'C'.repeat(64);

describe('parseChecksumFile / pickChecksum', () => {
  it('sha256sum text and binary lines', () => {
    const text = `${A}  repomd.xml\n${B} *firmware.cab\n`;
    assert.equal(pickChecksum(parseChecksumFile(text), 'repomd.xml'), A);
    assert.equal(pickChecksum(parseChecksumFile(text), 'firmware.cab'), B);
  });

  it('BSD / --tag format, CRLF line ends, comments, upper-case hashes', () => {
    const text = `# made by hand\r\nSHA256 (repomd.xml) = ${C}\r\nSHA256 (other) = ${A}\r\n`;
    assert.equal(pickChecksum(parseChecksumFile(text), 'repomd.xml'), C.toLowerCase());
  });

  it('a bare hash, with or without a newline', () => {
    assert.equal(pickChecksum(parseChecksumFile(`${A}\n`), 'anything'), A);
    assert.equal(pickChecksum(parseChecksumFile(`  ${C}  `), 'anything'), C.toLowerCase());
  });

  it('names with a directory match by basename when unique; ./NAME matches exactly', () => {
    assert.equal(pickChecksum(parseChecksumFile(`${A}  ./f.bin\n`), 'f.bin'), A);
    assert.equal(pickChecksum(parseChecksumFile(`${A}  dir/sub/f.bin\n${B}  g.bin\n`), 'f.bin'), A);
    assert.throws(() => pickChecksum(parseChecksumFile(`${A}  x/f.bin\n${B}  y/f.bin\n`), 'f.bin'), PassimError);
  });

  it('escaped names (sha256sum writes a leading backslash)', () => {
    assert.equal(pickChecksum(parseChecksumFile(`\\${A}  a\\\\b\n`), 'a\\b'), A);
  });

  it('names with spaces', () => {
    assert.equal(pickChecksum(parseChecksumFile(`${A}  my file.txt\n`), 'my file.txt'), A);
  });

  it('no line for the name, or no hash at all: NotFoundError', () => {
    assert.throws(() => pickChecksum(parseChecksumFile(`${A}  other\n`), 'f.bin'), NotFoundError);
    assert.throws(() => pickChecksum(parseChecksumFile('<html>404</html>'), 'f.bin'), NotFoundError);
    assert.throws(() => pickChecksum(parseChecksumFile(''), 'f.bin'), NotFoundError);
  });

  it('conflicting lines for the same name are refused', () => {
    assert.throws(() => pickChecksum(parseChecksumFile(`${A}  f\n${B}  f\n`), 'f'), /different hashes/);
  });

  it('ignores other digests (md5, sha512) and short hex', () => {
    const text = `d41d8cd98f00b204e9800998ecf8427e  f\n${'e'.repeat(128)}  f\n${A}  f\n`;
    assert.equal(pickChecksum(parseChecksumFile(text), 'f'), A);
  });
});

describe('fetchFile with sha256Url', () => {
  const DATA = randomBytes(10_000);
  const HASH = sha256(DATA);
  let kc: KeyCert;
  let other: KeyCert;
  const fx = new Fixtures();
  before(async () => {
    kc = await makeCert();
    other = await makeCert();
  });
  after(() => fx.cleanup());

  async function run(sums: (req: { path: string }) => string | number, opts: { cert?: KeyCert; ca?: string } = {}) {
    const d = fx.dir();
    const cdn = await fx.server(kc, honest(DATA));
    const sumsSrv = await fx.server(opts.cert ?? kc, (req, sock) => {
      const s = sums(req);
      if (typeof s === 'number') return status(s)(req, sock);
      respond(sock, 200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(s) }, s);
    });
    return fetchFile({
      name: 'f.bin',
      sha256Url: sumsSrv.url('/SHA256SUMS'),
      cdn: [cdn.url('/f.bin')],
      output: join(d, 'f.bin'),
      socketPath: join(d, 'none.sock'),
      browse: fakeBrowse([]).browse,
      timeoutMs: 50,
      cdnCa: opts.ca ?? kc.cert,
    });
  }

  it('takes the hash for NAME from a SHA256SUMS file', async () => {
    const r = await run(() => `${A}  other.bin\n${HASH}  f.bin\n`);
    assert.equal(r.sha256, HASH);
    assert.deepEqual(readFileSync(r.path), DATA);
  });

  it('a checksum file naming a different hash makes the download fail with exit 4', async () => {
    await assert.rejects(run(() => `${A}  f.bin\n`), (e: unknown) => e instanceof PassimError && e.exitCode === 4);
  });

  it('a 404 checksum file is NotFound', async () => {
    await assert.rejects(run(() => 404), NotFoundError);
  });

  it('a checksum file over 1 MiB is refused', async () => {
    await assert.rejects(run(() => `${HASH}  f.bin\n` + '#'.repeat(1024 * 1024 + 10)), /larger than 1 MiB/);
  });

  it('the checksum URL gets normal TLS verification', async () => {
    await assert.rejects(run(() => `${HASH}  f.bin\n`, { cert: other }), /cannot download checksum file.*(CERT|SIGNED|certificate)/i);
  });
});
