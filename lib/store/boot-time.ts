/** The boot identity upstream uses for next-reboot items: the value of the `btime` line of /proc/stat. */
import { readFileSync } from 'node:fs';

/** Parses the text of /proc/stat; undefined when it has no btime line. */
export function parseBootTime(procStat: string): string | undefined {
  for (const line of procStat.split('\n')) {
    if (line.startsWith('btime ')) return line.slice(6);
  }
  return undefined;
}

let cached: string | undefined | null = null;

/** The current boot time, read once per process (it cannot change without a reboot). */
export function currentBootTime(): string | undefined {
  if (cached === null) {
    try {
      cached = parseBootTime(readFileSync('/proc/stat', 'utf8'));
    } catch {
      cached = undefined;
    }
  }
  return cached;
}
