/**
 * The agent's logs: pino JSON lines on stdout (journald and container runtimes collect them), one
 * object per event with `tenant`, `job`, `mailbox`, durations and counts as fields, never secrets.
 * PinoReporter adapts core's Reporter to a pino logger, so core's own log lines (backup per mailbox,
 * stale locks ignored; the prune plan at debug level) land in the same stream with the job's fields attached. Progress
 * updates are frequent: they are logged at debug level, at most one per 10 s per job.
 */
import type { LogLevel, ProgressState, Reporter } from '@mailark/core';
import { type DestinationStream, type Logger, pino } from 'pino';

export type AgentLogger = Logger;

export function createLogger(level: LogLevel, destination?: DestinationStream): AgentLogger {
  const options = {
    level,
    base: { app: 'mailark-agent' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"error" rather than 50: readable in journalctl and by log shippers without a mapping.
    formatters: { level: (label: string) => ({ level: label }) },
    // Belt and braces: nothing that looks like a secret is ever printed, even if a caller slips.
    redact: { paths: ['password', '*.password', 'secret', '*.secret'], censor: '[redacted]' },
  };
  // stdout written synchronously: pino's default (asynchronous sonic-boom) let process.exit at
  // shutdown flush a later line ('mailark-agent stopped') before an earlier one still being written
  // ('job finished'), and can lose lines in flight. The agent logs a few lines per mailbox: cheap.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}

const PROGRESS_EVERY_MS = 10_000;

export class PinoReporter implements Reporter {
  private lastProgress = 0;

  constructor(
    private readonly logger: AgentLogger,
    private readonly now: () => number = Date.now,
  ) {}

  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (fields === undefined) this.logger[level](message);
    else this.logger[level](fields, message);
  }

  progress(state: ProgressState): void {
    const t = this.now();
    if (t - this.lastProgress < PROGRESS_EVERY_MS) return;
    this.lastProgress = t;
    this.logger.debug(
      { progress: state },
      `${state.phase}: ${state.done}${state.total === undefined ? '' : `/${state.total}`}`,
    );
  }
}
