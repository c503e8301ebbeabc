/**
 * Crash consistency of the store (SPEC §3, issue 4): a real worker process (store-worker.ts)
 * publishes, shares, unpublishes and expires items on one state dir and is killed with SIGKILL at
 * random points (fixed seed); after each kill a new Store is opened on the same dirs and must find
 *   - every listed item's bytes hashing to its sha256, with its size;
 *   - no temp file left after load (data dir, sidecar dir, state dir);
 *   - no file under a final `<sha256>-<name>` name with other content;
 *   - metadata readable (the share-limit and max-age the worker gave, not defaults);
 *   - share counts below the share-limit for every listed item;
 *   - savings at least the sum of the SHAREs the worker reported done before the kill;
 *   - every item the worker reported published and not removed still there (long max-age only);
 *   - the static dir's files never modified or deleted (bytes and mtime), and still listed.
 * Half the kills run on a store with xattr metadata, half on one with the sidecar.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store } from '../../lib/store/store.js';
import { parseItemFileName } from '../../lib/store/item-file.js';

const WORKER = fileURLToPath(new URL('./store-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SEED = Number(process.env.PASSIM_CRASH_SEED ?? 4242);
const KILLS = Number(process.env.PASSIM_CRASH_KILLS ?? 32);

function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface RunResult {
  lines: string[];
  stderr: string;
  signal: NodeJS.Signals | null;
  code: number | null;
}

/**
 * Starts the worker; once `afterLines` operation lines have been printed (or `afterMs` after READY,
 * whichever plan was drawn) sends SIGKILL; resolves with every line it printed before it died.
 */
function runAndKill(args: string[], plan: { afterLines?: number; afterMs?: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let buf = '';
    let stderr = '';
    let killed = false;
    const kill = () => {
      if (!killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const guard = setTimeout(kill, 60_000); // never hang the suite: a worker that never gets READY
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line.startsWith('READY') && plan.afterMs !== undefined) setTimeout(kill, plan.afterMs);
        if (plan.afterLines !== undefined && lines.length > plan.afterLines) kill();
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      // a partial last line was cut by the kill mid-write: it did not report a finished operation
      resolve({ lines, stderr, signal, code });
    });
  });
}

interface Snapshot {
  bytes: Buffer;
  mtimeMs: number;
  size: number;
}

async function snapshotDir(dir: string): Promise<Map<string, Snapshot>> {
  const out = new Map<string, Snapshot>();
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    const st = await stat(p);
    out.set(name, { bytes: await readFile(p), mtimeMs: st.mtimeMs, size: st.size });
  }
  return out;
}

