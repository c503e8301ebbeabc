/** What the rest of passim sees of mDNS discovery. */

export interface Peer {
  /** IPv4 or IPv6 address (link-local IPv6 carries "%iface") */
  address: string;
  port: number;
  /** service instance name, e.g. "Passim-1A2B" */
  instance: string;
  /** host target from SRV, e.g. "myhost.local" */
  host: string;
}

export interface BrowseOptions {
  /** give up after this many ms without a (further) answer; default 500 */
  timeoutMs?: number;
  /** interface names to query on; default all up multicast-capable IPv4 interfaces */
  interfaces?: string[];
  ipv6?: boolean;
  /** instance names to ignore (our own daemon's) */
  excludeInstances?: string[];
  signal?: AbortSignal;
  /**
   * which subtype to browse: the item (default, `_<60 hex>`), or another host's in-progress claim
   * on the hash (`_b<60 hex>` bid, `_f<60 hex>` fetching; names.ts, lib/fetch/herd.ts)
   */
  kind?: 'item' | 'bid' | 'fetching';
}

/** Finds peers advertising a hash: yields each as soon as its address is resolved, ends at the timeout. */
export type Browse = (sha256: string, opts?: BrowseOptions) => AsyncIterable<Peer>;

export interface ResponderOptions {
  /** HTTPS port put in SRV */
  port: number;
  interfaces?: string[];
  ipv6?: boolean;
  /** force the instance name (tests of conflicts); default random "Passim-XXXX" */
  instanceName?: string;
  /** host name for SRV target / A records, default os.hostname() */
  hostName?: string;
}

export interface AdvertiserLike {
  readonly instanceName: string;
  start(): Promise<void>;
  /** replaces the advertised set: announces new hashes, sends goodbyes for removed ones */
  setHashes(hashes: Iterable<string>): void;
  add(hash: string): void;
  remove(hash: string): void;
  /** sends goodbyes for everything and closes the sockets */
  stop(): Promise<void>;
}
