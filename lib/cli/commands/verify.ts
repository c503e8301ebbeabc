/**
 * `passim verify [--fix]`: the daemon re-hashes every item and reports the bad ones.
 * `passim verify FILE --sha256 HASH`: checks one local file, no daemon needed.
 */
import type { Argv, CommandModule } from 'yargs';
import { handler, hashError, print, withSocket, type SocketArgs } from '../base.js';
import { isSha256 } from '../../core/sha256.js';

interface VerifyArgs extends SocketArgs {
  file?: string;
  sha256?: string;
  fix?: boolean;
}

export const verifyCommand: CommandModule<SocketArgs, VerifyArgs> = {
  command: 'verify [file]',
  describe: 're-hash every item in the store (--fix unpublishes bad ones), or check FILE against --sha256',
  builder: (y: Argv<SocketArgs>) =>
    withSocket(y)
      .positional('file', { type: 'string', describe: 'a local file to check against --sha256 (no daemon needed)' })
      .option('sha256', { type: 'string', describe: 'expected sha256 of FILE (64 hex digits)', requiresArg: true })
      .option('fix', { type: 'boolean', describe: 'unpublish the items whose content no longer matches' })
      .check((a) => {
        if (a.file !== undefined) {
          if (a.sha256 === undefined) return 'verify FILE needs --sha256 HASH';
          if (a.fix) return '--fix is for the store, not for FILE';
          if (!isSha256(a.sha256)) return hashError(a.sha256);
        } else if (a.sha256 !== undefined) {
          return '--sha256 needs a FILE to check';
        }
        return true;
      })
      .example('$0 verify --fix', 'unpublish the items whose bytes changed on disk')
      .example('$0 verify ./fw.cab --sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', '') as unknown as Argv<VerifyArgs>,
  handler: handler<VerifyArgs>(async (args) => {
    const { ChecksumMismatchError, PassimError, ExitCode } = await import('../../core/errors.js');
    if (args.file !== undefined) {
      const { normaliseSha256, sha256File } = await import('../../core/sha256.js');
      const expected = normaliseSha256(String(args.sha256));
      let actual: { sha256: string; size: number };
      try {
        actual = await sha256File(args.file);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
        throw new PassimError(`cannot read ${args.file}: ${why}`);
      }
      const ok = actual.sha256 === expected;
      if (args.json) print(args, { path: args.file, ok, expected, actual: actual.sha256, size: actual.size }, () => '');
      if (!ok) throw new ChecksumMismatchError(expected, actual.sha256, `${args.file}: checksum mismatch: expected sha256 ${expected}, got ${actual.sha256}`);
      if (!args.json && !args.quiet) print(args, null, () => `${args.file}: OK`);
      return ExitCode.OK;
    }

    const { resolvePaths } = await import('../../core/paths.js');
    const { ControlClient } = await import('../../control/client.js');
    const client = new ControlClient(resolvePaths({ socketPath: args.socket }).socketPath);
    try {
      const reply = await client.verify(Boolean(args.fix));
      const unfixed = reply.bad.filter((b) => !b.fixed);
      print(args, reply, () => {
        const lines = reply.bad.map((b) =>
          `BAD\t${b.hash}\t${b.basename}\tcontent now hashes to ${b.actual || 'unreadable'}${b.fixed ? '\tunpublished' : ''}`);
        if (!args.quiet || reply.bad.length) {
          lines.push(`checked ${reply.checked} item${reply.checked === 1 ? '' : 's'}: ${reply.bad.length} bad` +
            (reply.bad.length ? (unfixed.length ? ' (run passim verify --fix to unpublish them)' : ', unpublished') : ''));
        }
        return lines.join('\n');
      });
      if (unfixed.length) {
        process.stderr.write(`passim: error: ${unfixed.length} item${unfixed.length === 1 ? '' : 's'} no longer match${unfixed.length === 1 ? 'es' : ''} ${unfixed.length === 1 ? 'its' : 'their'} sha256\n`);
        return ExitCode.CHECKSUM;
      }
      return ExitCode.OK;
    } finally {
      await client.close();
    }
  }),
};