// the timeout only guards against a hang: 40 s alone, past 240 s on 2 cores shared with a full test run
test(`store crash consistency: ${KILLS} SIGKILLs at random points, then a fresh Store checks the state`, { timeout: 600_000 }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'passim-crash-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const configDir = join(root, 'config');
  const staticDir = join(root, 'static');
  await mkdir(join(configDir, 'passim.d'), { recursive: true });
  await mkdir(staticDir);
  await writeFile(join(configDir, 'passim.d', 'static.conf'), `[passim]\nPath=${staticDir}\n`);
  const rnd = mulberry32(SEED);
  for (let i = 0; i < 4; i++) {
    const b = Buffer.alloc(1000 + Math.floor(rnd() * 300_000));
    for (let j = 0; j < b.length; j += 4096) b[j] = Math.floor(rnd() * 256);
    b.write(`static-${i}`);
    await writeFile(join(staticDir, `static-${i}.bin`), b);
  }
  const staticBefore = await snapshotDir(staticDir);
  const staticHashes = new Set([...staticBefore.values()].map((s) => sha256(s.bytes)));

  let ops = 0;
  let checks = 0;
  let unreportedPublishes = 0;
  let inFlightRemovals = 0;
  let interruptedPublishes = 0;
  let interruptedSmallWrites = 0;
  const opCounts: Record<string, number> = {};
  const check = (cond: unknown, msg: string) => {
    checks++;
    assert.ok(cond, msg);
  };
  // two stores, one per metadata backend (a store does not switch backends between runs)
  for (const [phase, metadata] of (['xattr', 'sidecar'] as const).entries()) {
    const stateDir = join(root, `state-${metadata}`);
    let sharedBytes = 0; // sum over SHARE lines printed by all workers
    /** items the workers reported published and not (yet) removed: hash → {shareLimit, maxAge} */
    const live = new Map<string, { shareLimit: number; maxAge: number; size: number }>();
    /** hashes ever published by a worker: metadata of any listed non-static item must be one of these */
    const ever = new Map<string, { shareLimit: number; maxAge: number; size: number }>();

    for (let k = phase * Math.ceil(KILLS / 2); k < Math.min(KILLS, (phase + 1) * Math.ceil(KILLS / 2)); k++) {
      const plan = rnd() < 0.6 ? { afterLines: 1 + Math.floor(rnd() * 12) } : { afterMs: Math.floor(rnd() * 400) };
      const run = await runAndKill([stateDir, configDir, String(SEED * 1000 + k), metadata], plan);
      assert.equal(run.signal, 'SIGKILL', `worker ${k} died by SIGKILL, not by itself (code ${run.code}): ${run.stderr.slice(0, 2000)}`);
      assert.ok(run.lines[0]?.startsWith('READY'), `worker ${k} got READY: ${JSON.stringify(run.lines.slice(0, 3))} ${run.stderr.slice(0, 500)}`);
      // everything printed is a finished operation
      for (const line of run.lines.slice(1)) {
        const [op, hash, a, b, c] = line.split(' ');
        opCounts[op] = (opCounts[op] ?? 0) + 1;
        ops++;
        if (op === 'PUB') {
          const meta = { size: Number(a), shareLimit: Number(b), maxAge: Number(c) };
          live.set(hash, meta);
          ever.set(hash, meta);
        } else if (op === 'SHARE') {
          sharedBytes += Number(a);
          if (b === '1') live.delete(hash);
        } else if (op === 'UNPUB') {
          live.delete(hash);
        } else if (op === 'EXPIRE') {
          // which items went is not printed: forget the short-lived ones, they may be gone
          for (const [h, m] of live) if (m.maxAge < 86400) live.delete(h);
        }
      }

      // what the kill interrupted, seen before the new Store cleans up (evidence the kills land mid-operation)
      const leftovers = [
        ...(await readdir(join(stateDir, 'data')).catch(() => [] as string[])),
        ...(await readdir(join(stateDir, 'data', '.meta')).catch(() => [] as string[])),
        ...(await readdir(stateDir).catch(() => [] as string[])),
      ];
      if (leftovers.some((n) => n.startsWith('.passim-tmp-'))) interruptedPublishes++;
      if (leftovers.some((n) => n.startsWith('.tmp-'))) interruptedSmallWrites++;

      // ------------------------------------------------------------------ a fresh Store on the same dirs
      const warnings: string[] = [];
      const logger = { error: (m: string) => warnings.push(m), warn: (m: string) => warnings.push(m), info() {}, debug() {} };
      const store = new Store({ stateDir, configDir, metadata, logger });
      await store.load();
      try {
        const items = store.list();
        const dataDir = join(stateDir, 'data');

        for (const item of items) {
          const bytes = await readFile(item.path);
          check(sha256(bytes) === item.hash, `kill ${k}: ${item.path} hashes to its sha256`);
          check(bytes.length === item.size, `kill ${k}: ${item.path} has its size`);
          if (item.static) {
            check(staticHashes.has(item.hash), `kill ${k}: static item is one of the static files`);
            continue;
          }
          const meta = ever.get(item.hash);
          // metadata read back, not defaulted (defaults are share-limit 5, which the worker never uses)
          if (meta) {
            check(item.shareLimit === meta.shareLimit && item.maxAge === meta.maxAge, `kill ${k}: metadata of ${item.hash}: limit ${item.shareLimit}/${meta.shareLimit} max-age ${item.maxAge}/${meta.maxAge}`);
          } else {
            // the publish finished but the kill came before its PUB line
            unreportedPublishes++;
            check(item.shareLimit >= 1 && item.shareLimit <= 4 && (item.maxAge === 2 || item.maxAge === 86400), `kill ${k}: metadata of unreported ${item.hash}: limit ${item.shareLimit} max-age ${item.maxAge}`);
            ever.set(item.hash, { shareLimit: item.shareLimit, maxAge: item.maxAge, size: item.size });
          }
          check(item.shareCount < item.shareLimit, `kill ${k}: share count ${item.shareCount} below the limit ${item.shareLimit} for ${item.hash}`);
        }
        // every item reported published and not removed is still there
        const listed = new Set(items.map((i) => i.hash));
        // (the one operation in flight at the kill may have removed one item without printing it)
        const missing = [...live].filter(([hash, m]) => m.maxAge >= 86400 && !listed.has(hash)).map(([h]) => h);
        check(missing.length <= 1, `kill ${k}: ${missing.length} published items (not unpublished/shared out/expired) lost: ${missing.join(' ')}`);
        inFlightRemovals += missing.length;
        for (const h of [...live.keys()]) if (!listed.has(h)) live.delete(h);
        for (const h of listed) if (!live.has(h) && ever.has(h) && !items.find((i) => i.hash === h)!.static) live.set(h, ever.get(h)!);

        // data dir: no temp files; every final name holds the bytes of its hash
        for (const name of await readdir(dataDir)) {
          check(!name.startsWith('.passim-tmp-') && !name.startsWith('.tmp-'), `kill ${k}: temp file ${name} left in the data dir after load`);
          if (name === '.meta') {
            for (const m of await readdir(join(dataDir, '.meta'))) {
              check(!m.startsWith('.tmp-'), `kill ${k}: temp file .meta/${m} left after load`);
              const h = /^([0-9a-f]{64})\.json$/.exec(m)?.[1];
              if (h) check(listed.has(h), `kill ${k}: sidecar ${m} belongs to a listed item`);
            }
            continue;
          }
          const parsed = parseItemFileName(name);
          check(parsed !== undefined, `kill ${k}: unexpected file ${name} in the data dir`);
          if (!parsed) continue;
          check(sha256(await readFile(join(dataDir, name))) === parsed.hash, `kill ${k}: ${name} holds other bytes than its name says`);
          check(listed.has(parsed.hash), `kill ${k}: ${name} is on disk but not listed`);
        }
        for (const name of await readdir(stateDir)) {
          check(!name.startsWith('.tmp-'), `kill ${k}: temp file ${name} left in the state dir after load`);
        }

        // savings: nothing reported done is lost
        const saved = store.savings().downloadSaving;
        check(saved >= sharedBytes, `kill ${k}: savings ${saved} ≥ ${sharedBytes} bytes of reported shares`);

        // static dir untouched and still published
        const staticNow = await snapshotDir(staticDir);
        check(staticNow.size === staticBefore.size, `kill ${k}: static files all there`);
        for (const [name, before] of staticBefore) {
          const now = staticNow.get(name);
          check(now !== undefined && now.bytes.equals(before.bytes) && now.mtimeMs === before.mtimeMs, `kill ${k}: static file ${name} unmodified`);
        }
        check(items.filter((i) => i.static).length === staticBefore.size, `kill ${k}: every static file listed`);
      } finally {
        await store.close();
      }
    }
  }
  const line = `crash: ${KILLS} kills, ${ops} completed operations (${Object.entries(opCounts).map(([k, v]) => `${k} ${v}`).join(', ')}), ${checks} checks, 0 failures; ${unreportedPublishes} publishes and ${inFlightRemovals} removals completed unreported at a kill; ${interruptedPublishes} kills left a half-written item, ${interruptedSmallWrites} a half-written shares/sidecar file`;
  t.diagnostic(line);
  assert.ok(ops >= KILLS, 'the workers did real work between kills');
  assert.ok((opCounts.PUB ?? 0) > 0 && (opCounts.SHARE ?? 0) > 0, 'publishes and shares happened');
});
