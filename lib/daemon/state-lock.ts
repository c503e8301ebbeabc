/**
 * One daemon per state dir: a lock file created with O_EXCL holding our pid. A lock left by a
 * dead process (kill -9) is taken over; one held by a live process is an AlreadyRunningError.
 */
import { open, readFile, unlink, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AlreadyRunningError } from '../core/errors.js';

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StateLock {
  release(): Promise<void>;
}

export async function lockStateDir(lockPath: string): Promise<StateLock> {
  await mkdir(dirname(lockPath), { recursive: true, mode: 0o755 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(lockPath, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          await unlink(lockPath).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (pid !== process.pid && alive(pid)) {
        throw new AlreadyRunningError(`another passim daemon (pid ${pid}) is using the state dir ${dirname(lockPath)}`);
      }
      await unlink(lockPath).catch(() => {});
    }
  }
  throw new AlreadyRunningError(`cannot take the lock ${lockPath}`);
}
