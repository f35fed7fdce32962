/**
 * The CLI's Reporter: how core's log messages and progress reach a person or a script, on stderr
 * (stdout carries only results, so `mailark ls ... --json | jq` always works).
 *
 * - tty: log lines as text, progress as one live line redrawn in place at most 10 times a second;
 * - plain (stderr is a pipe or file, e.g. cron): log lines as text, a progress line every 10 s at most,
 *   starting 10 s into the operation (short operations print none);
 * - json (--json): one JSON object per line, `{"type":"log",...}` or `{"type":"progress",...}`,
 *   progress at most once a second.
 * --quiet drops info and progress (warnings and errors stay); debug lines need --verbose.
 */
import type { LogLevel, ProgressState, Reporter } from '@mailark/core';
import { formatBytes, formatCount } from './text-format.js';

export interface TextSink {
  write(chunk: string): unknown;
  isTTY?: boolean | undefined;
  columns?: number | undefined;
}

export type ReporterMode = 'tty' | 'plain' | 'json';

export interface CliReporterOptions {
  mode: ReporterMode;
  quiet: boolean;
  verbose: boolean;
  stderr: TextSink;
  /** Clock for throttling (tests pass a fake). */
  now?: () => number;
}

const INTERVAL_MS: Record<ReporterMode, number> = { tty: 100, plain: 10_000, json: 1_000 };
const CLEAR_LINE = '\r\x1b[2K';

export class CliReporter implements Reporter {
  private readonly opts: CliReporterOptions;
  private readonly now: () => number;
  private lastProgressAt = Number.NEGATIVE_INFINITY;
  /** plain mode: whether a progress line was printed yet (a final one only follows earlier ones). */
  private printedPlain = false;
  /** The live line currently drawn (tty mode), so log lines can clear and redraw it. */
  private live = '';

  constructor(opts: CliReporterOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (level === 'debug' && !this.opts.verbose) return;
    if (level === 'info' && this.opts.quiet) return;
    if (this.opts.mode === 'json') {
      this.opts.stderr.write(`${JSON.stringify({ type: 'log', level, message, ...fields })}\n`);
      return;
    }
    const prefix = level === 'warn' ? 'warning: ' : level === 'error' ? 'error: ' : '';
    const extra = this.opts.verbose && fields !== undefined ? ` ${formatFields(fields)}` : '';
    this.withLiveLineCleared(() => this.opts.stderr.write(`${prefix}${message}${extra}\n`));
  }

  progress(state: ProgressState): void {
    if (this.opts.quiet) return;
    const t = this.now();
    const final = state.total !== undefined && state.done >= state.total;
    if (this.opts.mode === 'plain' && !this.printedPlain) {
      // In logs, an operation that ends within one interval prints no progress at all.
      if (this.lastProgressAt === Number.NEGATIVE_INFINITY) this.lastProgressAt = t;
      if (t - this.lastProgressAt < INTERVAL_MS.plain) return;
      this.printedPlain = true;
    } else if (!final && t - this.lastProgressAt < INTERVAL_MS[this.opts.mode]) {
      return;
    }
    this.lastProgressAt = t;
    if (this.opts.mode === 'json') {
      this.opts.stderr.write(`${JSON.stringify({ type: 'progress', ...state })}\n`);
    } else if (this.opts.mode === 'plain') {
      this.opts.stderr.write(`${progressText(state)}\n`);
    } else {
      const cols = this.opts.stderr.columns ?? 80;
      this.live = truncate(progressText(state), Math.max(20, cols - 1));
      this.opts.stderr.write(CLEAR_LINE + this.live);
    }
  }

  /** Erases the live line before the command's own output or the final error. */
  finish(): void {
    if (this.live !== '') this.opts.stderr.write(CLEAR_LINE);
    this.live = '';
  }

  private withLiveLineCleared(write: () => void): void {
    if (this.live === '') {
      write();
      return;
    }
    this.opts.stderr.write(CLEAR_LINE);
    write();
    this.opts.stderr.write(this.live);
  }
}

/**
 * "export 3/10 (30%) · 1,234 messages · 45.6 MiB/120 MiB · INBOX";
 * backup: "backup 1/4 · 1,200/4,800 messages · 45.6 MiB new, 12.0 MiB stored · ETA 2m10s · …"
 * (most telling first: a narrow terminal cuts the end).
 */
export function progressText(s: ProgressState): string {
  const parts: string[] = [];
  // With a message estimate, the messages part shows how far along it is; the unit count stays bare.
  const pct =
    s.total !== undefined && s.total > 0 && s.totalMessages === undefined
      ? ` (${Math.floor((100 * s.done) / s.total)}%)`
      : '';
  parts.push(
    `${s.phase} ${formatCount(s.done)}${s.total !== undefined ? `/${formatCount(s.total)}` : ''}${pct}`,
  );
  if (s.messages !== undefined) {
    const of = s.totalMessages !== undefined ? `/${formatCount(Math.max(s.totalMessages, s.messages))}` : '';
    parts.push(`${formatCount(s.messages)}${of} messages`);
  }
  if (s.bytes !== undefined && s.storedBytes !== undefined) {
    parts.push(`${formatBytes(s.bytes)} new, ${formatBytes(s.storedBytes)} stored`);
  } else if (s.bytes !== undefined) {
    parts.push(formatBytes(s.bytes) + (s.totalBytes !== undefined ? `/${formatBytes(s.totalBytes)}` : ''));
  }
  if (s.current !== undefined && s.current !== '') parts.push(s.current);
  return parts.join(' · ');
}

function formatFields(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

function truncate(s: string, max: number): string {
  const cps = [...s];
  return cps.length <= max ? s : `${cps.slice(0, max - 1).join('')}…`;
}
