/** How control replies (status, items) are shown by the CLI: human units and stable plain lines. */
import type { ItemInfo, StatusReply } from './api.js';
import { humanBytes, humanCarbon, humanDuration } from '../core/human-units.js';

export function itemAge(item: ItemInfo, now = Date.now()): number {
  return Math.max(0, Math.floor((now - item.created) / 1000));
}

export function itemFlags(item: ItemInfo): string[] {
  const f: string[] = [];
  if (item.static) f.push('static');
  if (item.nextReboot) f.push('next-reboot');
  if (item.disabled) f.push('disabled');
  return f;
}

/**
 * One stable, tab-separated line per item for scripts:
 * hash, name, age/max-age (seconds; "-" = never expires), shared/limit ("-" = unlimited), size
 * (bytes), flags (comma-separated; "-" = none).
 */
export function plainItemLine(item: ItemInfo, now = Date.now()): string {
  return [
    item.hash,
    item.basename,
    `${itemAge(item, now)}/${item.maxAge ? item.maxAge : '-'}`,
    `${item.shareCount}/${item.shareLimit ? item.shareLimit : '-'}`,
    String(item.size),
    itemFlags(item).join(',') || '-',
  ].join('\t');
}

/** The same fields in human units, for the table. */
export function humanItemRow(item: ItemInfo, now = Date.now()): string[] {
  return [
    item.hash,
    item.basename,
    `${humanDuration(itemAge(item, now))} / ${item.maxAge ? humanDuration(item.maxAge) : 'never'}`,
    `${item.shareCount} / ${item.shareLimit ? item.shareLimit : '∞'}`,
    humanBytes(item.size),
    itemFlags(item).join(', '),
  ];
}

export const ITEM_HEADINGS = ['Hash', 'Name', 'Age / Max age', 'Shared / Limit', 'Size', 'Flags'];

export function statusLines(s: StatusReply): string[] {
  const rows: Array<[string, string]> = [
    ['Version', s.version],
    ['Status', s.status],
    ['Port', String(s.port)],
    ['URI', s.uri],
    ['Name', s.name || '-'],
    ['Items', s.hashing ? `${s.items} (${s.hashing} static files still being hashed)` : String(s.items)],
    ['Download saving', humanBytes(s.downloadSaving)],
    ['Carbon saving', humanCarbon(s.carbonSaving)],
  ];
  if (s.peerCache) rows.push(['Peers known', `${s.peerCache.hashes} hashes on ${s.peerCache.peers} peers`]);
  const wa = s.wideArea;
  if (wa) {
    rows.push(['Wide area', `${wa.domain} via ${wa.server}: ${wa.state}` +
      (wa.state === 'lookup-only' ? ' (no DnsKeyFile)' : `, ${wa.records} records held (${wa.items} items), ${wa.pending} pending`)]);
    if (wa.instance) rows.push(['Zone instance', `${wa.instance} on ${wa.host}`]);
    if (wa.lastUpdate) rows.push(['Last update', wa.lastUpdate]);
    if (wa.lastError) rows.push(['Last error', wa.lastError]);
  }
  const w = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${(k + ':').padEnd(w)}${v}`);
}
