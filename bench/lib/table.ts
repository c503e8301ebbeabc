/** The result rows of a bench run and their plain-text table. */
export interface Row {
  /** which measure file produced it */
  group: string;
  /** what was measured */
  measure: string;
  /** the measured value(s), formatted */
  value: string;
  /** what it is compared with, formatted ('—' when absolute) */
  baseline: string;
  /** value ÷ baseline (or the difference), formatted ('—' when absolute) */
  ratio: string;
  target: string;
  /** true/false; null when not applicable or not measured */
  met: boolean | null;
  /** raw numbers for results.json */
  data?: Record<string, unknown>;
  note?: string;
}

function pad(s: string, n: number): string {
  return s + ' '.repeat(Math.max(0, n - [...s].length));
}

export function renderTable(rows: Row[]): string {
  const head = ['measure', 'value', 'baseline', 'ratio', 'target', 'met'];
  const cells = rows.map((r) => [r.measure, r.value, r.baseline, r.ratio, r.target, r.met === null ? 'n/a' : r.met ? 'yes' : 'NO']);
  const widths = head.map((h, i) => Math.max([...h].length, ...cells.map((c) => [...c[i]!].length)));
  const line = (c: string[]) => `| ${c.map((x, i) => pad(x, widths[i]!)).join(' | ')} |`;
  const out = [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)];
  const notes = rows.filter((r) => r.note).map((r) => `- ${r.measure}: ${r.note}`);
  return out.join('\n') + (notes.length ? `\n\nNotes:\n${notes.join('\n')}` : '');
}
