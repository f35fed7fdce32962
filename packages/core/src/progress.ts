/**
 * How core talks to people: it never prints. Operations take a Reporter; the CLI's knows --quiet and
 * --json, the agent's writes structured logs. Progress updates come often; front ends throttle them.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface ProgressState {
  /** What is going on: 'backup', 'restore', 'export', 'check', 'prune' ... */
  phase: string;
  /** Units done and expected (mailboxes for backup, messages for restore/export, objects for check). */
  done: number;
  total?: number;
  messages?: number;
  bytes?: number;
  totalBytes?: number;
  /** Bytes written to the repository (after dedup, compression, encryption): backup's real cost. */
  storedBytes?: number;
  /** Messages expected in all, an estimate that may grow (backup: new mail of the mailboxes started). */
  totalMessages?: number;
  /** Free-form current item, e.g. the mailbox being processed. */
  current?: string;
}

export interface Reporter {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  progress(state: ProgressState): void;
}

export const silentReporter: Reporter = {
  log() {},
  progress() {},
};

/** A Reporter that remembers everything, for tests. */
export class RecordingReporter implements Reporter {
  readonly logs: Array<{ level: LogLevel; message: string; fields?: Record<string, unknown> }> = [];
  readonly states: ProgressState[] = [];
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    this.logs.push(fields === undefined ? { level, message } : { level, message, fields });
  }
  progress(state: ProgressState): void {
    this.states.push(state);
  }
}
