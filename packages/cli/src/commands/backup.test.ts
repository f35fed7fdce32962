/**
 * `mailark backup` output, in-process, on a local temp-dir repository: what a person sees when the
 * IMAP server cannot be reached (one error line and one hint, exit 1), and the --json document.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDirStore, type ProgressState, Repository, TEST_KDF } from '@mailark/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../testing/capture.js';
import { withRateAndEta } from './backup.js';

const PASSWORD = 'correct horse battery staple';
let dir: string;
let repoDir: string;
let env: Record<string, string>;

/** A local port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((ok) => srv.close(() => ok()));
  return port;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailark-backup-cli-'));
  repoDir = join(dir, 'repo');
  await writeFile(join(dir, 'pw'), `${PASSWORD}\n`);
  await writeFile(join(dir, 'imap-pw'), 'admin-secret\n');
  env = {
    MAILARK_PASSWORD_FILE: join(dir, 'pw'),
    MAILARK_IMAP_PASSWORD_FILE: join(dir, 'imap-pw'),
    MAILARK_TEST_KDF: 'fast',
  };
  await (await Repository.init(new LocalDirStore(repoDir), PASSWORD, { kdf: TEST_KDF })).close();
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('mailark backup against an unreachable IMAP server', () => {
  it('shows the error once with its hint, for all mailboxes together, and exits 1', async () => {
    const port = await closedPort();
    const argv = ['-r', repoDir, 'backup', '--imap', `imap://127.0.0.1:${port}`, '--imap-user', 'admin'];
    // Both at once: each waits out the retries (2 s, then 4 s) before giving up.
    const [r, j] = await Promise.all([
      run([...argv, '--users', 'a@t.example,b@t.example'], { env }),
      run([...argv, '--users', 'a@t.example', '--json'], { env }),
    ]);
    expect(r.code, r.stderr).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.includes('cannot connect'));
    expect(errors).toEqual([
      `error: cannot connect to imap://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port} (2 mailboxes: a@t.example, b@t.example)`,
    ]);
    expect(r.stderr.match(/^hint: /gm)).toEqual(['hint: ']);
    expect(r.stderr).toContain('hint: check the host name and port');
    expect(r.stdout).toContain('no snapshot saved');
    expect(r.stdout).not.toContain('ECONNREFUSED'); // the table names the code only
    expect(r.stderr).not.toContain('admin-secret');

    expect(j.code).toBe(1);
    const doc = JSON.parse(j.stdout) as { status: string; mailboxes: Array<{ error: unknown }> };
    expect(doc.status).toBe('failed');
    expect(doc.mailboxes[0]?.error).toEqual({
      code: 'IMAP_CONNECT',
      message: `cannot connect to imap://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
      hint: expect.stringContaining('check the host name and port'),
    });
  }, 30_000);
});

describe('backup progress line', () => {
  function line(
    concurrency: number,
    elapsedMs: number,
    state: Omit<ProgressState, 'phase'>,
  ): string | undefined {
    let t = 0;
    const got: ProgressState[] = [];
    const r = withRateAndEta({ log() {}, progress: (p) => got.push(p) }, concurrency, () => t);
    t = elapsedMs;
    r.progress({ phase: 'backup', ...state });
    return got[0]?.current;
  }

  it('estimates from messages while every remaining mailbox is in flight', () => {
    // 1 mailbox, 100 of 400 messages in 10 s: 30 s to go.
    const one = { done: 0, total: 1, messages: 100, totalMessages: 400, bytes: 10 * 1024 * 1024 };
    expect(line(4, 10_000, { ...one, current: 'a@t.example' })).toBe('ETA 30s · 1.00 MiB/s · a@t.example');
  });

  it('estimates from mailboxes done when more wait than run', () => {
    // 2 of 10 mailboxes in 60 s, 4 at a time: 8 left, 4 min.
    const many = { done: 2, total: 10, messages: 50, totalMessages: 60, bytes: 0 };
    expect(line(4, 60_000, many)).toBe('ETA 4m00s · 0 B/s');
    // Nothing done and nothing fetched yet: no guess.
    expect(line(4, 1_000, { done: 0, total: 10, messages: 0, totalMessages: 60, bytes: 0 })).toBe('0 B/s');
  });
});
