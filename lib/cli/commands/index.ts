/** Every command, in the order `passim --help` lists them. Each module keeps heavy imports lazy. */
import type { CommandModule } from 'yargs';

export const commands: CommandModule<any, any>[] = [];
