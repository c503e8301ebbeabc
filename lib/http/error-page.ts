/** The small HTML error bodies upstream sends: `<html><head><title>CODE Phrase</title></head><body>reason</body></html>`. */
import { STATUS_CODES } from 'node:http';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? 'Unknown';
}

export function errorPage(status: number, reason: string): string {
  return `<html><head><title>${status} ${escapeHtml(reasonPhrase(status))}</title></head><body>${escapeHtml(reason)}</body></html>`;
}
