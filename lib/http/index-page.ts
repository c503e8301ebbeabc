/**
 * `GET /` from loopback: a self-contained HTML page (no external assets, no script) with the
 * daemon version and status, the savings and a table of the items. Age and share bars are plain
 * CSS (a width in percent), so the page reads the same without JavaScript; a meta CSP forbids any
 * fetch the page might otherwise make.
 */
import type { ItemInfo, Savings } from '../store/types.js';
import { escapeHtml } from './error-page.js';
import { humanBytes, humanCarbon, humanDuration } from '../core/human-units.js';

export const STYLE_CSS = `:root{color-scheme:light dark;--fg:#1f2328;--muted:#656d76;--bg:#fff;--card:#f6f8fa;--line:#d0d7de;--accent:#0969da;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--track:#e6e9ed}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#8d96a0;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#4493f8;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--track:#21262d}}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:0;padding:2rem;color:var(--fg);background:var(--bg)}
main{max-width:1100px;margin:0 auto}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4rem 1rem;margin-bottom:1.2rem}
h1{font-size:1.6rem;margin:0}
.ver,.name{color:var(--muted)}
.status{display:inline-block;padding:.05rem .6rem;border-radius:1rem;font-size:.8rem;font-weight:600;border:1px solid currentColor}
.status.running{color:var(--ok)}.status.disabled-metered,.status.loading,.status.starting{color:var(--warn)}.status.unknown{color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.8rem;margin:0 0 1.5rem;padding:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:.7rem 1rem;margin:0}
.card dt{font-size:.78rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.card dd{margin:.15rem 0 0;font-size:1.35rem;font-weight:600;font-variant-numeric:tabular-nums}
.wrap{overflow-x:auto;border:1px solid var(--line);border-radius:.5rem}
table{border-collapse:collapse;width:100%}
caption{text-align:left;font-weight:600;padding:.6rem .8rem}
th,td{padding:.5rem .8rem;border-top:1px solid var(--line);text-align:left;vertical-align:middle;white-space:nowrap}
thead th{background:var(--card);font-size:.78rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
tbody tr:hover{background:var(--card)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.name{white-space:normal;word-break:break-all;min-width:12rem}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
code{font:.85em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
abbr{text-decoration:none;cursor:help;border-bottom:1px dotted var(--muted)}
.meter{display:flex;align-items:center;gap:.5rem;font-variant-numeric:tabular-nums}
.bar{display:inline-block;width:6rem;height:.5rem;border-radius:.25rem;background:var(--track);overflow:hidden;flex:none}
.bar>span{display:block;height:100%;background:var(--ok)}
.bar.mid>span{background:var(--warn)}.bar.high>span{background:var(--bad)}.bar.none>span{background:var(--muted)}
.flag{display:inline-block;padding:0 .45rem;margin-right:.25rem;border-radius:.25rem;font-size:.75rem;border:1px solid var(--line);color:var(--muted)}
.flag.disabled{color:var(--bad);border-color:var(--bad)}.flag.static{color:var(--accent);border-color:var(--accent)}
p.empty{color:var(--muted);padding:1rem .8rem;margin:0}
footer{margin-top:1rem;color:var(--muted);font-size:.8rem}
`;

export interface IndexPageData {
  version: string;
  savings: Savings;
  items: ItemInfo[];
  /** ms since the epoch */
  now: number;
  /** daemon status as `passim dump` shows it (running, disabled-metered, …) */
  status?: string;
  /** mDNS instance name, when advertising */
  name?: string;
}

const STATUS_TEXT: Record<string, string> = {
  running: 'running',
  'disabled-metered': 'metered: not advertising',
  loading: 'loading',
  starting: 'starting',
  unknown: 'unknown',
};

function flagBadges(item: ItemInfo): string {
  const f: Array<[string, string]> = [];
  if (item.static) f.push(['static', 'from a static directory: never expires, never deleted']);
  if (item.nextReboot) f.push(['next-reboot', 'published with --next-reboot']);
  if (item.disabled) f.push(['disabled', 'not served until the machine reboots (HTTP 423)']);
  return f.map(([n, t]) => `<span class="flag ${n}" title="${escapeHtml(t)}">${escapeHtml(n)}</span>`).join('');
}

/** fraction 0…1 → a CSS bar; over 60 % amber, over 85 % red. `undefined` = unlimited. */
function bar(fraction: number | undefined, label: string): string {
  if (fraction === undefined) return `<span class="bar none" role="img" aria-label="${escapeHtml(label)}"><span style="width:0%"></span></span>`;
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const pct = Math.round(f * 1000) / 10;
  const cls = f > 0.85 ? ' high' : f > 0.6 ? ' mid' : '';
  return `<span class="bar${cls}" role="img" aria-label="${escapeHtml(label)}"><span style="width:${pct}%"></span></span>`;
}

