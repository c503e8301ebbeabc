/** `passim dump` (alias `status`): the daemon's status and its items. */
import type { Argv, CommandModule } from 'yargs';
import { handler, print, withSocket, type SocketArgs } from '../base.js';

export const dumpCommand: CommandModule<SocketArgs, SocketArgs> = {
  command: 'dump',
  aliases: ['status'],
  describe: 'show the daemon status (version, port, name, savings) and the published items',
  builder: (y: Argv<SocketArgs>) =>
    withSocket(y)
      .example('$0 dump', 'a table on a terminal, tab-separated lines otherwise')
      .example('$0 dump --json', '{ status, items }') as unknown as Argv<SocketArgs>,
  handler: handler<SocketArgs>(async (args) => {
    const { resolvePaths } = await import('../../core/paths.js');
    const { ControlClient } = await import('../../control/client.js');
    const fmt = await import('../../control/format.js');
    const client = new ControlClient(resolvePaths({ socketPath: args.socket }).socketPath);
    try {
      const status = await client.status();
      const items = (await client.items()).sort((a, b) => a.basename.localeCompare(b.basename) || a.hash.localeCompare(b.hash));
      const now = Date.now();
      if (args.json) return print(args, { status, items }, () => '');
      const out = [...fmt.statusLines(status)];
      if (process.stdout.isTTY) {
        out.push('');
        if (items.length === 0) {
          out.push('No items published.');
        } else {
          const { default: Table } = await import('cli-table3');
          const table = new Table({
            head: fmt.ITEM_HEADINGS,
            style: { head: [], border: [] },
            // no rule between rows: one line per item
            chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
          });
          for (const it of items) table.push(fmt.humanItemRow(it, now));
          out.push(table.toString());
        }
      } else if (items.length) {
        out.push('');
        for (const it of items) out.push(fmt.plainItemLine(it, now));
      }
      print(args, null, () => out.join('\n'));
    } finally {
      await client.close();
    }
  }),
};
