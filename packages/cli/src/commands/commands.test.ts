/**
 * The repository commands end to end, in-process, on local temp-dir repositories: init, key,
 * unlock, snapshots, ls, diff; exit codes and output. (check/stats/repair: repository-commands.test.ts.)
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDirStore, Repository, saveTestSnapshot } from '@mailark/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliRun, run } from '../testing/capture.js';

const PASSWORD = 'Tr0ub4dor&3 horse';
let dir: string;
let repoDir: string;
let env: Record<string, string>;
const outputs: CliRun[] = [];

async function mailark(argv: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> {
  const r = await run(['-r', repoDir, ...argv], { env: { ...env, ...extraEnv } });
  outputs.push(r);
  return r;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailark-cli-'));
  repoDir = join(dir, 'repo');
  await writeFile(join(dir, 'pw'), `${PASSWORD}\n`);
  env = { MAILARK_PASSWORD_FILE: join(dir, 'pw'), MAILARK_TEST_KDF: 'fast' };
});

afterEach(async () => {
  // No command ever prints the password, whatever it did.
  for (const r of outputs.splice(0)) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  await rm(dir, { recursive: true, force: true });
});

async function openDirect(): Promise<Repository> {
  return Repository.open(new LocalDirStore(repoDir), PASSWORD);
}

describe('init', () => {
  it('creates a repository, prints its id and location, and refuses a second init', async () => {
    const r = await mailark(['init']);
    expect(r.code).toBe(0);
    const repo = await openDirect();
    expect(r.stdout).toBe(`created mailark repository ${repo.config.id.slice(0, 8)} at ${repoDir}\n`);
    expect(repo.config.packSize).toBe(16 * 1024 * 1024);
    await repo.close();

    const again = await mailark(['init']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`a repository already exists at ${repoDir}`);
  });

  it('takes --pack-size in MiB and prints JSON with --json', async () => {
    const r = await mailark(['init', '--pack-size', '4', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ location: repoDir, packSize: 4 * 1024 * 1024 });
    expect(doc.id).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a --pack-size out of range in MiB, the unit typed, before creating anything', async () => {
    for (const size of ['0', '100000', '0.0001']) {
      const r = await mailark(['init', '--pack-size', size]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--pack-size ${size} is out of range`);
      expect(r.stderr).toContain('hint: give MiB from 0.001 (1 KiB) to 1024 (1 GiB)');
    }
    await expect(stat(repoDir)).rejects.toThrow(/ENOENT/);
    expect((await mailark(['init', '--pack-size', '0.5'])).code).toBe(0);
  });

  it('reads the password from MAILARK_PASSWORD too, and needs one', async () => {
    const r = await run(['-r', repoDir, 'init'], {
      env: { MAILARK_PASSWORD: PASSWORD, MAILARK_TEST_KDF: 'fast' },
    });
    expect(r.code).toBe(0);
    expect((await openDirect()).keyId).toMatch(/^[0-9a-f]+$/);
    const none = await run(['-r', join(dir, 'other'), 'init'], { env: { MAILARK_TEST_KDF: 'fast' } });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no repository password given');
  });
});

describe('opening a repository', () => {
  it('exits 10 without a repository, 12 with a wrong password, 2 on an unknown scheme', async () => {
    const none = await mailark(['snapshots']);
    expect(none.code).toBe(10);
    expect(none.stderr).toContain(`there is no mailark repository at ${repoDir}`);

    await mailark(['init']);
    const wrong = await mailark(['snapshots'], { MAILARK_PASSWORD_FILE: '', MAILARK_PASSWORD: 'not it' });
    expect(wrong.code).toBe(12);
    expect(wrong.stdout + wrong.stderr).not.toContain('not it');

    const scheme = await run(['-r', 'ftp://host/x', 'snapshots'], { env });
    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toMatch(/unknown repository location scheme 'ftp:'[\s\S]*hint: /);
  });
});

describe('key', () => {
  it('adds a password, lists keys, removes the old one, and refuses to remove the key in use', async () => {
    await mailark(['init']);
    const newPw = 'second secret phrase';
    const add = await mailark(['key', 'add', '--json'], { MAILARK_NEW_PASSWORD: newPw });
    expect(add.code).toBe(0);
    const newId = JSON.parse(add.stdout).id as string;
    expect(add.stdout + add.stderr).not.toContain(newPw);

    const list = await mailark(['key', 'list', '--json']);
    const keys = JSON.parse(list.stdout) as Array<{ id: string; current: boolean }>;
    expect(keys).toHaveLength(2);
    const oldId = keys.find((k) => k.current)!.id;
    expect(keys.find((k) => !k.current)!.id).toBe(newId);
    const table = await mailark(['key', 'list']);
    expect(table.stdout).toContain(`*${oldId.slice(0, 8)}`);

    const withNew = { MAILARK_PASSWORD_FILE: '', MAILARK_PASSWORD: newPw };
    const inUse = await mailark(['key', 'remove', newId.slice(0, 8)], withNew);
    expect(inUse.code).toBe(2);
    expect(inUse.stderr).toContain('is the one in use');
    const removed = await mailark(['key', 'remove', oldId.slice(0, 8)], withNew);
    expect(removed).toMatchObject({ code: 0, stdout: `removed key ${oldId.slice(0, 8)}\n` });
    expect((await mailark(['snapshots'])).code).toBe(12);
    expect((await mailark(['snapshots'], withNew)).code).toBe(0);
  });

  it('needs a new password from a file or the environment, never an argument', async () => {
    await mailark(['init']);
    const r = await mailark(['key', 'add']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--new-password-file');
    await writeFile(join(dir, 'new'), 'from a file\r\n');
    expect((await mailark(['key', 'add', '--new-password-file', join(dir, 'new')])).code).toBe(0);
    const opened = await run(['-r', repoDir, 'snapshots'], { env: { MAILARK_PASSWORD: 'from a file' } });
    expect(opened.code).toBe(0);
    expect((await mailark(['key'])).code).toBe(2);
  });
});

describe('locks and unlock', () => {
  it('exits 11 naming the holder; unlock keeps a live lock, --remove-all removes it', async () => {
    await mailark(['init']);
    const holder = await openDirect();
    const lock = await holder.lock('exclusive', 'mailark prune');
    const locked = await mailark(['ls', 'latest']);
    expect(locked.code).toBe(11);
    expect(locked.stderr).toMatch(/is locked \(exclusively\) by mailark prune on .+ \(pid \d+\)/);
    expect(locked.stderr).toContain('hint: if that process is gone, run "mailark unlock"');

    const keep = await mailark(['unlock']);
    expect(keep.code).toBe(0);
    expect(keep.stdout).toBe('removed 0 stale locks\n');
    expect(keep.stderr).toContain('still locked by mailark prune');

    const all = await mailark(['unlock', '--remove-all', '--json']);
    expect(JSON.parse(all.stdout).removed).toEqual([lock.id]);
    expect((await mailark(['ls', 'latest'])).stderr).not.toContain('locked');
    await holder.close();
  });
});

describe('snapshots, ls and diff', () => {
  const msg = (subject: string) =>
    Buffer.from(`From: Bob <bob@example.test>\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`);
  let first: string;
  let second: string;

  beforeEach(async () => {
    await mailark(['init']);
    const repo = await openDirect();
    first = (
      await saveTestSnapshot(
        repo,
        {
          'alice@example.test': { INBOX: [msg('invoice'), msg('lunch')], 'Projets/Été': [msg('plan')] },
          'bob@example.test': { INBOX: [msg('hello')] },
        },
        '2024-05-01T02:00:00.000Z',
      )
    ).id;
    second = (
      await saveTestSnapshot(
        repo,
        {
          'alice@example.test': { INBOX: [msg('invoice')], 'Projets/Été': [msg('plan'), msg('draft')] },
          'bob@example.test': { INBOX: [msg('hello')] },
        },
        '2024-05-02T02:00:00.000Z',
      )
    ).id;
    await repo.close();
  });

  it('lists snapshots oldest first, as a table or JSON', async () => {
    const r = await mailark(['snapshots']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +Time \(UTC\) +Tenant +Status +Mailboxes +Messages +Size +Tags$/);
    expect(lines[2]).toMatch(
      new RegExp(`^${first.slice(0, 8)}  2024-05-01 02:00:00  acme.example  complete +2 +4 `),
    );
    expect(lines[3]).toMatch(new RegExp(`^${second.slice(0, 8)}  2024-05-02 02:00:00`));
    expect(lines.at(-1)).toBe('2 snapshots');
    const json = JSON.parse((await mailark(['snapshots', '--json'])).stdout);
    expect(json.map((s: { id: string }) => s.id)).toEqual([first, second]);
    expect(JSON.parse((await mailark(['snapshots', '--tenant', 'other', '--json'])).stdout)).toEqual([]);
  });

  it('lists mailboxes, then folders, then messages', async () => {
    const boxes = await mailark(['ls', first.slice(0, 6)]);
    expect(boxes.code).toBe(0);
    expect(boxes.stdout).toMatch(/alice@example\.test +2 +3 +\d+ B +ok/);
    const folders = await mailark(['ls', 'latest', '--user', 'alice@example.test', '--json']);
    const doc = JSON.parse(folders.stdout);
    expect(doc.snapshot.id).toBe(second);
    expect(doc.folders.map((f: { path: string; messages: number }) => [f.path, f.messages])).toEqual([
      ['INBOX', 1],
      ['Projets/Été', 2],
    ]);
    const messages = await mailark([
      'ls',
      'latest',
      '--user',
      'alice@example.test',
      '--folder',
      'Projets/Été',
    ]);
    expect(messages.stdout).toMatch(/^ +1 +2024-05-02 02:00:00 +message 1 /m);
    const json = JSON.parse(
      (await mailark(['ls', 'latest', '--user', 'alice@example.test', '--folder', 'Projets/Été', '--json']))
        .stdout,
    );
    expect(json.messages.map((m: { uid: number; sha256: string }) => [m.uid, m.sha256.length])).toEqual([
      [1, 64],
      [2, 64],
    ]);
    expect(json.messages[0].ref).toMatch(
      new RegExp(`^${second.slice(0, 8)}/alice@example.test/Projets%2F%C3%89t%C3%A9/1/1$`),
    );
  });

  it('fails with a hint on an unknown mailbox, folder or snapshot, and on --folder without --user', async () => {
    const user = await mailark(['ls', 'latest', '--user', 'carol@example.test']);
    expect(user.code).toBe(1);
    expect(user.stderr).toContain('holds no mailbox carol@example.test');
    const folder = await mailark(['ls', 'latest', '--user', 'bob@example.test', '--folder', 'Nope']);
    expect(folder.stderr).toContain('has no folder "Nope"');
    expect(folder.stderr).toContain('hint: list its folders with');
    expect((await mailark(['ls', 'ffffffff'])).stderr).toContain('no snapshot matches "ffffffff"');
    expect((await mailark(['ls', 'latest', '--folder', 'INBOX'])).code).toBe(2);
  });

  it('shows what changed between two snapshots, with refs for expunged mail', async () => {
    const r = await mailark(['diff', first.slice(0, 8), second.slice(0, 8)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `comparing snapshot ${first.slice(0, 8)} (2024-05-01 02:00:00) to ${second.slice(0, 8)}`,
    );
    // saveTestSnapshot numbers UIDs by position, so "lunch" (INBOX uid 2) is gone and Projets/Été uid 2 is new.
    expect(r.stdout).toMatch(/^\+ alice@example\.test Projets\/Été uid 2 /m);
    expect(r.stdout).toMatch(
      new RegExp(
        `^- alice@example\\.test INBOX uid 2 .*  ${first.slice(0, 8)}/alice@example.test/INBOX/1/2$`,
        'm',
      ),
    );
    expect(r.stdout).toMatch(/1 added \(.+\), 1 expunged \(.+\), 0 moved, 0 with changed flags/);
    const json = JSON.parse(
      (await mailark(['diff', first, second, '--user', 'bob@example.test', '--json'])).stdout,
    );
    expect(json.summary).toMatchObject({ added: 0, expunged: 0, moved: 0, flagChanges: 0 });
  });
});
