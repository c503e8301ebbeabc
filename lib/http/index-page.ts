/**
 * `GET /` from loopback: a self-contained HTML page (no external assets, no script) with the
 * daemon version, the savings and a table of the items.
 */
import type { ItemInfo, Savings } from '../store/types.js';
import { escapeHtml } from './error-page.js';

export const STYLE_CSS = `body{font-family:sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse}
th,td{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
td.num{text-align:right}code{font-size:.85em}p.empty{color:#666}
`;

/** 1536 → "1.5 KiB". */
export function humanBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${Math.max(0, Math.round(n || 0))} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** 93784 → "1d 2h", 125 → "2m 5s". */
export function humanDuration(seconds: number): string {
  let s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d) return `${d}d${h ? ` ${h}h` : ''}`;
  if (h) return `${h}h${m ? ` ${m}m` : ''}`;
  if (m) return `${m}m${s ? ` ${s}s` : ''}`;
  return `${s}s`;
}

/** kg CO2e with a unit that keeps a few significant digits. */
function humanCarbon(kg: number): string {
  if (!Number.isFinite(kg) || kg <= 0) return '0 g';
  if (kg < 1) return `${(kg * 1000).toPrecision(3)} g`;
  return `${kg.toPrecision(3)} kg`;
}

export interface IndexPageData {
  version: string;
  savings: Savings;
  items: ItemInfo[];
  /** ms since the epoch */
  now: number;
}

function flags(item: ItemInfo): string {
  const f: string[] = [];
  if (item.static) f.push('static');
  if (item.nextReboot) f.push('next-reboot');
  if (item.disabled) f.push('disabled');
  return f.join(', ');
}

export function indexPage(d: IndexPageData): string {
  const e = escapeHtml;
  const items = [...d.items].sort((a, b) => a.basename.localeCompare(b.basename) || a.hash.localeCompare(b.hash));
  const rows = items.map((it) => {
    const age = humanDuration((d.now - it.created) / 1000);
    const ageCell = it.maxAge > 0 ? `${age} / ${humanDuration(it.maxAge)}` : `${age} / ∞`;
    const shareCell = it.shareLimit > 0 ? `${it.shareCount} / ${it.shareLimit}` : `${it.shareCount} / ∞`;
    const href = `/${encodeURIComponent(it.basename)}?sha256=${it.hash}`;
    return (
      `<tr><td><a href="${e(href)}">${e(it.basename)}</a></td><td><code>${e(it.hash)}</code></td>` +
      `<td>${e(ageCell)}</td><td class="num">${e(shareCell)}</td>` +
      `<td class="num" title="${it.size} bytes">${e(humanBytes(it.size))}</td><td>${e(flags(it))}</td></tr>`
    );
  });
  const table = rows.length
    ? `<table><thead><tr><th>Name</th><th>SHA-256</th><th>Age / max-age</th><th>Shared / limit</th><th>Size</th><th>Flags</th></tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody></table>`
    : '<p class="empty">No items are published.</p>';
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Passim</title><style>${STYLE_CSS}</style></head>
<body><h1>Passim ${e(d.version)}</h1>
<p>Download saving: ${e(humanBytes(d.savings.downloadSaving))} · Carbon saving: ${e(humanCarbon(d.savings.carbonSaving))} · Items: ${items.length}</p>
${table}
</body></html>
`;
}
