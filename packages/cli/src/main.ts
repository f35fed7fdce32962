/**
 * The mailark command line: parses argv with yargs, runs one command handler with its context, and
 * turns the outcome into an exit code in ONE place (core's exitCodeFor): 0 ok, 1 failure, 2 usage,
 * 3 partial, 10 no repository, 11 locked, 12 wrong password, 130 interrupted.
 *
 * runCli never touches process.*: it takes argv and an io object and returns the exit code, so tests
 * run the whole CLI in-process. main() wires it to the real process (argv, streams, env, signals).
 *
 * yargs only parses here: its command handlers merely record which command was chosen, and the
 * handler runs after parsing succeeded, so a usage error can never half-run a command.
 */
import { readFileSync } from 'node:fs';
import { EXIT, errorText, exitCodeFor, MailarkError } from '@mailark/core';
import yargs, { type Argv } from 'yargs';
import type { TextSink } from './cli-reporter.js';
import type { CommandArgs, GlobalOptions, MailarkCommand } from './command.js';
import { commands as defaultCommands } from './commands/index.js';
import { RunContext } from './context.js';
import { exitCodeEpilogue } from './exit-codes.js';
import { IMAP_PASSWORD } from './imap-options.js';
import { Output } from './output.js';
import { type Env, NEW_PASSWORD, type PasswordSources, REPOSITORY_PASSWORD } from './password.js';

export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  env: Env;
  /** Aborted on SIGINT/SIGTERM; commands stop and the CLI exits 130. */
  signal?: AbortSignal;
  /** The command list (tests may pass their own; defaults to commands/index.ts). */
  commands?: readonly MailarkCommand[];
  /** Clock for progress throttling (tests). */
  now?: () => number;
  /** Base for relative repository paths (default: process.cwd()). */
  cwd?: string;
  /** After an interrupt, how long the command may take to stop cleanly (default 10 s; tests). */
  interruptGraceMs?: number;
}

/** The version in packages/cli/package.json (one level above both src/ and dist/). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

interface Invocation {
  spec: MailarkCommand;
  path: string;
  args: CommandArgs<Record<string, unknown>>;
}

/** Runs mailark with these arguments (without the node and script paths); resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const early = scanArgv(argv);
  const earlyOutput = () =>
    new Output({
      json: early.json,
      quiet: early.quiet,
      verbose: false,
      stdout: io.stdout,
      stderr: io.stderr,
    });

  // Refuse a password on the command line before yargs sees it: yargs would echo the stray value
  // ("Unknown argument: hunter2") and argv is visible to every user of the machine anyway.
  if (early.passwordFlag !== undefined) {
    earlyOutput().error(
      'USAGE',
      `mailark never takes a password on the command line (${early.passwordFlag})`,
      passwordHint(early.passwordFlag),
    );
    return EXIT.USAGE;
  }

  const parsed = await parse(argv, io.commands ?? defaultCommands);
  if (parsed.kind === 'text') {
    earlyOutput().raw(parsed.text);
    return EXIT.OK;
  }
  if (parsed.kind === 'usage') {
    const topic = parsed.path === '' ? 'mailark --help' : `mailark ${parsed.path} --help`;
    earlyOutput().error('USAGE', parsed.message, `run "${topic}" for usage`);
    return EXIT.USAGE;
  }

  const { spec, path, args } = parsed.invocation;
  const output = new Output({
    json: args.json,
    quiet: args.quiet,
    verbose: args.verbose,
    stdout: io.stdout,
    stderr: io.stderr,
    ...(io.now === undefined ? {} : { now: io.now }),
  });
  const signal = io.signal ?? new AbortController().signal;
  const ctx = new RunContext({ args, output, env: io.env, signal, commandName: path, cwd: io.cwd });

  const work = (async () => {
    try {
      signal.throwIfAborted();
      return (await spec.handler!(args, ctx)) ?? EXIT.OK;
    } finally {
      await ctx.close();
    }
  })();
  const interrupt = interruption(signal, output, io.interruptGraceMs ?? INTERRUPT_GRACE_MS);
  let code: number;
  try {
    code = await Promise.race([work, interrupt.promise]);
  } catch (err) {
    return reportError(err, output, signal, ctx.secrets);
  } finally {
    interrupt.cancel();
  }
  output.progress.finish();
  return code;
}

/** How long a command may take to stop cleanly after SIGINT/SIGTERM before the CLI gives up on it. */
const INTERRUPT_GRACE_MS = 10_000;

