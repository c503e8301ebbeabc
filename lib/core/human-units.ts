/**
 * Sizes, durations and carbon in human units, one way everywhere: the index page, `passim dump`
 * and fetch progress.
 */

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB", 300 MiB → "300 MiB"; whole bytes below 1 KiB; one decimal below 10. */
export function humanBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${Math.max(0, Math.round(n || 0))} B`;
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${BYTE_UNITS[i]}`;
}

/** 59 → "59s", 3725 → "1h02m", 93784 → "1d2h"; at most two units. */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  return h ? `${d}d${h}h` : `${d}d`;
}

/** kg CO₂e, three significant digits, in grams below 1 kg so a small saving is not shown as 0. */
export function humanCarbon(kg: number): string {
  if (!Number.isFinite(kg) || kg <= 0) return '0 kg';
  if (kg < 1) return `${Number((kg * 1000).toPrecision(3))} g`;
  return `${Number(kg.toPrecision(3))} kg`;
}
