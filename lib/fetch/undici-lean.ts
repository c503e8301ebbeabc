/**
 * The parts of undici passim uses — Agent, Client, ProxyAgent, and `request` on a dispatcher —
 * loaded without undici's index, which also loads its fetch, WebSocket, cookies, cache stores,
 * mocks and interceptors: about half of undici's load time, paid by every process that goes to a
 * mirror (a cold `passim fetch`, a batch, the apt method). The request methods are put on
 * Dispatcher's prototype exactly as undici's index does; `request(url, opts)` is undici's own
 * `request` minus its global dispatcher (passim always names one).
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js') as object);

export const Agent = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export const Client = require('undici/lib/dispatcher/client.js') as typeof Undici.Client;

/** ProxyAgent, loaded only when a proxy is configured. */
export function proxyAgent(): typeof Undici.ProxyAgent {
  return require('undici/lib/dispatcher/proxy-agent.js') as typeof Undici.ProxyAgent;
}

export type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  dispatcher: Undici.Dispatcher;
  method?: Undici.Dispatcher.HttpMethod;
};

/** GET (by default) `url` through `opts.dispatcher`: undici's `request`. */
export function request(url: string | URL, opts: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const { dispatcher, ...rest } = opts;
  return dispatcher.request({ ...rest, origin: u.origin, path: `${u.pathname}${u.search}`, method: rest.method ?? 'GET' });
}
