/**
 * The responder's announcements of items added after its names are claimed, in-process (fake
 * sockets, no network): the per-second budget (maxAnnouncedSubtypes) delays a burst, it does not
 * drop it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Responder } from '../../lib/discovery/responder.js';
import { listLinks } from '../../lib/discovery/interfaces.js';
import { subtypeName } from '../../lib/discovery/names.js';
import { decodeMessage } from '../../lib/discovery/packets.js';
import { fakeFactory, trapLogger, type Sent } from '../mdns-hardening/helpers.js';

const skip = listLinks({ interfaces: ['lo'] }).length === 0 && 'no loopback interface with IPv4';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('a burst of items published right after the names are claimed is announced in full, within the budget per second', { skip, timeout: 15000 }, async () => {
  const { sockets, factory } = fakeFactory();
  const r = new Responder({
    port: 27500, interfaces: ['lo'], instanceName: 'Passim-BRST', hostName: 'bursthost', socketFactory: factory, logger: trapLogger(),
    pollIntervalMs: 60_000, maxAnnouncedSubtypes: 20,
  });
  await r.start();
  try {
    const sock = sockets[0]!;
    const announced = new Set<string>();
    const times: number[] = [];
    const hashes = Array.from({ length: 15 }, (_, i) => sha(`burst-${i}`));
    const wanted = new Set(hashes.map((h) => subtypeName(h).toLowerCase()));
    const all = new Promise<void>((resolve) => {
      const on = (s: Sent) => {
        const m = decodeMessage(s.buf);
        if (!m?.response) return;
        for (const rr of m.answers) {
          const n = rr.name.toLowerCase();
          if (rr.type === 'PTR' && rr.ttl > 0 && wanted.has(n) && !announced.has(n)) {
            announced.add(n);
            times.push(performance.now());
          }
        }
        if (announced.size === wanted.size) {
          sock.events.off('sent', on);
          resolve();
        }
      };
      sock.events.on('sent', on);
    });
    const t0 = performance.now();
    r.setHashes(hashes); // the claim's announcement spent this second's budget: none are due at once
    await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${announced.size} of 15 announced in 5 s`)), 5000))]);
    // at most 20 per second: 15 of them spread over most of a second, not all in one go
    assert.ok(times.at(-1)! - t0 >= 500, `all 15 announced within ${Math.round(times.at(-1)! - t0)} ms`);
  } finally {
    await r.stop();
  }
});