/**
 * Rejects INTERRUPTED once the signal has been aborted for `graceMs`. Operations watch the signal and
 * stop cleanly (flush, release locks), but a store request hung on a dead network cannot be cancelled:
 * the CLI must not wait minutes for its timeouts. Whatever was stored stays valid (objects are written
 * whole, snapshots last), and a lock left behind by this process is stale as soon as it is gone.
 */
function interruption(
  signal: AbortSignal,
  output: Output,
  graceMs: number,
): { promise: Promise<never>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let onAbort = () => {};
  const promise = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      output.warn('interrupted: stopping cleanly (interrupt again to stop at once)');
      timer = setTimeout(() => {
        const reason: unknown = signal.reason;
        reject(
          reason instanceof MailarkError && reason.code === 'INTERRUPTED'
            ? reason
            : new MailarkError('INTERRUPTED', 'interrupted', { cause: reason }),
        );
      }, graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  const cancel = () => {
    signal.removeEventListener('abort', onAbort);
    if (timer !== undefined) clearTimeout(timer);
  };
  return { promise, cancel };
}

/** Prints an error (scrubbed of secrets) and returns its exit code. */
function reportError(err: unknown, output: Output, signal: AbortSignal, secrets: readonly string[]): number {
  let e: MailarkError;
  if (err instanceof MailarkError) e = err;
  else if (signal.aborted) e = new MailarkError('INTERRUPTED', 'interrupted', { cause: err });
  else e = new MailarkError('INTERNAL', errorText(err), { cause: err, hint: BUG_HINT });
  if (signal.aborted && e.code !== 'INTERRUPTED' && isAbort(err)) {
    e = new MailarkError('INTERRUPTED', 'interrupted', { cause: err });
  }
  // Only secrets long enough not to mangle ordinary words (a 1-letter test password would).
  const scrub = (s: string) =>
    secrets.filter((x) => x.length >= 6).reduce((acc, secret) => acc.split(secret).join('***'), s);
  output.error(e.code, scrub(e.message), e.hint === undefined ? undefined : scrub(e.hint));
  if (output.verbose && !output.json && err instanceof Error && err.stack !== undefined) {
    output.diagnostic(scrub(err.stack));
  }
  return exitCodeFor(e);
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/** Where each password really comes from, by the flag someone tried to pass it with. */
const PASSWORD_FLAGS: Readonly<Record<string, PasswordSources>> = {
  '--password': REPOSITORY_PASSWORD,
  '--imap-password': IMAP_PASSWORD,
  '--new-password': NEW_PASSWORD,
};

function passwordHint(flag: string): string {
  const p = PASSWORD_FLAGS[flag] ?? REPOSITORY_PASSWORD;
  return (
    `put the ${p.what} in a file readable only by you and pass ${p.fileOption} FILE or set ` +
    `${p.fileVar} (or set ${p.valueVar})`
  );
}
const BUG_HINT =
  'this is a bug in mailark: please report it, with the output of the same command run with --verbose';

type Parsed =
  | { kind: 'run'; invocation: Invocation }
  | { kind: 'text'; text: string }
  | { kind: 'usage'; message: string; path: string };

async function parse(argv: readonly string[], commands: readonly MailarkCommand[]): Promise<Parsed> {
  let invocation: Invocation | undefined;
  let failure: string | undefined;
  let text = '';

  const record = (spec: MailarkCommand, path: string) => (args: unknown) => {
    invocation = { spec, path, args: args as Invocation['args'] };
  };
  const register = (y: Argv<GlobalOptions>, spec: MailarkCommand, parent: string): Argv<GlobalOptions> => {
    const path = parent === '' ? verb(spec) : `${parent} ${verb(spec)}`;
    return y.command(
      spec.command,
      spec.describe,
      (sub) => {
        // Opening the default group here makes --help list the command's own options before the
        // global ones (yargs orders a command's groups before those inherited from the top level).
        const own = valuesRequired(
          (sub as Argv<GlobalOptions>).group([], 'Positionals:').group([], 'Options:'),
        );
        let b = (spec.builder?.(own) ?? own) as Argv<GlobalOptions>;
        for (const child of spec.subcommands ?? []) b = register(b, child, path);
        if (spec.handler === undefined) b = b.demandCommand(1, `"mailark ${path}" needs a subcommand`);
        for (const [cmd, desc] of spec.examples ?? []) b = b.example(cmd, desc);
        return b.epilogue(exitCodeEpilogue(spec.exitCodes));
      },
      spec.handler === undefined ? () => {} : record(spec, path),
    );
  };

  let y = globalOptions(yargs())
    .scriptName('mailark')
    .usage('mailark <command> [options]\n\nIncremental, encrypted, deduplicated backups of IMAP mailboxes.')
    .version(VERSION)
    .help()
    .strict()
    .exitProcess(false)
    .wrap(100)
    .parserConfiguration({ 'strip-aliased': true, 'strip-dashed': true })
    .demandCommand(1, 'no command given')
    .check(numbersAreNumbers, true)
    .epilogue(exitCodeEpilogue())
    .fail((msg, err) => {
      failure ??= msg ?? errorText(err);
    });
  for (const spec of commands) y = register(y, spec, '');
  skipHelpCache(y);

  await y.parseAsync([...argv], {}, (_err, _args, out) => {
    text = out;
  });
  if (failure !== undefined) {
    return { kind: 'usage', message: asTyped(failure, argv), path: commandPath(argv, commands) };
  }
  if (invocation !== undefined) return { kind: 'run', invocation };
  if (text !== '') return { kind: 'text', text };
  return { kind: 'usage', message: 'no command given', path: '' };
}

/**
 * yargs renders the chosen command's whole help text after its handler ran, only to have it ready
 * should an async handler fail (ours only record the choice and cannot): ~100-200 ms of CPU at every
 * start, mostly in string-width. Help that is asked for (--help, usage errors) is rendered as before.
 */
function skipHelpCache(y: Argv<GlobalOptions>): void {
  const internals = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => unknown } })
    .getInternalMethods?.()
    .getUsageInstance?.() as { cacheHelpMessage?: () => void } | undefined;
  // A later yargs without these internals just keeps its default behaviour.
  if (typeof internals?.cacheHelpMessage === 'function') internals.cacheHelpMessage = () => {};
}

