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

/**
 * Where a peer was learnt: an mDNS answer seen by this browse, the local daemon's cache of what it
 * heard on the wire (lib/discovery/peer-cache.ts), or a wide-area DNS-SD zone (RFC 6763 §11).
 * The fetch engine does not care; it only tries every peer, hash-verified.
 */
export type PeerVia = 'mdns' | 'cache' | 'dns';

export interface BrowseManyOptions extends Omit<BrowseOptions, 'kind'> {
  /** called once per (hash, peer) as soon as the peer's address is known */
  onPeer: (sha256: string, peer: Peer, via: PeerVia) => void;
}

/**
 * Finds peers for many hashes in one round (mDNS: one query carrying many questions, split into
 * packets under 1400 bytes; DNS: parallel PTR/SRV/A lookups). Resolves when the round is over
 * (timeoutMs without a further answer, or the signal aborts). Throws InvalidHashError up front.
 */
export type BrowseMany = (hashes: string[], opts: BrowseManyOptions) => Promise<void>;