function row(it: ItemInfo, now: number): string {
  const e = escapeHtml;
  const ageS = Math.max(0, (now - it.created) / 1000);
  const age = humanDuration(ageS);
  const ageText = it.maxAge > 0 ? `${age} / ${humanDuration(it.maxAge)}` : `${age} / ∞`;
  const ageBar = bar(it.maxAge > 0 ? ageS / it.maxAge : undefined, `age ${ageText}`);
  const shareText = it.shareLimit > 0 ? `${it.shareCount} / ${it.shareLimit}` : `${it.shareCount} / ∞`;
  const shareBar = bar(it.shareLimit > 0 ? it.shareCount / it.shareLimit : undefined, `shared ${shareText}`);
  const href = `/${encodeURIComponent(it.basename)}?sha256=${encodeURIComponent(it.hash)}`;
  const published = new Date(it.created);
  const pubTitle = Number.isNaN(published.getTime()) ? '' : ` title="published ${e(published.toISOString())}"`;
  return (
    `<tr data-hash="${e(it.hash)}">` +
    `<td class="name"><a href="${e(href)}">${e(it.basename)}</a></td>` +
    `<td><code><abbr title="${e(it.hash)}">${e(it.hash.slice(0, 12))}…</abbr></code></td>` +
    `<td${pubTitle}><span class="meter">${ageBar}<span>${e(ageText)}</span></span></td>` +
    `<td><span class="meter">${shareBar}<span>${e(shareText)}</span></span></td>` +
    `<td class="num" title="${it.size} bytes">${e(humanBytes(it.size))}</td>` +
    `<td>${flagBadges(it)}</td>` +
    '</tr>'
  );
}

/** Rows the index page shows at most: a store of 10,000 items would make an 8 MB page taking seconds to build. */
export const INDEX_MAX_ROWS = 1000;

export function indexPage(d: IndexPageData): string {
  const e = escapeHtml;
  // code-unit order (as the store lists them): localeCompare costs seconds over 10,000 items
  const items = [...d.items].sort((a, b) => (a.basename < b.basename ? -1 : a.basename > b.basename ? 1 : a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  const total = items.reduce((n, it) => n + (Number.isFinite(it.size) ? it.size : 0), 0);
  const status = d.status ?? 'running';
  const statusClass = /^[a-z-]+$/.test(status) ? status : 'unknown';
  const table = items.length
    ? '<div class="wrap"><table>\n' +
      '<thead><tr><th scope="col">Name</th><th scope="col">SHA-256</th><th scope="col">Age / max-age</th>' +
      '<th scope="col">Shared / limit</th><th scope="col" class="num">Size</th><th scope="col">Flags</th></tr></thead>\n' +
      `<tbody>\n${items.slice(0, INDEX_MAX_ROWS).map((it) => row(it, d.now)).join('\n')}\n</tbody></table>` +
      (items.length > INDEX_MAX_ROWS
        ? `<p class="empty">and ${items.length - INDEX_MAX_ROWS} more (<code>passim dump</code> lists every item)</p>`
        : '') +
      '</div>'
    : '<div class="wrap"><p class="empty">No items are published. Add one with <code>passim publish FILE</code>.</p></div>';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Passim ${e(d.version)}</title><style>${STYLE_CSS}</style></head>
<body><main>
<header><h1>Passim</h1><span class="ver">version ${e(d.version)}</span>` +
    `<span class="status ${e(statusClass)}">${e(STATUS_TEXT[status] ?? status)}</span>` +
    `${d.name && status === 'running' ? `<span class="name">advertised as <code>${e(d.name)}</code></span>` : ''}</header>
<dl class="cards">
<div class="card"><dt>Items</dt><dd id="items">${items.length}</dd></div>
<div class="card"><dt>Stored</dt><dd>${e(humanBytes(total))}</dd></div>
<div class="card"><dt>Download saving</dt><dd id="download-saving" title="${Math.max(0, Math.round(d.savings.downloadSaving || 0))} bytes served to peers">${e(humanBytes(d.savings.downloadSaving))}</dd></div>
<div class="card"><dt>Carbon saving</dt><dd id="carbon-saving" title="kg CO₂e not spent on CDN downloads">${e(humanCarbon(d.savings.carbonSaving))} CO₂e</dd></div>
</dl>
${table}
<footer>Served to localhost only. Files are fetched by hash: <code>passim fetch NAME --sha256 HASH</code>.</footer>
</main></body></html>
`;
}
