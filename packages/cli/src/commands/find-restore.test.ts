/**
 * `mailark find` and `mailark restore --eml` in-process on a local repository (no network): output
 * shapes, usage errors and the exit codes of a per-item report (0, 1, 3). Restores into a real
 * mailbox are covered by test/restore.test.ts against Dovecot.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  emlFileName,
  LocalDirStore,
  type MessageMatch,
  Repository,
  saveTestSnapshot,
  TEST_KDF,
} from '@mailark/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliRun, run } from '../testing/capture.js';

const PASSWORD = 'find and restore from the command line';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const one = Buffer.from('Subject: first\r\n\r\nbody one\r\n');
const two = Buffer.from('Subject: second\r\n\r\nbody two\r\n');

let dir: string;
let repoDir: string;
let first: string;
const outputs: CliRun[] = [];

async function mailark(argv: string[]): Promise<CliRun> {
  const r = await run(['-r', repoDir, ...argv], { env: { MAILARK_PASSWORD: PASSWORD } });
  outputs.push(r);
  return r;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailark-find-'));
  repoDir = join(dir, 'repo');
  const repo = await Repository.init(new LocalDirStore(repoDir), PASSWORD, { kdf: TEST_KDF });
  const mail = { INBOX: [one, two], 'Clients/Été': [two], 'Odd\u001b[31mName': [one] };
  first = (await saveTestSnapshot(repo, { 'alice@ex': mail }, '2026-11-20T02:00:00.000Z')).id;
  await saveTestSnapshot(repo, { 'alice@ex': { INBOX: [one] } }, '2026-11-21T02:00:00.000Z');
  await repo.close();
});

afterEach(async () => {
  for (const r of outputs.splice(0)) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  await rm(dir, { recursive: true, force: true });
});

async function deleted(): Promise<MessageMatch[]> {
  const r = await mailark(['find', '--deleted-since', first.slice(0, 8), '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { matches: MessageMatch[] }).matches;
}

describe('mailark find', () => {
  it('prints one table row per match, with no control characters', async () => {
    const r = await mailark(['find', '--snapshot', first.slice(0, 8)]);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^Reference\s+Snapshot\s+User\s+Folder\s+Date\s+From\s+Subject\s+Size\s+Flags$/);
    expect(rows.slice(2).map((l) => l.split(' ')[0])).toEqual([
      `${first.slice(0, 8)}/alice@ex/Clients%2F%C3%89t%C3%A9/1/1`,
      `${first.slice(0, 8)}/alice@ex/INBOX/1/1`,
      `${first.slice(0, 8)}/alice@ex/INBOX/1/2`,
      `${first.slice(0, 8)}/alice@ex/Odd%1B%5B31mName/1/1`,
    ]);
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout).toContain('Odd [31mName');
    expect(r.stderr).toContain('4 messages in 1 snapshot');
    const bySubject = await mailark(['find', '--snapshot', first, '--subject', 'MESSAGE 2', '--json']);
    expect((JSON.parse(bySubject.stdout) as { matches: MessageMatch[] }).matches.map((m) => m.uid)).toEqual([
      2,
    ]);
  });

  it('--deleted-since --json names what went, with store counters', async () => {
    const r = await mailark(['find', '--deleted-since', first, '--json']);
    const doc = JSON.parse(r.stdout) as {
      matches: MessageMatch[];
      comparedTo: { id: string };
      store: { gets: number };
    };
    expect(doc.matches.map((m) => [m.folder, m.sha256])).toEqual([
      ['Clients/Été', sha(two)],
      ['INBOX', sha(two)],
    ]); // Odd…Name held `one`, which INBOX still holds: by user + SHA-256 that is no deletion.
    expect(doc.store.gets).toBeGreaterThan(0);
  });

  it('rejects bad options with exit 2 and a hint', async () => {
    const r = await mailark(['find', '--since', 'last week']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot read "last week" as a date');
    expect(r.stderr).toContain('hint:');
    expect((await mailark(['find', '--all-snapshots', '--snapshot', 'latest'])).code).toBe(2);
  });
});

describe('mailark restore --eml', () => {
  it('writes the files and exits 0; a re-run reports them already there', async () => {
    const gone = await deleted();
    const out = join(dir, 'eml');
    const r = await mailark(['restore', ...gone.map((m) => m.ref), '--eml', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('2 restored, 0 already there, 0 failed');
    for (const m of gone) {
      const file = join(
        out,
        emlFileName({ internalDate: m.internalDate, sha256: m.sha256, h: { subject: m.subject as string } }),
      );
      expect(sha(await readFile(file))).toBe(m.sha256);
    }
    const again = await mailark(['restore', ...gone.map((m) => m.ref), '--eml', out, '--json']);
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as { summary: unknown }).summary).toEqual({
      restored: 0,
      alreadyPresent: 2,
      wouldRestore: 0,
      failed: 0,
    });
  });

  it('exits 3 when some items fail and 1 when all do', async () => {
    const [a, b] = await deleted();
    const out = join(dir, 'eml');
    await mailark(['restore', b?.ref as string, '--eml', out]);
    // A different file already sits where `a` would go: it is never overwritten.
    const clash = join(
      out,
      emlFileName({
        internalDate: a?.internalDate as string,
        sha256: a?.sha256 as string,
        h: { subject: a?.subject as string },
      }),
    );
    await writeFile(clash, 'not the message');
    const partial = await mailark(['restore', b?.ref as string, a?.ref as string, '--eml', out]);
    expect(partial.code).toBe(3);
    expect(partial.stdout).toMatch(/already-present/);
    expect(partial.stdout).toMatch(/failed .*not overwritten/);
    expect(await readFile(clash, 'utf8')).toBe('not the message');
    const none = await mailark(['restore', a?.ref as string, '--eml', out]);
    expect(none.code).toBe(1);
  });

  it('restores a whole scope as of a snapshot, narrowed by --folder and --since/--until', async () => {
    const out = join(dir, 'scope');
    const scope = ['restore', '--user', 'alice@ex', '--snapshot', first.slice(0, 8), '--eml', out, '--json'];
    const items = async (extra: string[]) => {
      const r = await mailark([...scope, ...extra]);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { items: Array<{ ref: string }> }).items.map((i) => i.ref);
    };
    // Every message of that snapshot was received at 2026-11-20T02:00:00Z (saveTestSnapshot).
    expect(await items(['--folder', 'INBOX'])).toEqual([
      `${first.slice(0, 8)}/alice@ex/INBOX/1/1`,
      `${first.slice(0, 8)}/alice@ex/INBOX/1/2`,
    ]);
    expect(
      await items([
        '--folder',
        'Clients/Été',
        '--since',
        '2026-11-20T01:00Z',
        '--until',
        '2026-11-20T02:00Z',
      ]),
    ).toEqual([`${first.slice(0, 8)}/alice@ex/Clients%2F%C3%89t%C3%A9/1/1`]);
    for (const narrow of [
      ['--since', '2026-11-20T02:00:01Z'],
      ['--until', '2026-11-20T01:59Z'],
    ]) {
      const none = await mailark([...scope, ...narrow]);
      expect(none.code).toBe(1);
      expect(none.stdout).toContain(`snapshot ${first.slice(0, 8)} holds no message for that scope`);
    }
  });

  it('refuses unknown references and mixed or missing selections before writing anything', async () => {
    const unknown = await mailark([
      'restore',
      `${first.slice(0, 8)}/alice@ex/INBOX/1/99`,
      '--eml',
      join(dir, 'x'),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no message with UID 99');
    expect((await mailark(['restore', '--eml', join(dir, 'x')])).code).toBe(2);
    expect((await mailark(['restore', 'abc', '--to-user', 'bob@ex', '--eml', join(dir, 'x')])).code).toBe(2);
    expect((await mailark(['restore', 'abc', '--user', 'alice@ex', '--eml', join(dir, 'x')])).code).toBe(2);
    const noImap = await mailark(['restore', `${first.slice(0, 8)}/alice@ex/INBOX/1/1`]);
    expect(noImap.code).toBe(2);
    expect(noImap.stderr).toContain('no IMAP server given');
  });
});
