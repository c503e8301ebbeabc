/**
 * The daemon's wide-area DNS-SD part, built from `[daemon]` Domain / DnsServer / DnsKeyFile:
 * a registrar (when a key file is given) fed with the same hashes as the mDNS responder, and a
 * zone lookup for the loopback redirect. Reload replaces the whole thing when one of the three
 * keys changes (daemon.ts).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { DaemonConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { parseServerAddress } from '../core/server-address.js';
import { ConfigError } from '../core/errors.js';
import type { BrowseMany } from '../discovery/types.js';
import { loadKeyFile } from '../discovery/wide-area/key-file.js';
import { Registrar, type WideAreaStatus } from '../discovery/wide-area/registrar.js';
import { zoneBrowseMany } from '../discovery/wide-area/lookup.js';
import { hostLabelFor, routableAddresses } from '../discovery/wide-area/records.js';
import { fmt } from '../discovery/wide-area/transport.js';

export interface WideAreaSetup {
  config: DaemonConfig;
  configPath: string;
  stateDir: string;
  /** the mDNS instance name (the zone uses the same, renamed only on a clash there) */
  instance: string;
  port: number;
  logger: Logger;
}

export class WideArea {
  private constructor(
    readonly domain: string,
    /** zone lookups (the daemon's loopback lookup) */
    readonly find: BrowseMany,
    private readonly server: string,
    readonly registrar?: Registrar,
  ) {}

  /** undefined when Domain is empty. Throws ConfigError for a bad key file (the daemon does not start). */
  static async create(s: WideAreaSetup): Promise<WideArea | undefined> {
    const { config } = s;
    if (!config.domain) return undefined;
    let server;
    try {
      server = config.dnsServer ? parseServerAddress(config.dnsServer) : undefined;
    } catch (err) {
      throw new ConfigError(`DnsServer: ${(err as Error).message}`, s.configPath, undefined, 'DnsServer');
    }
    const find = zoneBrowseMany({ domain: config.domain, server, ipv6: config.ipv6 });
    let registrar: Registrar | undefined;
    if (config.dnsKeyFile) {
      const key = await loadKeyFile(config.dnsKeyFile);
      registrar = new Registrar({
        domain: config.domain,
        server,
        key,
        instance: s.instance,
        hostLabel: hostLabelFor(hostname(), s.instance),
        port: s.port,
        addresses: () => routableAddresses({ interfaces: config.interfaces, ipv6: config.ipv6, bind: config.bind }),
        stateFile: join(s.stateDir, 'wide-area.json'),
        logger: s.logger,
      });
    }
    return new WideArea(config.domain, find, server ? fmt(server) : 'system resolver', registrar);
  }

  /** Reload with the same DnsKeyFile path: re-read it, so a key rotated in place is used. Throws ConfigError. */
  async reloadKey(file: string): Promise<boolean> {
    if (!this.registrar) return false;
    const key = await loadKeyFile(file);
    this.registrar.setKey(key);
    return true;
  }

  async start(hashes: Iterable<string>): Promise<void> {
    if (!this.registrar) return;
    this.registrar.setHashes(hashes);
    await this.registrar.start();
  }

  status(): WideAreaStatus {
    return this.registrar?.status() ?? {
      domain: this.domain, server: this.server, instance: '', host: '', state: 'lookup-only',
      records: 0, items: 0, pending: 0, bytesSent: 0, bytesReceived: 0,
    };
  }

  async stop(): Promise<void> {
    await this.registrar?.stop();
  }
}
