/**
 * mailark backup against the real Dovecot: every folder of every mailbox, byte for byte, with flags,
 * keywords, internal dates and folder names; incremental runs that follow every kind of change and
 * fetch nothing twice; dedup across users; partial runs; the CLI; a repository on the real S3 server.
 * After each run the snapshot must equal serverState() (the harness's independent ground truth).
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { runCli } from '../packages/cli/src/main.js';
import { type BackupResult, runBackup } from '../packages/core/src/backup/run-backup.js';
import { parseImapEndpoint } from '../packages/core/src/imap/imap-endpoint.js';
import type { MailboxTree, Snapshot } from '../packages/core/src/mail/snapshot.js';
import {
  loadFolderEntries,
  loadTenantTree,
  readMessageBytes,
} from '../packages/core/src/mail/snapshot-tree.js';
import { Repository } from '../packages/core/src/repo/repository.js';
import { TEST_KDF } from '../packages/core/src/repo/test-repository.js';
import { MemoryStore } from '../packages/core/src/store/memory-store.js';
import type { ObjectStore } from '../packages/core/src/store/object-store.js';
import { openStore } from '../packages/core/src/store/open-store.js';
import {
  appendMessages,
  closeRepository,
  fixtureMessages,
  freshPrefix,
  imapClientFor,
  imapServer,
  nastyMessages,
  newUser,
  type ServerFolder,
  serverState,
  sha256,
  type TestUser,
  tempDir,
} from './harness/fixtures.js';

const TENANT = 'example.test';
const PASSWORD = 'backup test repository password';

function endpoint() {
  const s = imapServer();
  return parseImapEndpoint(s.url, { adminUser: s.masterUser, password: s.masterPassword });
}

async function backup(repo: Repository, users: Array<TestUser | string>, over: { tags?: string[] } = {}) {
  return runBackup(repo, {
    endpoint: endpoint(),
    users: users.map((u) => ({ user: typeof u === 'string' ? u : u.user })),
    tenant: TENANT,
    toolVersion: 'test',
    ...over,
  });
}

/**
 * The CLI in-process on one repository, with the repository and IMAP master passwords in its
 * environment (plus `env`); when `secrets` are given, no run may print any of them.
 */
function cliOn(repoDir: string, opts: { env?: Record<string, string>; secrets?: string[] } = {}) {
  const s = imapServer();
  return async (argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['-r', repoDir, ...argv], {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      env: {
        MAILARK_PASSWORD: PASSWORD,
        MAILARK_IMAP_PASSWORD: s.masterPassword,
        MAILARK_TEST_KDF: 'fast',
        ...opts.env,
      },
    });
    for (const secret of opts.secrets ?? []) expect(stdout + stderr).not.toContain(secret);
    return { code, stdout, stderr };
  };
}

async function newRepo(
  store: ObjectStore = new MemoryStore(),
): Promise<{ repo: Repository; store: ObjectStore }> {
  return { repo: await Repository.init(store, PASSWORD, { kdf: TEST_KDF }), store };
}

/**
 * The snapshot's view of one mailbox in serverState()'s shape: every body read back through
 * readMessageBytes (which itself verifies size and SHA-256) and hashed again.
 */
async function snapshotView(repo: Repository, snapshot: Snapshot, user: string): Promise<ServerFolder[]> {
  const ref = (await loadTenantTree(repo, snapshot)).mailboxes.find((m) => m.user === user);
  if (ref === undefined) throw new Error(`${user} is not in the snapshot`);
  expect(ref.state).toBe('ok');
  const tree = await repo.loadTree<MailboxTree>(ref.tree);
  const out: ServerFolder[] = [];
  for (const f of tree.folders) {
    const folder: ServerFolder = {
      path: f.path,
      delimiter: f.delimiter,
      selectable: f.selectable,
      messages: [],
    };
    if (f.specialUse !== undefined && f.specialUse !== '\\Inbox') folder.specialUse = f.specialUse;
    if (f.selectable) {
      folder.uidValidity = f.uidValidity as string;
      for (const e of await loadFolderEntries(repo, f)) {
        const bytes = await readMessageBytes(repo, e);
        folder.messages.push({
          uid: e.uid,
          sha256: sha256(bytes),
          flags: e.flags,
          keywords: e.keywords,
          internalDate: e.internalDate,
          size: bytes.length,
        });
      }
    }
    out.push(folder);
  }
  return out;
}

