/**
 * Retry with exponential back-off for what the network may cure: a lost connection, BYE, throttling,
 * [UNAVAILABLE] (isTransientImapError). Authentication and protocol refusals are thrown at once:
 * retrying a wrong password only gets accounts locked.
 */
import { MailarkError } from '../errors.js';
import type { Reporter } from '../progress.js';
import { isTransientImapError } from './imap-errors.js';

export interface RetryOptions {
  /** Total attempts including the first (default 4). */
  attempts?: number;
  /** First delay (default 500 ms); doubles each time, with ±25% jitter. */
  baseDelayMs?: number;
  /** Cap of one delay (default 15 s). */
  maxDelayMs?: number;
  signal?: AbortSignal;
  reporter?: Reporter;
  /** What is retried, for the log line: "listMessages INBOX". */
  label?: string;
  /** Which errors to retry (default isTransientImapError). */
  retryable?: (err: unknown) => boolean;
}

/** Runs fn until it succeeds, fails with a non-retryable error, or the attempts are used up. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 4);
  const retryable = opts.retryable ?? isTransientImapError;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(opts.signal);
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !retryable(err) || opts.signal?.aborted) throw err;
      const delay = retryDelay(attempt, opts.baseDelayMs ?? 500, opts.maxDelayMs ?? 15_000, Math.random());
      opts.reporter?.log('warn', `${opts.label ?? 'IMAP'}: ${errMessage(err)}; retrying in ${delay} ms`, {
        attempt,
        of: attempts,
      });
      await sleep(delay, opts.signal);
    }
  }
}

/** Delay before retry number `attempt` (1-based): base·2^(attempt-1), ±25% by `random` ∈ [0,1), capped. */
export function retryDelay(attempt: number, baseMs: number, maxMs: number, random: number): number {
  const raw = baseMs * 2 ** (attempt - 1);
  const jittered = raw * (0.75 + random * 0.5);
  return Math.round(Math.min(maxMs, jittered));
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new MailarkError('INTERRUPTED', 'interrupted', { hint: 'run the command again to continue' });
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new MailarkError('INTERRUPTED', 'interrupted', { hint: 'run the command again to continue' }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
