/** Shared bits for the fuzz tests: the fixed seed, and a runner that counts cases and failures. */
import fc from 'fast-check';
import type { TestContext } from 'node:test';

/** Every fuzz test runs with this seed (override with PASSIM_FUZZ_SEED to explore). */
export const SEED = Number(process.env.PASSIM_FUZZ_SEED ?? 20240611);

/** Cases per input class (issue 4 asks for ≥ 10,000); PASSIM_FUZZ_RUNS may raise it. */
export const RUNS = Math.max(10_000, Number(process.env.PASSIM_FUZZ_RUNS ?? 10_000));

export interface Tally {
  cases: number;
  failures: number;
  /** named outcome counters, printed with the totals (e.g. accepted / rejected) */
  outcomes: Record<string, number>;
}

export function newTally(): Tally {
  return { cases: 0, failures: 0, outcomes: {} };
}

export function bump(t: Tally, outcome: string): void {
  t.outcomes[outcome] = (t.outcomes[outcome] ?? 0) + 1;
}

/**
 * Runs a fast-check property with the fixed seed, counting every generated case, and prints
 * `<label>: N cases, F failures (outcomes)` as a test diagnostic and on stdout.
 */
export function checkCounted<Ts extends [unknown, ...unknown[]]>(
  t: TestContext,
  label: string,
  arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  pred: (...args: Ts) => void,
  numRuns = RUNS,
  tally: Tally = newTally(),
): Tally {
  const prop = fc.property(...(arbs as unknown as [fc.Arbitrary<unknown>]), (...args: unknown[]) => {
    tally.cases++;
    try {
      (pred as (...a: unknown[]) => void)(...args);
    } catch (err) {
      tally.failures++;
      throw err;
    }
  });
  try {
    fc.assert(prop, { seed: SEED, numRuns, endOnFailure: true, includeErrorInReport: true });
  } finally {
    report(t, label, tally);
  }
  return tally;
}

export async function checkCountedAsync<Ts extends [unknown, ...unknown[]]>(
  t: TestContext,
  label: string,
  arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  pred: (...args: Ts) => Promise<void>,
  numRuns = RUNS,
  tally: Tally = newTally(),
): Promise<Tally> {
  const prop = fc.asyncProperty(...(arbs as unknown as [fc.Arbitrary<unknown>]), async (...args: unknown[]) => {
    tally.cases++;
    try {
      await (pred as (...a: unknown[]) => Promise<void>)(...args);
    } catch (err) {
      tally.failures++;
      throw err;
    }
  });
  try {
    await fc.assert(prop, { seed: SEED, numRuns, endOnFailure: true, includeErrorInReport: true });
  } finally {
    report(t, label, tally);
  }
  return tally;
}

export function report(t: TestContext, label: string, tally: Tally): void {
  const extra = Object.entries(tally.outcomes).map(([k, v]) => `${k} ${v}`).join(', ');
  const line = `${label}: ${tally.cases} cases, ${tally.failures} failures${extra ? ` (${extra})` : ''}`;
  t.diagnostic(line);
}
