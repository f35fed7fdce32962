/**
 * What a command prints. Results go to stdout, everything else (status, progress, warnings, errors in
 * human mode) to stderr, so a script can always consume stdout.
 *
 * Human mode: a command writes its result with line()/table(). --json: the same command calls
 * result(value) exactly once, and stdout holds that one JSON document and nothing else (line() and
 * table() are no-ops); events go to stderr as JSON lines (see CliReporter). --quiet silences status
 * and progress, never results.
 */
import { MailarkError } from '@mailark/core';
import { CliReporter, type TextSink } from './cli-reporter.js';
import { type Column, formatTable } from './text-format.js';

export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  stdout: TextSink;
  stderr: TextSink;
  now?: () => number;
}

/** The fixed shape of an error on stdout with --json. */
export interface JsonError {
  error: { code: string; message: string; hint: string | null };
}

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  /** The Reporter to hand to core operations. */
  readonly progress: CliReporter;
  private readonly stdout: TextSink;
  private readonly stderr: TextSink;
  private resultWritten = false;

  constructor(opts: OutputOptions) {
    this.json = opts.json;
    this.quiet = opts.quiet;
    this.verbose = opts.verbose;
    this.stdout = opts.stdout;
    this.stderr = opts.stderr;
    const mode = opts.json ? 'json' : opts.stderr.isTTY === true ? 'tty' : 'plain';
    this.progress = new CliReporter({
      mode,
      quiet: opts.quiet,
      verbose: opts.verbose,
      stderr: opts.stderr,
      ...(opts.now === undefined ? {} : { now: opts.now }),
    });
  }

  /** A line of human-readable result on stdout; nothing with --json. */
  line(text = ''): void {
    if (this.json) return;
    this.progress.finish();
    this.stdout.write(`${text}\n`);
  }

  /** An aligned table on stdout; nothing with --json. */
  table(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): void {
    if (this.json) return;
    for (const l of formatTable(columns, rows)) this.line(l);
  }

  /** The command's one JSON document on stdout with --json; nothing in human mode. */
  result(value: unknown): void {
    if (!this.json) return;
    if (this.resultWritten) throw new MailarkError('INTERNAL', 'a command wrote two --json results');
    this.resultWritten = true;
    this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A status message on stderr (not a result): dropped by --quiet; a JSON log line with --json. */
  info(text: string): void {
    this.progress.log('info', text);
  }

  /** A warning on stderr, shown even with --quiet. */
  warn(text: string): void {
    this.progress.log('warn', text);
  }

  /** The final error: `mailark: …` and `hint: …` on stderr, or the fixed JSON shape on stdout. */
  error(code: string, message: string, hint: string | undefined): void {
    this.progress.finish();
    if (this.json) {
      const doc: JsonError = { error: { code, message, hint: hint ?? null } };
      this.stdout.write(`${JSON.stringify(doc)}\n`);
      return;
    }
    this.stderr.write(`mailark: ${message}\n`);
    if (hint !== undefined && hint !== '') this.stderr.write(`hint: ${hint}\n`);
  }

  /** Raw text on stderr (yargs help on a usage error, stack traces with --verbose). */
  diagnostic(text: string): void {
    this.progress.finish();
    this.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Raw text on stdout (--help, --version). */
  raw(text: string): void {
    this.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}
