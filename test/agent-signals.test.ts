/**
 * The built `mailark-agent` in a child process:
 * - SIGTERM in the middle of a scheduled backup: the agent exits 0 well within 30 s, claims no
 *   snapshot, leaves no lock, the repository checks clean (all data read back), and the next
 *   `run-once` completes without re-fetching the mailboxes captured before the signal;
 * - config errors (unknown field, bad cron, missing password file) each give ONE clear message
 *   naming the field, and exit 2.
 *
 * Needs the build (`npm run test:integration` builds first): a missing dist fails, it never skips.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Checkpoint,
  checkRepository,
  LocalDirStore,
  Repository,
  readMessageBytes,
  TEST_KDF,
  walkMessages,
} from '@mailark/core';
import { describe, expect, it } from 'vitest';
import { type Child, ROOT, runNode, waitFor } from './harness/child-process.js';
import {
  appendMessages,
  closeRepository,
  imapServer,
  newUser,
  serverState,
  sha256,
  type TestUser,
  tempDir,
} from './harness/fixtures.js';

const BIN = join(ROOT, 'packages/agent/bin/mailark-agent.js');
const PASSWORD = 'signal test repository password';

function agent(args: string[]): Child {
  return runNode(BIN, args, { TZ: 'UTC' });
}

/** A message with a `mb` MiB incompressible attachment, wrapped at 76 columns. */
function bigMessage(n: number, mb: number): Buffer {
  const data = randomBytes(Math.round(mb * 1024 * 1024 * 0.75)).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < data.length; i += 76) lines.push(data.slice(i, i + 76));
  return Buffer.from(
    `Message-ID: <big-${n}-${randomBytes(4).toString('hex')}@example.test>\r\nSubject: big ${n}\r\n` +
      'MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
      `${lines.join('\r\n')}\r\n`,
  );
}

/**
 * True once the running backup has checkpointed a mailbox (a checkpoint is written after each
 * mailbox is captured, its data flushed first): read from the repository directory, not from log
 * lines, whose levels are core's to choose.
 */
function hasCheckpoint(repoDir: string): boolean {
  try {
    return readdirSync(join(repoDir, 'checkpoints')).length > 0;
  } catch {
    return false;
  }
}

/** Users whose mailbox a checkpoint of the repository records as captured whole. */
async function checkpointedUsers(repo: Repository): Promise<string[]> {
  const users = new Set<string>();
  for (const id of await repo.listObjects('checkpoints')) {
    const cp = await repo.loadObject<Checkpoint>('checkpoints', id);
    for (const m of cp.mailboxes) if (m.complete) users.add(m.user);
  }
  return [...users].sort();
}

/**
 * A new repository in dir/repo and an agent config whose one tenant backs up `users` every second,
 * one mailbox at a time (so a signal finds a backup half done).
 */
async function backupEverySecond(
  dir: string,
  tenant: string,
  users: TestUser[],
): Promise<{ repoDir: string; config: string }> {
  const imap = imapServer();
  const repoDir = join(dir, 'repo');
  await closeRepository(await Repository.init(new LocalDirStore(repoDir), PASSWORD, { kdf: TEST_KDF }));
  writeFileSync(join(dir, 'repo.pass'), `${PASSWORD}\n`);
  writeFileSync(join(dir, 'imap.pass'), `${imap.masterPassword}\n`);
  const config = writeConfig(dir, {
    http: { listen: '127.0.0.1:0' },
    tenants: [
      {
        name: tenant,
        repository: repoDir,
        passwordFile: join(dir, 'repo.pass'),
        imap: { url: imap.url, adminUser: imap.masterUser, adminPasswordFile: join(dir, 'imap.pass') },
        users: users.map((u) => u.user),
        concurrency: 1,
        schedule: { backup: '* * * * * *', check: null, prune: null },
      },
    ],
  });
  return { repoDir, config };
}

