/**
 * The wide-area finder for `passim fetch` (single and --from): the zone and DNS server come from
 * --domain / --dns-server, else from passim.conf's Domain / DnsServer (the config dir the daemon
 * uses: PASSIM_CONFIG_DIR, /etc as root, else $XDG_CONFIG_HOME/passim). `--domain ''` turns it off.
 * A passim.conf that cannot be read or parsed gives no zone (fetch is a client; the daemon reports
 * a bad file) unless the flags name one.
 */
import { ConfigError } from '../core/errors.js';
import { parseDomainName, loadDaemonConfig } from '../core/config.js';
import { configFile, resolvePaths } from '../core/paths.js';
import { parseServerAddress } from '../core/server-address.js';
import type { BrowseMany } from '../discovery/types.js';

export async function zoneFinders(flags: { domain?: string; dnsServer?: string }): Promise<BrowseMany[]> {
  let domain = flags.domain;
  let server = flags.dnsServer;
  let ipv6 = false;
  if (domain === undefined || server === undefined) {
    const conf = await loadDaemonConfig(configFile(resolvePaths().configDir)).catch(() => undefined);
    domain ??= conf?.config.domain ?? '';
    server ??= conf?.config.dnsServer;
    ipv6 = conf?.config.ipv6 ?? false;
  }
  try {
    domain = parseDomainName(domain);
  } catch (err) {
    throw new ConfigError(`--domain: ${(err as Error).message}`);
  }
  if (!domain) return [];
  let address;
  try {
    address = server ? parseServerAddress(server) : undefined;
  } catch (err) {
    throw new ConfigError(`--dns-server: ${(err as Error).message}`);
  }
  const { zoneBrowseMany } = await import('../discovery/wide-area/lookup.js');
  return [zoneBrowseMany({ domain, server: address, ipv6 })];
}
