import { describe, expect, it } from 'vitest';
import { CliReporter, progressText, type ReporterMode } from './cli-reporter.js';

function reporter(mode: ReporterMode, opts: { quiet?: boolean; verbose?: boolean } = {}) {
  let text = '';
  let now = 0;
  const r = new CliReporter({
    mode,
    quiet: opts.quiet ?? false,
    verbose: opts.verbose ?? false,
    stderr: { write: (s: string) => (text += s), columns: 60 },
    now: () => now,
  });
  return { r, text: () => text, advance: (ms: number) => (now += ms) };
}

describe('CliReporter', () => {
  it('plain: silent for operations shorter than 10 s, then a line every 10 s and the final one', () => {
    const short = reporter('plain');
    for (let i = 0; i <= 5; i++) {
      short.r.progress({ phase: 'check packs', done: i, total: 5 });
      short.advance(1000);
    }
    expect(short.text()).toBe('');

    const long = reporter('plain');
    for (let i = 0; i <= 25; i++) {
      long.r.progress({ phase: 'backup', done: i, total: 25 });
      long.advance(1000);
    }
    expect(long.text()).toBe('backup 10/25 (40%)\nbackup 20/25 (80%)\nbackup 25/25 (100%)\n');
  });

  it('tty: one live line redrawn in place, cleared around log lines and at the end', () => {
    const t = reporter('tty');
    t.r.progress({ phase: 'backup', done: 1, total: 4, current: 'alice@example.test' });
    t.r.progress({ phase: 'backup', done: 2, total: 4 }); // within 100 ms: dropped
    t.r.log('warn', 'mailbox bob failed');
    t.advance(200);
    t.r.progress({ phase: 'backup', done: 3, total: 4 });
    t.r.finish();
    expect(t.text()).toBe(
      '\r\x1b[2Kbackup 1/4 (25%) · alice@example.test' +
        '\r\x1b[2Kwarning: mailbox bob failed\nbackup 1/4 (25%) · alice@example.test' +
        '\r\x1b[2Kbackup 3/4 (75%)' +
        '\r\x1b[2K',
    );
  });

  it('json: events as JSON lines; --quiet keeps warnings only; debug needs --verbose', () => {
    const j = reporter('json');
    j.r.log('info', 'started', { user: 'alice' });
    j.r.progress({ phase: 'check', done: 1, total: 2 });
    const lines = j
      .text()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { type: 'log', level: 'info', message: 'started', user: 'alice' },
      { type: 'progress', phase: 'check', done: 1, total: 2 },
    ]);
    const q = reporter('plain', { quiet: true });
    q.r.log('info', 'hidden');
    q.r.log('debug', 'hidden');
    q.r.log('warn', 'shown');
    q.r.log('error', 'shown too');
    expect(q.text()).toBe('warning: shown\nerror: shown too\n');
    const v = reporter('plain', { verbose: true });
    v.r.log('debug', 'detail', { n: 1 });
    expect(v.text()).toBe('detail n=1\n');
  });

  it('formats progress with counts, bytes and the current item', () => {
    expect(
      progressText({
        phase: 'export',
        done: 1200,
        total: 4800,
        messages: 1200,
        bytes: 1536,
        totalBytes: 3 * 1024 * 1024,
        current: 'INBOX',
      }),
    ).toBe('export 1,200/4,800 (25%) · 1,200 messages · 1.50 KiB/3.00 MiB · INBOX');
  });

  it('formats backup progress with messages of the expected, bytes new and stored', () => {
    expect(
      progressText({
        phase: 'backup',
        done: 1,
        total: 4,
        messages: 1200,
        totalMessages: 4800,
        bytes: 45 * 1024 * 1024,
        storedBytes: 12 * 1024 * 1024,
        current: 'ETA 2m10s · alice@example.com',
      }),
    ).toBe(
      'backup 1/4 · 1,200/4,800 messages · 45.0 MiB new, 12.0 MiB stored · ETA 2m10s · alice@example.com',
    );
  });
});