/**
 * Every option that takes a value requires one: `find --limit` or `backup --concurrency` with the value
 * missing is a usage error (exit 2), never silently ignored (yargs' default is to drop it). Patches the
 * instance's option() so each command's builder gets this without repeating `requiresArg` everywhere.
 */
function valuesRequired<T>(y: Argv<T>): Argv<T> {
  const option = y.option.bind(y) as (key: string, opt?: Record<string, unknown>) => Argv<T>;
  (y as unknown as { option: typeof option }).option = (key, opt) =>
    option(
      key,
      opt !== undefined && opt.type !== 'boolean' && opt.type !== 'count' && opt.requiresArg === undefined
        ? { ...opt, requiresArg: true }
        : opt,
    );
  return y;
}

function globalOptions(y: Argv): Argv<GlobalOptions> {
  return valuesRequired(y)
    .option('repo', {
      alias: 'r',
      type: 'string',
      describe: 'repository location: a directory or s3://bucket/prefix (env MAILARK_REPOSITORY)',
    })
    .option('password-file', {
      type: 'string',
      describe: 'file holding the repository password (env MAILARK_PASSWORD_FILE; or MAILARK_PASSWORD)',
    })
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'print the result as one JSON document on stdout; events as JSON lines on stderr',
    })
    .option('quiet', {
      alias: 'q',
      type: 'boolean',
      default: false,
      describe: 'no status or progress output',
    })
    .option('verbose', {
      alias: 'v',
      type: 'boolean',
      default: false,
      describe: 'debug messages, and stack traces on errors',
    })
    .option('s3-endpoint', {
      type: 'string',
      describe: 'S3-compatible endpoint URL (env MAILARK_S3_ENDPOINT; AWS when unset)',
    })
    .option('s3-path-style', {
      type: 'boolean',
      describe: 'path-style S3 addressing (env MAILARK_S3_PATH_STYLE)',
    })
    .option('s3-region', { type: 'string', describe: 'S3 region (env MAILARK_S3_REGION)' })
    .option('cache-dir', {
      type: 'string',
      describe: 'local cache directory (env MAILARK_CACHE_DIR; default ~/.cache/mailark)',
    })
    .option('cache', {
      type: 'boolean',
      default: true,
      describe: 'keep index and snapshot objects in a local cache (--no-cache: read all from the store)',
    })
    .group(
      ['repo', 'password-file', 's3-endpoint', 's3-path-style', 's3-region', 'cache-dir', 'cache'],
      'Repository options:',
    )
    .group(
      ['json', 'quiet', 'verbose', 'help', 'version'],
      'Output options:',
    ) as unknown as Argv<GlobalOptions>;
}

