/**
 * verifiedDownload's `keepUpTo`: a body known to be small enough comes back in memory as well as
 * in the temp file (the batch publishes it from there), and only once it has verified; and
 * `onReceived`, called once the body is in (the batch frees the host's slot then).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { cdnAgent } from '../../lib/fetch/dispatchers.js';
import { PEER_LIMITS } from '../../lib/fetch/limits.js';
import { SourceError, verifiedDownload } from '../../lib/fetch/verified-download.js';
import { Fixtures, honest, liar, makeCert, noLength, sha256, tempFilesIn, type Handler, type KeyCert } from './helpers.js';

const DATA = randomBytes(100_000);
const HASH = sha256(DATA);

let kc: KeyCert;
const fx = new Fixtures();

async function download(h: Handler, keepUpTo: number | undefined, onReceived?: () => void) {
  const s = await fx.server(kc, h);
  const dir = fx.dir();
  // the CDN's pool (trusting the test certificate): a body of unknown length is a CDN's, never a peer's
  const dispatcher = cdnAgent(PEER_LIMITS, kc.cert);
  try {
    const r = await verifiedDownload({
      url: s.url('/f.bin'), dispatcher, expectedSha256: HASH, dir, name: 'f.bin', limits: PEER_LIMITS, redirects: 'same-origin', keepUpTo, onReceived,
    });
    return { r, dir };
  } finally {
    await dispatcher.destroy();
  }
}

before(async () => {
  kc = await makeCert();
});

after(() => fx.cleanup());

describe('verifiedDownload keepUpTo', () => {
  it('returns the verified bytes of a body within the limit, and the same bytes in the temp file', async () => {
    let received = 0;
    const { r } = await download(honest(DATA), DATA.length, () => received++);
    assert.equal(received, 1, 'onReceived once, when the body was in');
    assert.ok(r.bytes, 'bytes returned');
    assert.ok(r.bytes.equals(DATA));
    assert.ok(readFileSync(r.tmpPath).equals(DATA));
    await unlink(r.tmpPath);
  });

  it('keeps nothing for a body over the limit, of unknown length, or when not asked', async () => {
    for (const [h, keep] of [[honest(DATA), DATA.length - 1], [noLength(DATA), DATA.length], [honest(DATA), undefined]] as const) {
      const { r } = await download(h, keep);
      assert.equal(r.bytes, undefined);
      assert.ok(readFileSync(r.tmpPath).equals(DATA));
      await unlink(r.tmpPath);
    }
  });

  it('hands back no bytes of a body that does not verify', async () => {
    const err = await download(liar(DATA), DATA.length).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof SourceError);
    assert.equal(err.kind, 'mismatch');
    for (const d of fx.dirs) assert.deepEqual(tempFilesIn(d), []);
  });
});
