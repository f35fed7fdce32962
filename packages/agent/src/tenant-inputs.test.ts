import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMailarkError } from '@mailark/core';
import { describe, expect, it } from 'vitest';
import type { TenantConfig } from './agent-config.js';
import { Scheduler, scheduleEntries } from './scheduler.js';
import { readSecretFile, readTenantUsers } from './tenant-inputs.js';

const dir = mkdtempSync(join(tmpdir(), 'mailark-inputs-'));

function tenant(over: Partial<TenantConfig>): TenantConfig {
  return {
    name: 't.test',
    repository: '/srv/t',
    passwordFile: '/x',
    s3: {},
    imap: { url: 'imap://127.0.0.1:143', auth: 'authzid', adminUser: 'admin' },
    concurrency: 4,
    tags: [],
    schedule: { backup: '0 2 * * *', light: null, check: '0 5 * * *', prune: null },
    retention: undefined,
    checkReadDataSubset: 5,
    pruneMaxUnused: '5%',
    ...over,
  };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('tenant inputs', () => {
  it('reads a secret without its trailing newline; an empty or missing file is a CONFIG error naming it', async () => {
    writeFileSync(join(dir, 's1'), 'p@ss word\n');
    writeFileSync(join(dir, 's2'), '\n');
    expect(await readSecretFile(join(dir, 's1'), 'test')).toBe('p@ss word');
    const empty = await rejection(readSecretFile(join(dir, 's2'), 'repository password'));
    expect(isMailarkError(empty, 'CONFIG')).toBe(true);
    expect(empty.message).toBe(`the repository password file ${join(dir, 's2')} is empty`);
    const missing = await rejection(readSecretFile(join(dir, 'nope'), 'repository password'));
    expect(missing.message).toContain('ENOENT');
  });

  it('reads a users file: comments, blank lines, per-user password files relative to it', async () => {
    writeFileSync(join(dir, 'alice.pw'), 'alice-secret\n');
    writeFileSync(
      join(dir, 'users'),
      '# mailboxes\nalice@t.test, alice.pw   # her own login\n\n  bob@t.test\n',
    );
    expect(await readTenantUsers(tenant({ usersFile: join(dir, 'users') }))).toEqual([
      { user: 'alice@t.test', password: 'alice-secret' },
      { user: 'bob@t.test' },
    ]);
    expect(await readTenantUsers(tenant({ users: [{ user: 'carol@t.test' }] }))).toEqual([
      { user: 'carol@t.test' },
    ]);
  });

  it('refuses a malformed line, and a user without password when the login form is "user"', async () => {
    writeFileSync(join(dir, 'bad'), 'alice@t.test,a.pw,extra\n');
    expect((await rejection(readTenantUsers(tenant({ usersFile: join(dir, 'bad') })))).message).toBe(
      `${join(dir, 'bad')} line 1: expected "user[,password-file]"`,
    );
    const own = tenant({ users: [{ user: 'bob@t.test' }], imap: { url: 'imap://h', auth: 'user' } });
    expect((await rejection(readTenantUsers(own))).message).toContain('user bob@t.test has no password file');
  });
});

describe('scheduler', () => {
  it('lists the scheduled jobs and computes next runs in the configured zone', () => {
    const entries = scheduleEntries([
      tenant({}),
      tenant({
        name: 'u.test',
        schedule: { backup: '0 2 * * *', light: '*/5 * * * * *', check: null, prune: '0 3 * * 0' },
      }),
    ]);
    expect(entries.map((e) => `${e.tenant}:${e.kind}`)).toEqual([
      't.test:backup',
      't.test:check',
      'u.test:backup',
      'u.test:light',
      'u.test:prune',
    ]);
    const from = new Date('2024-06-01T12:00:00Z');
    const paris = new Scheduler(entries, 'Europe/Paris', () => {}).nextRuns(from);
    expect(paris.find((r) => r.tenant === 't.test' && r.kind === 'backup')?.next?.toISOString()).toBe(
      '2024-06-02T00:00:00.000Z',
    );
    expect(paris.find((r) => r.kind === 'light')?.next?.toISOString()).toBe('2024-06-01T12:00:05.000Z');
    // 2024-06-02 is a Sunday: 03:00 Paris.
    expect(paris.find((r) => r.kind === 'prune')?.next?.toISOString()).toBe('2024-06-02T01:00:00.000Z');
    const utc = new Scheduler(entries, 'UTC', () => {}).nextRuns(from);
    expect(utc[0]?.next?.toISOString()).toBe('2024-06-02T02:00:00.000Z');
  });

  it('fires its callback on schedule and stops', async () => {
    const fired: string[] = [];
    const s = new Scheduler([{ tenant: 't', kind: 'light', pattern: '* * * * * *' }], 'UTC', (e) =>
      fired.push(e.tenant),
    );
    s.start();
    await new Promise((r) => setTimeout(r, 2300));
    s.stop();
    const n = fired.length;
    expect(n).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 1200));
    expect(fired.length).toBe(n);
  });
});
