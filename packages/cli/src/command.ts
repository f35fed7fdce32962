/**
 * Commands as data (wrangler's shape): a command is an object `{ command, describe, builder, handler }`
 * and its handler receives its services in a CommandContext, so a command file holds no set-up plumbing
 * and tests run the whole CLI in-process. commands/index.ts lists them; main.ts turns them into yargs
 * commands, adds the global options and the exit-code epilogue, and maps errors to exit codes.
 *
 * A handler returns nothing for success (exit 0) or an exit code it chose (e.g. `check` returns 1
 * after naming every damaged object); failures are thrown as MailarkErrors and mapped in one place.
 */
import type { Argv } from 'yargs';
import type { CommandContext } from './context.js';
import type { ExitCodeDocs } from './exit-codes.js';

/** The options every command accepts (declared once in main.ts). */
export interface GlobalOptions {
  repo?: string | undefined;
  passwordFile?: string | undefined;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  s3Endpoint?: string | undefined;
  s3PathStyle?: boolean | undefined;
  s3Region?: string | undefined;
  cacheDir?: string | undefined;
  /** false with --no-cache. */
  cache?: boolean | undefined;
}

/** 'message-id' → 'messageId', as yargs' camel-case expansion names options at run time. */
export type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;

/**
 * What a handler receives: its own options plus the global ones, under camelCase names only
 * (main.ts parses with strip-dashed, so `--message-id` arrives as `args.messageId`).
 */
export type CommandArgs<A> = {
  [K in keyof A as K extends string ? CamelCase<K> : K]: A[K];
} & GlobalOptions & {
    _: Array<string | number>;
  };

export type CommandHandler<A> = (
  args: CommandArgs<A>,
  ctx: CommandContext,
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing means exit 0.
) => Promise<number | undefined | void>;

export interface CommandSpec<A> {
  /** yargs command string, e.g. 'ls <snapshot>' or 'check'. */
  command: string;
  describe: string;
  /** Declares the command's own options and positionals. */
  builder?: (y: Argv<GlobalOptions>) => Argv<A>;
  /** Absent for a pure group such as `key`, whose subcommands do the work. */
  handler?: CommandHandler<A>;
  subcommands?: readonly MailarkCommand[];
  /** Changes to the default exit-code epilogue: a description to add or replace, null to drop a code. */
  exitCodes?: ExitCodeDocs;
  examples?: ReadonlyArray<readonly [command: string, description: string]>;
}

/** A command with its option types erased, as the command list holds it. */
export interface MailarkCommand {
  readonly command: string;
  readonly describe: string;
  readonly builder?: (y: Argv<GlobalOptions>) => Argv<unknown>;
  readonly handler?: CommandHandler<Record<string, unknown>>;
  readonly subcommands?: readonly MailarkCommand[];
  readonly exitCodes?: ExitCodeDocs;
  readonly examples?: ReadonlyArray<readonly [string, string]>;
}

/**
 * Types a command's handler arguments from its builder, then erases them for the command list.
 * The erasure is sound: main.ts calls each handler only with what that command's builder parsed.
 */
export function defineCommand<A>(spec: CommandSpec<A>): MailarkCommand {
  return spec as unknown as MailarkCommand;
}