async function expectEqualsServer(repo: Repository, r: BackupResult, users: Array<TestUser | string>) {
  expect(r.status, JSON.stringify(r.mailboxes.map((m) => m.error))).toBe('complete');
  for (const u of users) {
    const name = typeof u === 'string' ? u : u.user;
    expect(await snapshotView(repo, r.snapshot as Snapshot, name), name).toEqual(await serverState(name));
  }
}

const fetched = (r: BackupResult) => r.mailboxes.reduce((n, m) => n + m.fetchedMessages, 0);

async function dataBytes(store: ObjectStore): Promise<number> {
  let n = 0;
  for await (const o of store.list('data/')) n += o.size;
  return n;
}

describe('backup against Dovecot', () => {
  it('captures non-ASCII and nested folders, special-use, 25 MB, bare LF, 8-bit, all 75 fixtures, flags, keywords and dates', async () => {
    const u = newUser('bk-full');
    const fixtures = fixtureMessages();
    await appendMessages(
      u,
      'INBOX',
      fixtures.map((raw, i) => ({
        raw,
        flags: i % 3 === 0 ? ['\\Seen', '$Forwarded'] : i % 3 === 1 ? ['\\Flagged', 'Projet_X'] : [],
        internalDate: new Date(Date.UTC(2020, i % 12, 1 + (i % 28), 8, i % 60, 7)),
      })),
    );
    const nasty = nastyMessages({ bigMB: 25 });
    await appendMessages(
      u,
      'Projets/Été 2024',
      nasty.map((n) => ({
        raw: n.raw,
        flags: ['\\Answered'],
        internalDate: new Date('2024-03-05T09:11:12Z'),
      })),
    );
    await appendMessages(u, '顧客', [{ raw: fixtures[5] as Buffer, flags: ['$Label1'] }]);
    await appendMessages(u, 'A&B', [{ raw: fixtures[6] as Buffer }]);
    await appendMessages(u, 'Sent', [{ raw: fixtures[7] as Buffer, flags: ['\\Seen'] }]);

    const { repo } = await newRepo();
    const r = await backup(repo, [u]);
    await expectEqualsServer(repo, r, [u]);
    const tree = await repo.loadTree<MailboxTree>(
      ((await loadTenantTree(repo, r.snapshot as Snapshot)).mailboxes[0] as { tree: string }).tree,
    );
    const paths = tree.folders.map((f) => f.path);
    expect(paths).toEqual(
      expect.arrayContaining(['Projets', 'Projets/Été 2024', '顧客', 'A&B', 'Sent', 'Trash']),
    );
    // Stored with the raw (modified UTF-7, RFC 3501 §5.1.3) names too.
    expect(tree.folders.find((f) => f.path === 'Projets/Été 2024')?.rawPath).toBe('Projets/&AMk-t&AOk- 2024');
    expect(tree.folders.find((f) => f.path === 'A&B')?.rawPath).toBe('A&-B');
    const big = r.mailboxes[0]?.fetchedBytes ?? 0;
    expect(big).toBeGreaterThan(25 * 1024 * 1024);
    expect(r.snapshot?.stats.messages).toBe(75 + nasty.length + 3);
    // The header summary `find` relies on came through.
    const inbox = tree.folders.find((f) => f.path === 'INBOX');
    const entries = await loadFolderEntries(repo, inbox as NonNullable<typeof inbox>);
    expect(entries.some((e) => e.h.subject === 'Die Hasen und die Frösche (Microsoft Outlook 00)')).toBe(
      true,
    );

    // No change: one STATUS per folder, not a single body, the very same tree.
    const again = await backup(repo, [u]);
    expect(fetched(again)).toBe(0);
    expect(again.snapshot?.tree).toBe(r.snapshot?.tree);
    expect(again.mailboxes[0]?.carriedFolders).toBe(tree.folders.filter((f) => f.selectable).length);
  });

  it('follows adds, expunges, flag changes, moves, renames, delete+recreate and new users; never fetches twice', async () => {
    const [a, b] = [newUser('bk-inc'), newUser('bk-inc')] as [TestUser, TestUser];
    const fx = fixtureMessages();
    const seeded = await appendMessages(
      a,
      'INBOX',
      fx.slice(0, 6).map((raw) => ({ raw, internalDate: new Date('2024-01-02T03:04:05Z') })),
    );
    await appendMessages(a, 'Projets/Été 2024', [{ raw: fx[10] as Buffer, flags: ['Important'] }]);
    await appendMessages(a, '顧客', [
      { raw: fx[11] as Buffer, internalDate: new Date('2023-05-06T07:08:09Z') },
      { raw: fx[12] as Buffer, internalDate: new Date('2023-05-06T07:08:10Z') },
    ]);
    await appendMessages(b, 'INBOX', [{ raw: fx[20] as Buffer }]);
    const { repo } = await newRepo();
    const step = async (label: string, users: TestUser[], expectFetched: number) => {
      const r = await backup(repo, users);
      await expectEqualsServer(repo, r, users);
      expect(fetched(r), label).toBe(expectFetched);
      return r;
    };
    await step('initial', [a, b], 10);

    await appendMessages(a, 'INBOX', [{ raw: fx[30] as Buffer }]);
    await step('add', [a, b], 1);

    const c = await imapClientFor(a);
    try {
      await c.mailboxOpen('INBOX');
      await c.messageDelete(String(seeded[0]?.uid), { uid: true });
      await c.messageFlagsAdd(String(seeded[1]?.uid), ['\\Flagged', 'Urgent'], { uid: true });
      await c.messageFlagsRemove(String(seeded[2]?.uid), ['\\Seen'], { uid: true });
    } finally {
      await c.logout();
    }
    const flagsRun = await step('expunge + flags', [a, b], 0);
    expect(flagsRun.mailboxes[0]).toMatchObject({ expunged: 1, changedFlags: 1 });

    const m = await imapClientFor(a);
    try {
      await m.mailboxOpen('INBOX');
      await m.messageMove(String(seeded[3]?.uid), 'Archive', { uid: true });
      await m.mailboxRename('Projets/Été 2024', 'Projets/Été 2025');
    } finally {
      await m.logout();
    }
    const moveRun = await step('move + rename', [a, b], 0);
    expect(moveRun.mailboxes[0]?.matched).toBe(2);

    const before = (await serverState(a)).find((f) => f.path === '顧客');
    const d = await imapClientFor(a);
    try {
      await d.mailboxDelete('顧客');
    } finally {
      await d.logout();
    }
    await appendMessages(a, '顧客', [
      { raw: fx[11] as Buffer, internalDate: new Date('2023-05-06T07:08:09Z') },
      { raw: fx[12] as Buffer, internalDate: new Date('2023-05-06T07:08:10Z') },
    ]);
    const after = (await serverState(a)).find((f) => f.path === '顧客');
    expect(after?.uidValidity).not.toBe(before?.uidValidity);
    const remap = await step('delete + recreate (new UIDVALIDITY)', [a, b], 0);
    expect(remap.mailboxes[0]).toMatchObject({ matched: 2, refetched: 0 });

    const n = newUser('bk-inc');
    await appendMessages(n, 'INBOX', [{ raw: fx[40] as Buffer }, { raw: fx[41] as Buffer }]);
    const withNew = await step('new user', [a, b, n], 2);
    expect((await loadTenantTree(repo, withNew.snapshot as Snapshot)).mailboxes.map((x) => x.user)).toEqual(
      [a.user, b.user, n.user].sort(),
    );
    await step('no change', [a, b, n], 0);
  });

  it('stores a mail delivered to several users once (repository data bytes prove it)', async () => {
    const users = [newUser('bk-dup'), newUser('bk-dup'), newUser('bk-dup'), newUser('bk-dup')];
    const [big] = nastyMessages({ bigMB: 1 }).filter((x) => x.name === 'big');
    const copy = (u: TestUser) =>
      Buffer.concat([
        Buffer.from(
          `Return-Path: <bob@example.org>\r\nDelivered-To: ${u.user}\r\nReceived: by mx for <${u.user}>\r\n`,
        ),
        (big as { raw: Buffer }).raw,
      ]);
    for (const u of users) await appendMessages(u, 'INBOX', [{ raw: copy(u) }]);
    const { repo, store } = await newRepo();
    await backup(repo, users.slice(0, 1));
    const one = await dataBytes(store);
    const r = await backup(repo, users);
    await expectEqualsServer(repo, r, users);
    const four = await dataBytes(store);
    expect(one).toBeGreaterThan(700_000);
    // Three more copies of ~1.4 MB each cost their header blobs and a pack tail, not megabytes.
    expect(four - one).toBeLessThan(3 * 4096);
  });

  it('a mailbox that cannot log in makes the run partial; the others complete (CLI exit 3)', async () => {
    const good = [newUser('bk-part'), newUser('bk-part')];
    const bad = newUser('bk-part');
    for (const u of [...good, bad])
      await appendMessages(u, 'INBOX', [{ raw: fixtureMessages()[1] as Buffer }]);
    const dir = tempDir('bk-cli-');
    const repoDir = join(dir, 'repo');
    const wrongPw = join(dir, 'wrong.pw');
    writeFileSync(wrongPw, 'not the password\n', { mode: 0o600 });
    const usersFile = join(dir, 'tenant.users');
    writeFileSync(
      usersFile,
      `# tenant example.test\n${good[0]?.user}\n\n${bad.user},wrong.pw\n${good[1]?.user}\n`,
    );
    const s = imapServer();
    const run = cliOn(repoDir, { secrets: [PASSWORD, s.masterPassword, 'not the password'] });
    expect((await run(['init'])).code).toBe(0);
    // A dry run plans (one message per good mailbox) and stores nothing.
    const goodList = good.map((u) => u.user).join(',');
    const dry = await run([
      'backup',
      '--imap',
      s.url,
      '--imap-user',
      s.masterUser,
      '--users',
      goodList,
      '--dry-run',
    ]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('dry run: nothing stored; 2 messages would be fetched');
    expect((await run(['snapshots', '--json'])).stdout.trim()).toBe('[]');
    const imap = [
      '--imap',
      s.url,
      '--imap-user',
      s.masterUser,
      '--users-file',
      usersFile,
      '--tag',
      'nightly',
    ];
    const partial = await run(['backup', ...imap, '--json']);
    expect(partial.code, partial.stderr).toBe(3);
    const doc = JSON.parse(partial.stdout) as {
      status: string;
      snapshot: string;
      mailboxes: Array<{ user: string; state: string; new: number; error: { code: string } | null }>;
    };
    expect(doc.status).toBe('partial');
    expect(doc.mailboxes.map((m) => [m.user, m.state, m.error?.code ?? null])).toEqual([
      [good[0]?.user, 'ok', null],
      [bad.user, 'failed', 'IMAP_AUTH'],
      [good[1]?.user, 'ok', null],
    ]);
    const repo = await Repository.open(await openStore(repoDir), PASSWORD);
    const snap = await repo.resolveSnapshot(doc.snapshot);
    expect(snap.snapshot).toMatchObject({ status: 'partial', tenant: 'example.test', tags: ['nightly'] });
    expect(snap.snapshot.failures.map((f) => f.user)).toEqual([bad.user]);
    for (const u of good)
      expect(await snapshotView(repo, snap.snapshot, u.user)).toEqual(await serverState(u));
    await closeRepository(repo);

    // Human output names the failing mailbox; with only good users the run is complete (exit 0).
    const human = await run([
      'backup',
      '--imap',
      s.url,
      '--imap-user',
      s.masterUser,
      '--users',
      good.map((u) => u.user).join(','),
    ]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/snapshot [0-9a-f]{8} saved \(complete\)/);
    const none = await run([
      'backup',
      '--imap',
      s.url,
      '--imap-user',
      s.masterUser,
      '--users-file',
      usersFile,
      '--tenant',
      'other.test',
    ]);
    expect(none.code).toBe(3);
    expect(none.stderr).toContain(bad.user);
  });

  it('an unchanged tenant is backed up from the tree cache without loading the index (CLI)', async () => {
    const users = [newUser('bk-tc'), newUser('bk-tc')] as [TestUser, TestUser];
    const fx = fixtureMessages();
    for (const [i, u] of users.entries()) await appendMessages(u, 'INBOX', [{ raw: fx[50 + i] as Buffer }]);
    const dir = tempDir('bk-tc-');
    const repoDir = join(dir, 'repo');
    const cacheDir = join(dir, 'cache');
    const s = imapServer();
    const run = cliOn(repoDir, { env: { MAILARK_CACHE_DIR: cacheDir } });
    const backupArgs = ['backup', '--verbose', '--imap', s.url, '--imap-user', s.masterUser];
    const backupOf = (list: TestUser[]) => run([...backupArgs, '--users', list.map((u) => u.user).join(',')]);
    expect((await run(['init'])).code).toBe(0);
    const first = await backupOf(users);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('index loaded');
    const [repoId] = readdirSync(cacheDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
    const trees = join(cacheDir, repoId as string, 'trees');
    // The tenant tree and one tree per mailbox.
    expect(readdirSync(trees).filter((n) => /^[0-9a-f]{64}$/.test(n))).toHaveLength(3);

    const unchanged = await backupOf(users);
    expect(unchanged.code, unchanged.stderr).toBe(0);
    expect(unchanged.stderr).not.toContain('index loaded');

    // A damaged cached tree is read from the repository instead (and said so); nothing else changes.
    for (const name of readdirSync(trees).filter((n) => /^[0-9a-f]{64}$/.test(n)))
      writeFileSync(join(trees, name), 'not a tree');
    await appendMessages(users[0], 'INBOX', [{ raw: fx[52] as Buffer }]);
    const changed = await backupOf(users);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).toContain('index loaded');
    expect(changed.stderr).toMatch(/cache file .* is damaged/);

    const repo = await Repository.open(await openStore(repoDir), PASSWORD);
    try {
      const snaps = await repo.listSnapshots();
      expect(snaps).toHaveLength(3);
      // The no-change snapshot is the first one's tree exactly; the last one equals the server.
      expect(snaps[1]?.snapshot.tree).toBe(snaps[0]?.snapshot.tree);
      const last = snaps[2]?.snapshot as Snapshot;
      for (const u of users)
        expect(await snapshotView(repo, last, u.user), u.user).toEqual(await serverState(u));
    } finally {
      await closeRepository(repo);
    }
  });

  it('a fixtures + synthetic tenant: store PUTs per 1,000 messages and stored/raw ratio', async () => {
    const users = [newUser('bk-cost'), newUser('bk-cost'), newUser('bk-cost'), newUser('bk-cost')];
    const fx = fixtureMessages();
    const words =
      'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua rechnung facture projet réunion budget'.split(
        ' ',
      );
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const text = (n: number) => Array.from({ length: n }, () => words[rand(words.length)]).join(' ');
    const attachment = Buffer.from(Array.from({ length: 120_000 }, () => rand(256))).toString('base64');
    const synthetic = (u: TestUser, i: number) => {
      const list = i % 10 === 0; // a mailing-list post every user receives
      const id = list ? `list-${i}@example.test` : `${i}.${u.user}`;
      const withFile = i % 25 === 0;
      const head =
        `Return-Path: <sender@example.org>\r\nDelivered-To: ${u.user}\r\nFrom: Sender ${i} <s${i}@example.org>\r\n` +
        `To: ${list ? 'team@example.test' : u.user}\r\nSubject: ${text(5)}\r\nMessage-ID: <${id}>\r\n` +
        `Date: Mon, 3 Jun 2024 10:${String(i % 60).padStart(2, '0')}:00 +0000\r\nMIME-Version: 1.0\r\n`;
      if (!withFile)
        return Buffer.from(
          `${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${list ? `list post ${i} ` : ''}${text(list ? 300 : 100 + rand(900))}\r\n`,
        );
      return Buffer.from(
        `${head}Content-Type: multipart/mixed; boundary="m${i}"\r\n\r\n--m${i}\r\nContent-Type: text/plain\r\n\r\n${text(50)}\r\n` +
          `--m${i}\r\nContent-Type: application/pdf; name="report.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
          `${(attachment.match(/.{1,76}/g) ?? []).join('\r\n')}\r\n--m${i}--\r\n`,
      );
    };
    let messages = 0;
    for (const u of users) {
      const batch = [
        ...fx.map((raw) => ({ raw })),
        ...Array.from({ length: 225 }, (_, i) => ({ raw: synthetic(u, i) })),
      ];
      await appendMessages(u, 'INBOX', batch);
      messages += batch.length;
    }
    const store = new MemoryStore();
    const { repo } = await newRepo(store);
    const puts0 = store.counters.puts;
    const r = await backup(repo, users);
    await expectEqualsServer(repo, r, users);
    const puts = store.counters.puts - puts0;
    const raw = r.snapshot?.stats.bytes ?? 0;
    const stored = (await dataBytes(store)) + 0;
    const perThousand = (puts * 1000) / messages;
    // Dedup is exact: no blob is stored twice, however the mailboxes raced.
    const ids = [...repo.indexEntries()].map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    console.log(
      `cost: ${messages} messages, ${raw} raw bytes; ${puts} PUTs (${perThousand.toFixed(1)} per 1,000 messages); ` +
        `data packs ${stored} bytes = ${(stored / raw).toFixed(3)} of raw`,
    );
    expect(messages).toBe(4 * 300);
    expect(perThousand).toBeLessThan(10);
    expect(stored / raw).toBeLessThan(0.65);
  });

  it('backs up into a repository on the S3 server', async () => {
    const s3 = inject('s3');
    vi.stubEnv('AWS_ACCESS_KEY_ID', s3.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', s3.secretAccessKey);
    try {
      const u = newUser('bk-s3');
      await appendMessages(
        u,
        'INBOX',
        fixtureMessages()
          .slice(0, 20)
          .map((raw) => ({ raw, flags: ['\\Seen'] })),
      );
      const location = `s3://${s3.bucket}/${freshPrefix().replace(/\/$/, '')}`;
      const store = await openStore(location, {
        s3Endpoint: s3.endpoint,
        s3PathStyle: true,
        s3Region: s3.region,
        env: { ...process.env },
      });
      const { repo } = await newRepo(store);
      const r = await backup(repo, [u]);
      await expectEqualsServer(repo, r, [u]);
      const reopened = await Repository.open(store, PASSWORD);
      const again = await backup(reopened, [u]);
      expect(fetched(again)).toBe(0);
      expect(again.snapshot?.parent).toBe(r.snapshotId);
      await store.close();
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

beforeAll(() => {
  // Fail loudly (never skip) when the harness did not come up.
  expect(inject('dovecot').port).toBeGreaterThan(0);
});
