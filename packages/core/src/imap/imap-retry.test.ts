import { describe, expect, it } from 'vitest';
import { isMailarkError, MailarkError } from '../errors.js';
import { RecordingReporter } from '../progress.js';
import { retryDelay, withRetry } from './imap-retry.js';

const transient = () => new MailarkError('IMAP_CONNECT', 'lost', { details: { transient: true } });

describe('withRetry', () => {
  it('retries transient failures with back-off and returns the first success', async () => {
    const reporter = new RecordingReporter();
    let calls = 0;
    const out = await withRetry(
      async () => {
        calls++;
        if (calls < 3) throw transient();
        return 'ok';
      },
      { baseDelayMs: 1, reporter, label: 'list INBOX' },
    );
    expect(out).toBe('ok');
    expect(calls).toBe(3);
    expect(reporter.logs.filter((l) => l.level === 'warn').map((l) => l.message)).toHaveLength(2);
    expect(reporter.logs[0]?.message).toMatch(/^list INBOX: lost; retrying in \d+ ms$/);
  });

  it('never retries an authentication error', async () => {
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw new MailarkError('IMAP_AUTH', 'refused');
      },
      { baseDelayMs: 1 },
    ).catch((e: unknown) => e);
    expect(isMailarkError(err, 'IMAP_AUTH')).toBe(true);
    expect(calls).toBe(1);
  });

  it('gives up after the last attempt with the last error', async () => {
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw transient();
      },
      { attempts: 3, baseDelayMs: 1 },
    ).catch((e: unknown) => e);
    expect(isMailarkError(err, 'IMAP_CONNECT')).toBe(true);
    expect(calls).toBe(3);
  });

  it('stops waiting when aborted', async () => {
    const ac = new AbortController();
    const p = withRetry(
      async () => {
        setTimeout(() => ac.abort(), 5);
        throw transient();
      },
      { baseDelayMs: 10_000, signal: ac.signal },
    ).catch((e: unknown) => e);
    expect(isMailarkError(await p, 'INTERRUPTED')).toBe(true);
  });
});

describe('retryDelay', () => {
  it('doubles from the base, jitters ±25% and caps', () => {
    expect(retryDelay(1, 500, 15_000, 0.5)).toBe(500);
    expect(retryDelay(3, 500, 15_000, 0.5)).toBe(2000);
    expect(retryDelay(1, 500, 15_000, 0)).toBe(375);
    expect(retryDelay(1, 500, 15_000, 0.999)).toBeLessThanOrEqual(625);
    expect(retryDelay(10, 500, 15_000, 0.5)).toBe(15_000);
  });
});