/** yargs turns `--pack-size abc` into NaN silently; make it a usage error naming the option. */
function numbersAreNumbers(args: Record<string, unknown>): true {
  for (const [key, value] of Object.entries(args)) {
    if (typeof value === 'number' && Number.isNaN(value)) {
      const option = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      throw new Error(`--${option} needs a number`);
    }
  }
  return true;
}

/** The first word of a command string: 'ls <snapshot>' → 'ls'. */
function verb(spec: MailarkCommand): string {
  return spec.command.split(' ')[0] ?? spec.command;
}

/** The known command words at the start of argv, for a usage hint: ['key', 'add', '--x'] → 'key add'. */
function commandPath(argv: readonly string[], commands: readonly MailarkCommand[]): string {
  const words: string[] = [];
  let level: readonly MailarkCommand[] = commands;
  for (const arg of argv) {
    const spec = level.find((c) => verb(c) === arg);
    if (spec === undefined) break;
    words.push(arg);
    level = spec.subcommands ?? [];
  }
  return words.join(' ');
}

/**
 * Flags main needs before yargs runs: output mode for usage errors, and a forbidden password flag
 * (--password, --imap-password, --new-password, any --*-password), returned without its value.
 */
function scanArgv(argv: readonly string[]): {
  json: boolean;
  quiet: boolean;
  passwordFlag: string | undefined;
} {
  const end = argv.indexOf('--');
  const opts = end === -1 ? argv : argv.slice(0, end);
  const passwordFlag = opts
    .map((a) => a.split('=')[0] as string)
    .find((name) => /^--([a-z0-9]+-)*password$/.test(name));
  return {
    json: opts.includes('--json'),
    quiet: opts.includes('--quiet') || opts.includes('-q'),
    passwordFlag,
  };
}

/**
 * yargs names unknown options in camelCase ('strip-dashed'): "Unknown argument: imapPasword". Name
 * each as it was typed ("--imap-pasword") so the user recognises the typo.
 */
function asTyped(message: string, argv: readonly string[]): string {
  const m = /^(Unknown arguments?: )(.+)$/.exec(message);
  if (m === null) return message;
  const typed = argv.map((a) => a.split('=')[0] as string);
  const names = (m[2] as string).split(', ').map((name) => {
    const dashed = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    // yargs reads --no-x as the negation of x.
    const spellings = [`--${dashed}`, `--no-${dashed}`, `--${name}`, `-${name}`];
    return typed.find((t) => spellings.includes(t)) ?? name;
  });
  return `${m[1]}${names.join(', ')}`;
}

/**
 * The AWS SDK warns on every run under Node 20 that its releases after January 2027 need Node 22:
 * true, but noise in every cron mail. Its own switch turns it off (set it to "false" to see it).
 */
function quietNodeVersionNotice(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/** The process entry point (bin/mailark.js): real argv, streams, environment and signals. */
export async function main(): Promise<void> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (name: NodeJS.Signals) => {
    // First signal: stop cleanly (flush packs, release locks). Second: the user means it.
    if (++signals > 1) process.exit(EXIT.INTERRUPTED);
    controller.abort(new MailarkError('INTERRUPTED', `interrupted by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  quietNodeVersionNotice();
  const code = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
  });
  // Exit explicitly (idle sockets must not keep a finished command alive), after stdout drained.
  process.stdout.write('', () => process.exit(code));
}
