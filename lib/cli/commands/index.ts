/** Every command, in the order `passim --help` lists them. Each module keeps heavy imports lazy. */
import type { CommandModule } from 'yargs';
import { serveCommand } from './serve.js';
import { publishCommand } from './publish.js';
import { unpublishCommand } from './unpublish.js';
import { dumpCommand } from './dump.js';
import { verifyCommand } from './verify.js';
import { fetchCommand } from './fetch.js';

export const commands: CommandModule<any, any>[] = [
  serveCommand,
  publishCommand,
  unpublishCommand,
  dumpCommand,
  verifyCommand,
  fetchCommand,
];
