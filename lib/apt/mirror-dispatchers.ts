/**
 * Connections to the mirror for requests apt has no hash for, set up as apt's http method would from
 * its configuration: the proxy (lib/apt/config.ts proxyFor; an http proxy gets absolute-form GETs
 * for http URLs and CONNECT for https), `Acquire::http(s)::Timeout` (connect), and for https
 * `Acquire::https::CaInfo` and `Acquire::https::Verify-Peer`. One dispatcher per distinct setting,
 * kept for the life of the method process so requests to one mirror share connections.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
import type { AptConfig } from './config.js';

/** apt's http method default (methods/basehttp.cc ServerState: TimeOut(30)) */
export const DEFAULT_TIMEOUT_S = 30;

export class MirrorDispatchers {
  readonly #cache = new Map<string, Dispatcher>();
  constructor(private readonly config: AptConfig, private readonly env: NodeJS.ProcessEnv = process.env) {}

  timeoutMs(url: URL): number {
    const s = this.config.methodInt(url.protocol.slice(0, -1), 'Timeout', url.hostname, DEFAULT_TIMEOUT_S);
    return Math.max(1, s) * 1000;
  }

  async for(url: URL): Promise<Dispatcher> {
    const scheme = url.protocol.slice(0, -1);
    const host = url.hostname;
    const proxy = this.config.proxyFor(url, this.env);
    const timeout = this.timeoutMs(url);
    const tls: Record<string, unknown> = {};
    if (scheme === 'https') {
      const caInfo = this.config.method('https', 'CaInfo', host);
      if (caInfo) tls.ca = [...rootCertificates, readFileSync(caInfo)];
      if (!this.config.methodBool('https', 'Verify-Peer', host, true)) tls.rejectUnauthorized = false;
    }
    const key = JSON.stringify([proxy ?? '', timeout, scheme === 'https' ? [host, this.config.method('https', 'CaInfo', host), tls.rejectUnauthorized] : []]);
    let d = this.#cache.get(key);
    if (!d) {
      const { Agent, proxyAgent } = await import('../fetch/undici-lean.js');
      const common = { connectTimeout: timeout, keepAliveTimeout: 10_000, connections: 4 };
      d = proxy
        ? new (proxyAgent())({ uri: proxy, proxyTunnel: false, requestTls: tls, proxyTls: { timeout }, ...common })
        : new Agent({ ...common, connect: { ...tls, timeout } });
      this.#cache.set(key, d);
    }
    return d;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#cache.values()].map((d) => d.destroy().catch(() => {})));
    this.#cache.clear();
  }
}
