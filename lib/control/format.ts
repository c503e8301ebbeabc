/** How control replies (status, items) are shown by the CLI: human units and stable plain lines. */
import type { ItemInfo, StatusReply } from './api.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB"; whole bytes below 1 KiB. */
export function humanBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${Math.max(0, Math.round(n || 0))} B`;
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${UNITS[i]}`;
}

/** 3725 → "1h02m"; at most two units. */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  return h ? `${d}d${h}h` : `${d}d`;
}

/** kg CO2e with enough digits that a small saving is not shown as 0. */
export function humanCarbon(kg: number): string {
  if (!Number.isFinite(kg) || kg <= 0) return '0 kg';
  if (kg >= 0.01) return `${kg.toFixed(2)} kg`;
  return `${kg.toPrecision(2)} kg`;
}

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
