/**
 * SIGKILL the backup (the built CLI in a child process) at several points: before anything is
 * indexed, after the first checkpoint, a few checkpoints later. Each time no snapshot may appear; the
 * next run resumes, fetching exactly the messages the checkpoints do not hold; the repository checks
 * clean (all data read back) and the final snapshot equals the server.
 *
 * Needs the build (`npm run test:integration` builds first): a missing dist fails, it never skips.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPreviousState } from '../packages/core/src/backup/backup-checkpoint.js';
import { checkRepository } from '../packages/core/src/check/check.js';
import type { MailboxTree, Snapshot } from '../packages/core/src/mail/snapshot.js';
import {
  loadFolderEntries,
  loadTenantTree,
  readMessageBytes,
} from '../packages/core/src/mail/snapshot-tree.js';
import { Repository } from '../packages/core/src/repo/repository.js';
import { LocalDirStore } from '../packages/core/src/store/local-dir-store.js';
import { type Child, ROOT, runNode } from './harness/child-process.js';
import {
  appendMessages,
  closeRepository,
  fixtureMessages,
  imapServer,
  nastyMessages,
  newUser,
  serverState,
  sha256,
  type TestUser,
  tempDir,
} from './harness/fixtures.js';

const BIN = join(ROOT, 'packages/cli/bin/mailark.js');
const PASSWORD = 'kill test repository password';

/** Regular files (not .tmp- leftovers) anywhere under dir. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && !d.name.startsWith('.tmp-'))
    .map((d) => join(d.parentPath, d.name));
}

function mailark(repoDir: string, args: string[]): Child {
  return runNode(BIN, ['-r', repoDir, ...args], {
    MAILARK_PASSWORD: PASSWORD,
    MAILARK_IMAP_PASSWORD: imapServer().masterPassword,
    MAILARK_TEST_KDF: 'fast',
  });
}

/** Runs a backup and SIGKILLs it once `when()` holds; fails if the run ends first. */
async function killWhen(repoDir: string, args: string[], when: () => boolean, label: string): Promise<void> {
  const child = mailark(repoDir, args);
  let exited: number | null | undefined;
  void child.exit.then((c) => {
    exited = c;
  });
  while (!when()) {
    if (exited !== undefined)
      throw new Error(`${label}: the backup ended (exit ${exited}) before the kill point\n${child.stderr}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  child.proc.kill('SIGKILL');
  await child.exit;
  expect(child.proc.signalCode, label).toBe('SIGKILL');
}

async function openRepo(repoDir: string): Promise<Repository> {
  return Repository.open(new LocalDirStore(repoDir), PASSWORD);
}

/** Messages the checkpoints of the tenant hold (stored and flushed: never to be fetched again). */
async function heldByCheckpoints(repoDir: string, tenant: string): Promise<number> {
  const repo = await openRepo(repoDir);
  const prev = await loadPreviousState(repo, tenant).finally(() => closeRepository(repo));
  let n = 0;
  for (const m of prev.mailboxes.values()) n += m.checkpoint?.messages ?? 0;
  return n;
}

describe('backup killed with SIGKILL', () => {
  it('resumes after kills at several points without re-fetching what is stored; check is clean', async () => {
    if (!existsSync(join(ROOT, 'packages/cli/dist/main.js'))) {
      throw new Error('the CLI is not built: run "npm run build" (npm run test:integration does it first)');
    }
    const users: TestUser[] = [];
    const fx = fixtureMessages();
    let total = 0;
    for (let i = 0; i < 5; i++) {
      const u = newUser('bk-kill');
      users.push(u);
      const msgs = fx.slice(i * 10, i * 10 + 40).map((raw, j) => ({ raw, flags: j % 2 ? ['\\Seen'] : [] }));
      const big = nastyMessages({ bigMB: 1.5 }).filter((n) => n.name === 'big' || n.name === 'long-lines');
      await appendMessages(u, 'INBOX', msgs.slice(0, 25));
      await appendMessages(u, 'Archive/2023', [...msgs.slice(25), ...big.map((b) => ({ raw: b.raw }))]);
      total += msgs.length + big.length;
    }
    const repoDir = join(tempDir('bk-kill-'), 'repo');
    const init = mailark(repoDir, ['init']);
    expect(await init.exit, init.stderr).toBe(0);

    const s = imapServer();
    const tenant = 'kill.test';
    const args = [
      'backup',
      '--imap',
      s.url,
      '--imap-user',
      s.masterUser,
      '--users',
      users.map((u) => u.user).join(','),
      '--tenant',
      tenant,
      '--concurrency',
      '2',
      '--checkpoint-mib',
      '1',
      '--json',
    ];
    const data = () => files(join(repoDir, 'data')).length;
    const checkpoints = () => files(join(repoDir, 'checkpoints'));
    const snapshots = () => files(join(repoDir, 'snapshots')).length;

    // 1: as soon as the first pack is written (nothing indexed or checkpointed yet).
    await killWhen(repoDir, args, () => data() > 0, 'kill 1');
    expect(snapshots()).toBe(0);
    const held1 = await heldByCheckpoints(repoDir, tenant);

    // 2: right after this run's first checkpoint.
    const before2 = new Set(checkpoints());
    await killWhen(repoDir, args, () => checkpoints().some((f) => !before2.has(f)), 'kill 2');
    expect(snapshots()).toBe(0);
    const held2 = await heldByCheckpoints(repoDir, tenant);
    expect(held2).toBeGreaterThan(held1);

    // 3: three checkpoints later (the run deletes its previous one, so count the new ids seen).
    const before3 = new Set(checkpoints());
    const seen3 = new Set<string>();
    await killWhen(
      repoDir,
      args,
      () => {
        for (const f of checkpoints()) if (!before3.has(f)) seen3.add(f);
        return seen3.size >= 3;
      },
      'kill 3',
    );
    expect(snapshots()).toBe(0);
    const held3 = await heldByCheckpoints(repoDir, tenant);
    expect(held3).toBeGreaterThan(held2);
    expect(held3).toBeLessThan(total);

    // The run that completes fetches exactly what the checkpoints do not hold.
    const last = mailark(repoDir, args);
    expect(await last.exit, last.stderr).toBe(0);
    const doc = JSON.parse(last.stdout) as { status: string; mailboxes: Array<{ fetchedMessages: number }> };
    expect(doc.status).toBe('complete');
    expect(doc.mailboxes.reduce((n, m) => n + m.fetchedMessages, 0)).toBe(total - held3);

    const repo = await openRepo(repoDir);
    const report = await checkRepository(repo, { readData: true });
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    expect(await repo.listObjects('checkpoints')).toEqual([]);
    const [snap] = await repo.listSnapshots();
    expect(snap?.snapshot.status).toBe('complete');
    for (const u of users) {
      const ref = (await loadTenantTree(repo, snap?.snapshot as Snapshot)).mailboxes.find(
        (m) => m.user === u.user,
      );
      const tree = await repo.loadTree<MailboxTree>(ref?.tree as string);
      const server = await serverState(u);
      for (const f of server) {
        const node = tree.folders.find((x) => x.path === f.path);
        expect(node?.uidValidity, f.path).toBe(f.uidValidity);
        const entries = node === undefined ? [] : await loadFolderEntries(repo, node);
        const mine = await Promise.all(
          entries.map(async (e) => ({
            uid: e.uid,
            sha256: sha256(await readMessageBytes(repo, e)),
            flags: e.flags,
            keywords: e.keywords,
            internalDate: e.internalDate,
            size: e.size,
          })),
        );
        expect(mine, `${u.user} ${f.path}`).toEqual(f.messages);
      }
    }
    await closeRepository(repo);
  });
});
