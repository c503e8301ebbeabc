/**
 * The two kinds of HTTPS connection fetch makes, kept apart so trust never leaks between them:
 * - peers (and the local daemon) use self-signed certificates: TLS without verification, used ONLY
 *   for peer URLs (peer-request.ts, not undici); the sha256 is the trust, not the certificate;
 * - the CDN (and --sha256-url) get normal certificate verification against the system roots plus,
 *   optionally, extra CA certificates (`cdnCa`, or the PEM file named by env PASSIM_CDN_CA;
 *   Node's own NODE_EXTRA_CA_CERTS works as well).
 */
import { rootCertificates } from 'node:tls';
import type { Agent as AgentType } from 'undici';
import { Agent } from './undici-lean.js';
import type { SourceLimits } from './limits.js';

export { resolveCdnCa } from './cdn-ca.js';

/**
 * `connections` is per origin: it must be at least the downloads a batch runs at once against one
 * host (its per-host slots), or undici queues the extra requests behind busy connections.
 */
function agentOptions(limits: SourceLimits, connections: number) {
  return {
    connectTimeout: limits.connectTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    bodyTimeout: limits.bodyTimeoutMs,
    maxHeaderSize: limits.maxHeaderSize,
    keepAliveTimeout: 4_000,
    connections,
  };
}

/** For the CDN: normal certificate verification (system roots + optional extra CAs). */
export function cdnAgent(limits: SourceLimits, cdnCa?: string | Buffer, connections = 8): AgentType {
  const connect: Record<string, unknown> = { rejectUnauthorized: true, timeout: limits.connectTimeoutMs };
  if (cdnCa !== undefined) connect.ca = [...rootCertificates, cdnCa];
  return new Agent({ ...agentOptions(limits, connections), connect });
}
