/** Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and inclusive time per file/package. */
import { readFile } from 'node:fs/promises';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }

function shortUrl(url: string, root: string): string {
  return url.replace(`file://${root}/`, '').replace(/node_modules\/((?:@[^/]+\/)?[^/]+)\/.*/, 'node_modules/$1');
}

export interface ProfileSummary {
  totalMs: number;
  self: Array<{ fn: string; ms: number }>;
  byFile: Array<{ file: string; ms: number }>;
}

export async function summarise(path: string, root: string, top = 12): Promise<ProfileSummary> {
  const p = JSON.parse(await readFile(path, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ticks = new Map<number, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const d = p.timeDeltas[i] ?? 0;
    ticks.set(id, (ticks.get(id) ?? 0) + d);
    total += d;
  });
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, t] of ticks) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') continue;
    const k = `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url, root)}:${n.callFrame.lineNumber + 1}`;
    self.set(k, (self.get(k) ?? 0) + t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const u = shortUrl(byId.get(cur)!.callFrame.url, root);
      if (!u || seen.has(u)) continue;
      seen.add(u);
      incl.set(u, (incl.get(u) ?? 0) + t);
    }
  }
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    totalMs: ms(total),
    self: [...self].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, t]) => ({ fn, ms: ms(t) })),
    byFile: [...incl].sort((a, b) => b[1] - a[1]).slice(0, top).map(([file, t]) => ({ file, ms: ms(t) })),
  };
}
