/**
 * `mailark export` and `mailark verify-export` end to end, in-process, on a local temp-dir repository:
 * output, --json, exit codes, and the usage errors.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDirStore, Repository, saveTestSnapshot } from '@mailark/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliRun, run } from '../testing/capture.js';

const PASSWORD = 'export command test password';
let dir: string;
let repoDir: string;
let env: Record<string, string>;
let snapshotId: string;

const mailark = (argv: string[]): Promise<CliRun> => run(['-r', repoDir, ...argv], { env });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailark-cli-export-'));
  repoDir = join(dir, 'repo');
  await writeFile(join(dir, 'pw'), `${PASSWORD}\n`);
  env = { MAILARK_PASSWORD_FILE: join(dir, 'pw'), MAILARK_TEST_KDF: 'fast', TMPDIR: dir };
  expect((await mailark(['init'])).code).toBe(0);
  const repo = await Repository.open(new LocalDirStore(repoDir), PASSWORD);
  const m = (i: number) => Buffer.from(`Subject: m${i}\r\nFrom: a@acme.example\r\n\r\nFrom line ${i}\r\n`);
  ({ id: snapshotId } = await saveTestSnapshot(repo, {
    'alice@acme.example': { INBOX: [m(1), m(2)], 'Projets/Été': [m(3)] },
    'bob@acme.example': { INBOX: [m(4)] },
  }));
  await repo.close();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('mailark export', () => {
  it('exports the latest snapshot to a .tar.gz, and verify-export proves it', async () => {
    const out = join(dir, 'acme.tar.gz');
    const r = await mailark(['export', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`exported 4 messages`);
    expect(r.stdout).toContain(
      `of 2 mailboxes, 3 folders, from snapshot ${snapshotId.slice(0, 8)} as maildir, mbox, eml`,
    );
    expect(r.stdout).toMatch(/archive SHA-256 [0-9a-f]{64}/);
    const v = await mailark(['verify-export', out]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain('OK: the export is complete');
    expect(v.stdout).toContain('4 messages expected, found maildir 4, mbox 4, eml 4');
  });

  it('prints one JSON document with --json, and verify-export names a tampered file', async () => {
    const out = join(dir, 'bob-dir');
    const r = await mailark([
      'export',
      '--out',
      out,
      '--users',
      'bob@acme.example',
      '--format',
      'eml,mbox',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      formats: ['mbox', 'eml'],
      users: ['bob@acme.example'],
      counts: { messages: 1 },
      archive: { kind: 'dir' },
    });
    const eml = join(out, 'acme.example/bob@acme.example/eml/INBOX/1.eml');
    writeFileSync(eml, readFileSync(eml, 'latin1').replace('From line', 'From LINE'));
    const v = await mailark(['verify-export', out]);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain('FAILED');
    expect(v.stdout).toContain('acme.example/bob@acme.example/eml/INBOX/1.eml');
    const j = await mailark(['verify-export', out, '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({
      ok: false,
      differences: expect.arrayContaining([
        expect.objectContaining({ kind: 'content', path: 'acme.example/bob@acme.example/eml/INBOX/1.eml' }),
      ]),
    });
  });

  it.each([
    [['export'], /out/],
    [['export', '--out', 'x.tar', '--format', 'pdf'], /unknown export format pdf/],
    [['export', '--out=-', '--json'], /stdout carries the archive/],
    [['export', '--out', 'x.tar', '--imap', 'imap://127.0.0.1:1'], /either a repository/],
  ])('refuses %j (exit 2)', async (argv, message) => {
    const r = await mailark(argv);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toMatch(message); // with --json the error is a JSON document on stdout
  });

  it('never overwrites an export, and names an unknown mailbox', async () => {
    const out = join(dir, 'once.zip');
    expect((await mailark(['export', '--out', out, '--format', 'eml'])).code).toBe(0);
    const again = await mailark(['export', '--out', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists');
    const nobody = await mailark([
      'export',
      '--out',
      join(dir, 'nobody.tar'),
      '--users',
      'carol@acme.example',
    ]);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toContain('no mailbox carol@acme.example');
  });
});
