/** @mailark/cli: the mailark command line, runnable in-process for tests and embedding. */
export {
  type CommandArgs,
  type CommandSpec,
  defineCommand,
  type GlobalOptions,
  type MailarkCommand,
} from './command.js';
export type { CommandContext, OpenRepositoryOptions } from './context.js';
export { type CliIo, main, runCli, VERSION } from './main.js';
export { Output } from './output.js';
