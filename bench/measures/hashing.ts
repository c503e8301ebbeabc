/**
 * Hashing of the big file as passim does it, against `openssl dgst -sha256` on the same file:
 *  - static-dir scan: lib/store/static-checksum.ts staticChecksum() with the xattr cache cleared
 *    (reads + hashes the file, then caches the result in xattrs);
 *  - publish, the store's half: lib/store/publish.ts streamToTemp() fed by a file read stream,
 *    with the size hint the daemon passes (hash + write the copy + fsync; a worker and O_DIRECT
 *    for a big source), and once without the hint (all on this thread, through the page cache);
 *  - publish end-to-end: `passim publish FILE` to a running daemon (client streams the file over
 *    the control socket; the daemon hashes, writes, fsyncs, renames; the CLI start included).
 * All in the page cache (the file was just written; RAM ≫ file), so this is CPU, not disk reads.
 */
import { createReadStream } from 'node:fs';
import { link, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Ctx } from '../lib/context.js';
import { passim, runOk } from '../lib/proc.js';
import { fmtBytes, fmtRate, fmtRatio, median } from '../lib/stats.js';
import type { Row } from '../lib/table.js';
import { staticChecksum, clearChecksumCache } from '../../lib/store/static-checksum.js';
import { streamToTemp } from '../../lib/store/publish.js';

export const name = 'hashing';

export async function measure(ctx: Ctx): Promise<Row[]> {
  const big = await ctx.bigFile();
  const dir = join(ctx.work, 'hashing');
  await mkdir(dir, { recursive: true });
  // its own inode: the static-checksum xattrs must not land on the shared big file
  const file = join(dir, 'static.bin');
  await runOk('cp', [big.path, file]);
  const st = await stat(file, { bigint: true });
  const stamp = { size: Number(st.size), mtimeNs: String(st.mtimeNs) };
  const d = await ctx.daemon(undefined, { conf: `MaxItemSize=${4 * big.size}` });
  const reps = ctx.quick ? 2 : 3;
  const openssl: number[] = [];
  const scan: number[] = [];
  const store: number[] = [];
  const storeInline: number[] = [];
  const publish: number[] = [];
  const dd: number[] = [];
  for (let i = 0; i < reps; i++) {
    const o = await runOk('openssl', ['dgst', '-sha256', '-r', file]);
    if (!o.stdout.startsWith(big.sha256)) throw new Error(`openssl: unexpected ${o.stdout}`);
    openssl.push(o.ms);

    await clearChecksumCache(file);
    let t = performance.now();
    const s = await staticChecksum(file, stamp);
    scan.push(performance.now() - t);
    if (s.sha256 !== big.sha256 || s.cached) throw new Error('staticChecksum: wrong hash or cached');

    t = performance.now();
    const tmp = await streamToTemp(createReadStream(file, { highWaterMark: 1024 * 1024 }), dir, 4 * big.size, big.size);
    store.push(performance.now() - t);
    if (tmp.sha256 !== big.sha256) throw new Error('streamToTemp: wrong hash');
    await rm(tmp.tempPath);

    t = performance.now();
    const tmpInline = await streamToTemp(createReadStream(file, { highWaterMark: 1024 * 1024 }), dir, 4 * big.size);
    storeInline.push(performance.now() - t);
    if (tmpInline.sha256 !== big.sha256) throw new Error('streamToTemp without a size hint: wrong hash');
    await rm(tmpInline.tempPath);

    const w = await runOk('dd', [`if=${file}`, `of=${join(dir, 'dd.out')}`, 'bs=1M', 'conv=fsync', 'status=none']);
    dd.push(w.ms);
    await rm(join(dir, 'dd.out'));

    const p = await passim(['publish', file, '--share-limit', '1000', '--socket', d.socket]);
    if (p.code !== 0) throw new Error(`passim publish: ${p.stderr}`);
    publish.push(p.ms);
    const u = await passim(['unpublish', big.sha256, '--socket', d.socket]);
    if (u.code !== 0) throw new Error(`passim unpublish: ${u.stderr}`);
    ctx.log(`  run ${i + 1}/${reps}: openssl ${Math.round(o.ms)} ms, static scan ${Math.round(scan.at(-1)!)} ms, store publish ${Math.round(store.at(-1)!)} ms (without the size hint ${Math.round(storeInline.at(-1)!)} ms), passim publish ${Math.round(p.ms)} ms`);
  }
  await rm(file, { force: true });
  const rate = (xs: number[]) => big.size / (median(xs) / 1000);
  const base = rate(openssl);
  const row = (what: string, xs: number[], note?: string): Row => ({
    group: name,
    measure: `hashing ${fmtBytes(big.size)}: ${what}`,
    value: `${fmtRate(rate(xs))} (median of ${reps})`,
    baseline: `openssl dgst -sha256 ${fmtRate(base)}`,
    ratio: fmtRatio(rate(xs) / base),
    target: '≥ 0.9×',
    met: rate(xs) / base >= 0.9,
    data: { samplesMs: xs, opensslMs: openssl, ddFsyncMs: dd, size: big.size },
    note,
  });
  return [
    row('static-dir scan (staticChecksum)', scan),
    row('publish, store side (hash + write + fsync; worker, O_DIRECT)', store, `bound by writing the copy: \`dd bs=1M conv=fsync\` alone does ${fmtRate(rate(dd))} here, so ${fmtRatio(rate(store) / rate(dd))} of the disk's write+fsync rate`),
    row('  same without the size hint (this thread, page cache)', storeInline),
    row('publish end-to-end (passim publish → daemon)', publish, `includes the CLI start, the stream over the control socket and the copy into the store (write + fsync; dd: ${fmtRate(rate(dd))}); openssl only reads`),
  ];
}
