/**
 * Starts test/helpers/http-dir-server.ts (a plain-HTTP mirror over a directory) inside a namespace
 * host, or on 127.0.0.1 without one, and reads back the paths it was asked for.
 *
 *   const m = await startHttpMirror(lan.hosts[2], repoDir, 8080, logFile);
 *   m.url('/repodata/repomd.xml'); await m.count('/repodata/repomd.xml'); await m.stop();
 */
import { execa, type ResultPromise } from 'execa';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { LanHost } from './netns.js';

const SERVER = resolve(import.meta.dirname, 'http-dir-server.ts');
const REPO = resolve(import.meta.dirname, '../..');

export interface HttpMirror {
  /** base URL, no trailing slash: http://ADDRESS:PORT */
  base: string;
  url(path: string): string;
  /** request paths in arrival order (every request answered so far is in it) */
  hits(): Promise<string[]>;
  count(path: string): Promise<number>;
  stop(): Promise<void>;
}

/** `log` is a file the server appends each request path to (it must not exist yet or be empty). */
export async function startHttpMirror(host: LanHost | undefined, dir: string, port: number, log: string): Promise<HttpMirror> {
  const cfg = JSON.stringify({ port, dir, log, host: host ? '0.0.0.0' : '127.0.0.1' });
  const args = ['--import', 'tsx', SERVER, cfg];
  const opts = { cwd: REPO, reject: false, buffer: false, stdin: 'ignore', stderr: 'inherit' } as const;
  const proc: ResultPromise = host ? host.spawn(process.execPath, args, opts) : execa(process.execPath, args, opts);
  const actual = await new Promise<number>((res, rej) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const m = /^ready (\d+)$/.exec(l);
      if (m) res(Number(m[1]));
    });
    void proc.then((r) => rej(new Error(`HTTP mirror exited (${r.exitCode})`)));
  });
  const base = `http://${host ? host.address : '127.0.0.1'}:${actual}`;
  const hits = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
  return {
    base,
    url: (p) => `${base}${p}`,
    hits,
    count: async (p) => (await hits()).filter((h) => h === p).length,
    async stop() { proc.kill('SIGTERM'); await proc; },
  };
}
