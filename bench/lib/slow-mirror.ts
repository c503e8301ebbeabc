/**
 * A WAN-like package mirror for the benches (issue 9's shape): test/helpers/mirror-server.ts with
 * about 20 ms added to every request and 100 Mbit/s shared by all responses in flight, serving a
 * directory over HTTP inside a namespace host and counting requests per path.
 *
 *   const m = await slowMirror(A, { root: repoDir });   // m.url('/debian/…'), m.count(path)
 *   …
 *   await m.stop();
 */
import type { LanHost } from '../../test/helpers/netns.js';
import { startMirror, type Mirror, type MirrorConfig } from '../../test/helpers/mirror-server.js';

export type { Mirror };

/** 20 ms per request, 100 Mbit/s shared: the numbers issue 9's targets were set against. */
export const WAN = { latencyMs: 20, bytesPerSec: 100_000_000 / 8 };

export function slowMirror(host: LanHost, cfg: MirrorConfig): Promise<Mirror> {
  return startMirror(host, { port: 8080, ...WAN, ...cfg });
}
