/**
 * Polls a state that settles asynchronously where nothing outside the daemon can wait on an event
 * (a share recorded after the response, a cache changed by a received packet, a zone after an
 * update): `fn` returns undefined until the state is there. Throws `timed out: <what>` after `ms`.
 */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000, stepMs = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
