/** `passim unpublish HASH`: remove an item from the daemon's store. */
import type { Argv, CommandModule } from 'yargs';
import { handler, hashError, print, withSocket, type SocketArgs } from '../base.js';
import { isSha256 } from '../../core/sha256.js';

interface UnpublishArgs extends SocketArgs {
  hash: string;
}

export const unpublishCommand: CommandModule<SocketArgs, UnpublishArgs> = {
  command: 'unpublish <hash>',
  describe: 'remove an item (a static-dir item is only unadvertised, never deleted from disk)',
  builder: (y: Argv<SocketArgs>) =>
    withSocket(y)
      .positional('hash', { type: 'string', describe: 'sha256 of the item (64 hex digits)', demandOption: true })
      .check((a) => {
        if (!isSha256(a.hash)) return hashError(a.hash);
        return true;
      })
      .example('$0 unpublish 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', '') as unknown as Argv<UnpublishArgs>,
  handler: handler<UnpublishArgs>(async (args) => {
    const { normaliseSha256 } = await import('../../core/sha256.js');
    const { resolvePaths } = await import('../../core/paths.js');
    const { ControlClient } = await import('../../control/client.js');
    const hash = normaliseSha256(String(args.hash));
    const client = new ControlClient(resolvePaths({ socketPath: args.socket }).socketPath);
    try {
      const item = await client.unpublish(hash);
      print(args, item, () => (args.quiet ? '' : `unpublished ${item.hash} ${item.basename}`));
    } finally {
      await client.close();
    }
  }),
};