function writeConfig(dir: string, body: Record<string, unknown>): string {
  const file = join(dir, `agent-${randomBytes(3).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify(body));
  return file;
}

describe('mailark-agent process', () => {
  it('SIGTERM during a backup: exits < 30 s, no snapshot, check clean; the next run completes', async () => {
    const dir = tempDir('agent-sig-');
    const users: TestUser[] = [newUser('sig-a'), newUser('sig-b'), newUser('sig-c'), newUser('sig-d')];
    for (const [i, u] of users.entries()) {
      await appendMessages(
        u,
        'INBOX',
        [0, 1, 2].map((j) => ({ raw: bigMessage(i * 10 + j, 3) })),
      );
    }
    const { repoDir, config } = await backupEverySecond(dir, 'sig.example.test', users);

    const daemon = agent(['--config', config]);
    await waitFor('the first mailbox to be captured', () => hasCheckpoint(repoDir), daemon);
    const signalled = Date.now();
    daemon.proc.kill('SIGTERM');
    const code = await daemon.exit;
    const elapsed = Date.now() - signalled;
    expect(code, daemon.stderr).toBe(0);
    expect(elapsed).toBeLessThan(30_000);
    expect(daemon.lines.find((l) => l.msg === 'job finished')).toMatchObject({
      outcome: 'interrupted',
      level: 'warn',
    });
    expect(daemon.lines.at(-1), JSON.stringify(daemon.lines.slice(-5))).toMatchObject({
      msg: 'mailark-agent stopped',
    });

    // Nothing claimed, nothing locked, everything stored so far is sound.
    const repo = await Repository.open(new LocalDirStore(repoDir), PASSWORD);
    expect(await repo.listSnapshots()).toEqual([]);
    expect(await repo.listLocks()).toEqual([]);
    const done = await checkpointedUsers(repo);
    expect(done.length).toBeGreaterThanOrEqual(1);
    expect(done.length).toBeLessThan(users.length);
    const report = await checkRepository(repo, { readData: true });
    expect(report.errors).toEqual([]);
    await closeRepository(repo);

    // The next run completes, and does not fetch again what the interrupted one captured.
    const once = agent(['run-once', '--config', config, '--tenant', 'sig.example.test']);
    expect(await once.exit, once.stderr).toBe(0);
    const mailboxes = once.lines.filter((l) => l.msg === 'mailbox done');
    expect(mailboxes.map((l) => l.mailbox).sort()).toEqual(users.map((u) => u.user).sort());
    for (const l of mailboxes) {
      if (done.includes(l.mailbox as string)) expect(l.fetchedBytes, String(l.mailbox)).toBe(0);
      else expect(l.fetchedBytes).toBeGreaterThan(0);
    }
    const after = await Repository.open(new LocalDirStore(repoDir), PASSWORD);
    const snaps = await after.listSnapshots();
    expect(snaps.map((s) => s.snapshot.status)).toEqual(['complete']);
    const expected = new Map<string, string>();
    for (const u of users)
      for (const f of await serverState(u))
        for (const m of f.messages) expected.set(`${u.user}|${f.path}|${m.uid}`, m.sha256);
    const got = new Map<string, string>();
    for await (const m of walkMessages(after, snaps[0]!.snapshot)) {
      got.set(`${m.user}|${m.folder.path}|${m.entry.uid}`, sha256(await readMessageBytes(after, m.entry)));
    }
    expect(got).toEqual(expected);
    expect((await checkRepository(after, {})).errors).toEqual([]);
    await closeRepository(after);
  });

  it("SIGKILL mid-backup: the dead agent's lock is stale and the next run removes it and completes", async () => {
    const dir = tempDir('agent-kill-');
    const users: TestUser[] = [newUser('kill-a'), newUser('kill-b'), newUser('kill-c')];
    for (const [i, u] of users.entries()) {
      await appendMessages(
        u,
        'INBOX',
        [0, 1].map((j) => ({ raw: bigMessage(100 + i * 10 + j, 3) })),
      );
    }
    const { repoDir, config } = await backupEverySecond(dir, 'kill.example.test', users);
    const daemon = agent(['--config', config]);
    await waitFor('the first mailbox to be captured', () => hasCheckpoint(repoDir), daemon);
    daemon.proc.kill('SIGKILL');
    await daemon.exit;

    const repo = await Repository.open(new LocalDirStore(repoDir), PASSWORD);
    const locks = await repo.listLocks();
    expect(locks).toEqual([
      expect.objectContaining({ owner: 'mailark backup', pid: daemon.proc.pid, stale: true }),
    ]);
    expect(await repo.listSnapshots()).toEqual([]);
    await closeRepository(repo);

    const once = agent(['run-once', '--config', config, '--tenant', 'kill.example.test']);
    expect(await once.exit, once.stderr).toBe(0);
    expect(once.lines.find((l) => String(l.msg).startsWith('removed 1 stale lock'))).toBeDefined();
    // A new instance: the index was written by the run-once process after `repo` was opened.
    const after = await Repository.open(new LocalDirStore(repoDir), PASSWORD);
    expect(await after.listLocks()).toEqual([]);
    expect((await after.listSnapshots()).map((s) => s.snapshot.status)).toEqual(['complete']);
    expect((await checkRepository(after, { readData: true })).errors).toEqual([]);
    await closeRepository(after);
  });

  it('config errors each give one clear message naming the field, exit 2', async () => {
    const dir = tempDir('agent-cfg-');
    writeFileSync(join(dir, 'pw'), 'x\n');
    const tenant = {
      name: 'cfg.example.test',
      repository: join(dir, 'repo'),
      passwordFile: join(dir, 'pw'),
      imap: { url: 'imap://127.0.0.1:1143', adminUser: 'admin', adminPasswordFile: join(dir, 'pw') },
      users: ['a@cfg.example.test'],
    };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...tenant, usres: ['typo'] }, /^mailark-agent: config \S+: tenants\[0\]: unknown field "usres"$/],
      [
        { ...tenant, schedule: { backup: '0 25 * * *' } },
        /^mailark-agent: config \S+: tenants\[0\]\.schedule\.backup: invalid cron expression "0 25 \* \* \*": .*hour.*$/,
      ],
      [
        { ...tenant, passwordFile: join(dir, 'missing.pw') },
        new RegExp(
          `^mailark-agent: config \\S+: tenants\\[0\\]\\.passwordFile: cannot read ${join(dir, 'missing.pw')} \\(no such file\\)$`,
        ),
      ],
    ];
    for (const [t, pattern] of cases) {
      const file = writeConfig(dir, { tenants: [t] });
      const child = agent(['validate', '--config', file]);
      expect(await child.exit).toBe(2);
      const lines = child.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(pattern);
      expect(lines[1]).toMatch(/^hint: /);
    }
    const ok = agent(['validate', '--config', writeConfig(dir, { tenants: [tenant] })]);
    expect(await ok.exit).toBe(0);
  });
});
