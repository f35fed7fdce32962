import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { eventually } from '../eventually.js';
import { parseImapEndpoint } from '../imap/imap-endpoint.js';
import type { MailboxTree, Snapshot } from '../mail/snapshot.js';
import { loadTenantTree, readMessageBytes, walkMessages } from '../mail/snapshot-tree.js';
import { RecordingReporter } from '../progress.js';
import { Repository } from '../repo/repository.js';
import { newTestRepository } from '../repo/test-repository.js';
import type { MemoryStore } from '../store/memory-store.js';
import type { ObjectStore } from '../store/object-store.js';
import type { Checkpoint } from './backup-checkpoint.js';
import { FakeMailServer } from './fake-mail-server.js';
import { type BackupResult, isTransient, type RunBackupOptions, runBackup } from './run-backup.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const TENANT = 'example.com';

function mail(id: string, body = `Hello ${id}\r\n`, extra = ''): Buffer {
  return Buffer.from(
    `From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: Test ${id}\r\nMessage-ID: <${id}@example.org>\r\n` +
      `Date: Tue, 4 Jun 2024 10:00:00 +0200\r\n${extra}\r\n${body}`,
  );
}

/** Deterministic pseudo-random text (incompressible enough to measure dedup). */
function blob(n: number, seed: string): string {
  let out = '';
  for (let i = 0; out.length < n; i++) out += createHash('sha256').update(`${seed}${i}`).digest('base64');
  return out.slice(0, n);
}

async function setup() {
  const { repo, store } = await newTestRepository();
  const server = new FakeMailServer();
  const opts = (over: Partial<RunBackupOptions> = {}): RunBackupOptions => ({
    endpoint: parseImapEndpoint('imap://127.0.0.1:1143', { adminUser: 'admin', password: 'x' }),
    users: [{ user: 'alice@example.com' }, { user: 'bob@example.com' }],
    tenant: TENANT,
    toolVersion: '0.0.0-test',
    host: 'test-host',
    openSource: (u) => server.open(u.user),
    retry: { attempts: 3, baseDelayMs: 1 },
    ...over,
  });
  return { repo, store: store as MemoryStore, server, opts };
}

/** The snapshot as the server would show it: folder → [uid, sha256, flags+keywords, date]. */
async function snapshotState(repo: Repository, snapshot: Snapshot, user: string) {
  const out = new Map<string, Array<[number, string, string[], string]>>();
  const tenant = await loadTenantTree(repo, snapshot);
  const ref = tenant.mailboxes.find((m) => m.user === user);
  if (ref === undefined) return undefined;
  const tree = await repo.loadTree<MailboxTree>(ref.tree);
  for (const f of tree.folders) if (f.selectable) out.set(f.path, []);
  for await (const { folder, entry } of walkMessages(repo, snapshot, { users: [user] })) {
    const bytes = await readMessageBytes(repo, entry);
    out
      .get(folder.path)
      ?.push([entry.uid, sha(bytes), [...entry.flags, ...entry.keywords].sort(), entry.internalDate]);
  }
  return out;
}

async function keys(store: MemoryStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

function serverView(server: FakeMailServer, user: string) {
  const out = new Map<string, Array<[number, string, string[], string]>>();
  for (const [path, msgs] of server.state(user)) {
    out.set(
      path,
      msgs.map((m) => [m.uid, sha(m.raw), [...m.flags].sort(), m.internalDate]),
    );
  }
  return out;
}

async function expectMatchesServer(
  repo: Repository,
  server: FakeMailServer,
  r: BackupResult,
  users: string[],
) {
  expect(r.snapshot).toBeDefined();
  for (const u of users) {
    expect(await snapshotState(repo, r.snapshot as Snapshot, u), u).toEqual(serverView(server, u));
  }
}

function seed(server: FakeMailServer) {
  server.addUser('alice@example.com');
  server.addUser('bob@example.com');
  server.createFolder('alice@example.com', 'Projets', { selectable: false });
  server.createFolder('alice@example.com', 'Projets/Été 2024');
  server.createFolder('alice@example.com', 'Sent', { specialUse: '\\Sent' });
  for (let i = 1; i <= 5; i++)
    server.append('alice@example.com', 'INBOX', mail(`a${i}`), i % 2 ? ['\\Seen'] : []);
  server.append('alice@example.com', 'Projets/Été 2024', mail('p1'), ['\\Flagged', '$Label1']);
  server.append('alice@example.com', 'Sent', mail('s1'), ['\\Seen'], '2024-05-01T08:00:00.000Z');
  server.append('bob@example.com', 'INBOX', mail('b1', `${blob(200_000, 'big')}\r\n`));
}

describe('runBackup on a fake server', () => {
  it('captures every mailbox exactly, then a no-change run fetches nothing and shares every tree', async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    const first = await runBackup(repo, opts());
    expect(first.status).toBe('complete');
    expect(first.snapshot?.failures).toEqual([]);
    await expectMatchesServer(repo, server, first, ['alice@example.com', 'bob@example.com']);
    expect(first.snapshot?.stats).toMatchObject({
      mailboxes: 2,
      messages: 8,
      fetchedMessages: 8,
      newMessages: 8,
    });
    expect(server.counters.bodies).toBe(8);
    const alice = (await loadTenantTree(repo, first.snapshot as Snapshot)).mailboxes[0];
    const tree = await repo.loadTree<MailboxTree>(alice?.tree as string);
    const projets = tree.folders.find((f) => f.path === 'Projets');
    expect(projets).toMatchObject({ selectable: false, flags: ['\\Noselect'], messages: 0 });
    expect(tree.folders.find((f) => f.path === 'Sent')?.specialUse).toBe('\\Sent');

    const listings = server.counters.listings;
    const second = await runBackup(repo, opts());
    expect(second.status).toBe('complete');
    expect(server.counters.bodies).toBe(8);
    expect(server.counters.listings).toBe(listings); // every folder carried on STATUS alone
    expect(second.snapshot?.tree).toBe(first.snapshot?.tree);
    expect(second.snapshot?.parent).toBe(first.snapshotId);
    expect(second.mailboxes.map((m) => m.carriedFolders)).toEqual([3, 1]);
    expect(second.checkpoints).toBe(0);
  });

  it('starts the next mailbox while the last one logs out, and returns once every connection is closed', async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    const events: string[] = [];
    const result = await runBackup(
      repo,
      opts({
        concurrency: 1,
        openSource: async (u) => {
          events.push(`open ${u.user}`);
          const source = await server.open(u.user);
          const close = source.close.bind(source);
          source.close = async () => {
            await new Promise((r) => setTimeout(r, 30)); // a slow LOGOUT
            await close();
            events.push(`closed ${u.user}`);
          };
          return source;
        },
      }),
    );
    expect(result.status).toBe('complete');
    expect(events).toEqual([
      'open alice@example.com',
      'open bob@example.com',
      'closed alice@example.com',
      'closed bob@example.com',
    ]);
  });

  it('logs the first mailboxes in and lists them while the repository opens; plans none before', async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    server.addUser('carol@example.com');
    const events: string[] = [];
    let open!: () => void;
    const opening = new Promise<Repository>((resolve) => {
      open = () => {
        events.push('repository open');
        resolve(repo);
      };
    });
    const run = runBackup(
      opening,
      opts({
        concurrency: 2,
        users: [{ user: 'alice@example.com' }, { user: 'bob@example.com' }, { user: 'carol@example.com' }],
        openSource: async (u) => {
          events.push(`login ${u.user}`);
          const source = await server.open(u.user);
          const list = source.listFolders.bind(source);
          source.listFolders = () => {
            events.push(`list ${u.user}`);
            return list();
          };
          const status = source.statusAll.bind(source);
          source.statusAll = (paths) => {
            events.push(`status ${u.user}`);
            return status(paths);
          };
          return source;
        },
      }),
    );
    // Two logins (the concurrency) and their folder lists, nothing else, while the repository opens.
    await eventually(() => expect(events.length).toBeGreaterThanOrEqual(4));
    await new Promise((r) => setTimeout(r, 20)); // room for a wrong fifth event to show
    expect(events).toEqual([
      'login alice@example.com',
      'login bob@example.com',
      'list alice@example.com',
      'list bob@example.com',
    ]);
    open();
    const result = await run;
    expect(result.status).toBe('complete');
    expect(events.slice(4, 7)).toEqual([
      'repository open',
      'status alice@example.com',
      'status bob@example.com',
    ]);
    // Each mailbox listed once; carol, not started early, logs in when a slot is free.
    expect(events.filter((e) => e.startsWith('list')).sort()).toEqual([
      'list alice@example.com',
      'list bob@example.com',
      'list carol@example.com',
    ]);
    expect(events.indexOf('login carol@example.com')).toBeGreaterThan(events.indexOf('repository open'));
    await expectMatchesServer(repo, server, result, ['alice@example.com', 'bob@example.com']);
  });

  it('a repository that fails to open: its error, and the early logins logged out', async () => {
    const { server, opts } = await setup();
    seed(server);
    const closed: string[] = [];
    const refused = new MailarkError('WRONG_PASSWORD', 'wrong password');
    const run = runBackup(
      new Promise<Repository>((_resolve, reject) => setTimeout(() => reject(refused), 10)),
      opts({
        openSource: async (u) => {
          const source = await server.open(u.user);
          source.close = async () => {
            closed.push(u.user);
          };
          return source;
        },
      }),
    );
    await expect(run).rejects.toBe(refused);
    expect(closed.sort()).toEqual(['alice@example.com', 'bob@example.com']);
  });

  it('follows adds, expunges, flag changes, moves, renames, delete+recreate and a new user', async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    await runBackup(repo, opts());
    const a = 'alice@example.com';
    server.append(a, 'INBOX', mail('a6', 'A size no stored message has\r\n'));
    server.expunge(a, 'INBOX', 2);
    server.setFlags(a, 'INBOX', 3, ['\\Seen', '\\Answered', '$Forwarded']);
    server.move(a, 'INBOX', 4, 'Sent');
    server.renameFolder(a, 'Projets/Été 2024', 'Projets/Été 2025');
    // Delete and recreate Sent: a new UIDVALIDITY, same messages re-delivered (same bytes and dates).
    const sent = server.state(a).get('Sent') ?? [];
    server.deleteFolder(a, 'Sent');
    server.createFolder(a, 'Sent', { specialUse: '\\Sent' });
    for (const m of sent) server.append(a, 'Sent', m.raw, m.flags, m.internalDate);
    server.addUser('carol@example.com');
    server.append('carol@example.com', 'INBOX', mail('c1'));
    const bodies = server.counters.bodies;
    const metaMessages = server.counters.metaMessages;

    const users = [{ user: a }, { user: 'bob@example.com' }, { user: 'carol@example.com' }];
    const r = await runBackup(repo, opts({ users }));
    expect(r.status).toBe('complete');
    await expectMatchesServer(
      repo,
      server,
      r,
      users.map((u) => u.user),
    );
    // Only a6 and c1 are new content: the moved, renamed and re-delivered ones match stored content.
    expect(server.counters.bodies - bodies).toBe(2);
    // Message-IDs are asked only where a stored message has the listed size: not for a6 or c1.
    // (p1, s1 and a4 are asked and matched.)
    expect(server.counters.metaMessages - metaMessages).toBe(3);
    const alice = r.mailboxes[0];
    expect(alice).toMatchObject({ newMessages: 1, changedFlags: 1, refetched: 0 });
    expect(alice?.matched).toBe(3); // renamed p1, and s1 + moved a4 re-delivered into the new Sent
    expect(alice?.expunged).toBeGreaterThanOrEqual(2);
  });

  it('re-maps after a UIDVALIDITY change: re-downloads only what has no Message-ID match, and counts it', async () => {
    const { repo, server, opts } = await setup();
    const a = 'alice@example.com';
    server.addUser(a);
    server.append(a, 'INBOX', mail('x1'));
    server.append(a, 'INBOX', Buffer.from('Subject: no id\r\n\r\nbody\r\n'));
    await runBackup(repo, opts({ users: [{ user: a }] }));
    const inbox = server.state(a).get('INBOX') ?? [];
    server.deleteFolder(a, 'INBOX');
    server.createFolder(a, 'INBOX');
    for (const m of inbox) server.append(a, 'INBOX', m.raw, m.flags, m.internalDate);
    const before = server.counters.bodies;
    const r = await runBackup(repo, opts({ users: [{ user: a }] }));
    await expectMatchesServer(repo, server, r, [a]);
    expect(server.counters.bodies - before).toBe(1);
    expect(r.mailboxes[0]).toMatchObject({ matched: 1, refetched: 1, newMessages: 0, expunged: 0 });
  });

  it('works the same without CONDSTORE (UID+FLAGS diff) and with CONDSTORE but no QRESYNC', async () => {
    for (const mode of ['plain', 'condstore-only'] as const) {
      const { repo, server, opts } = await setup();
      server.condstore = mode === 'condstore-only';
      server.qresync = false;
      seed(server);
      await runBackup(repo, opts());
      server.expunge('alice@example.com', 'INBOX', 1);
      server.setFlags('alice@example.com', 'INBOX', 5, ['Important']);
      server.append('bob@example.com', 'INBOX', mail('b2'));
      const before = server.counters.bodies;
      const r = await runBackup(repo, opts());
      await expectMatchesServer(repo, server, r, ['alice@example.com', 'bob@example.com']);
      expect(server.counters.bodies - before, mode).toBe(1);
      expect(r.mailboxes[0], mode).toMatchObject({ expunged: 1, changedFlags: 1 });
      const again = server.counters.bodies;
      const r2 = await runBackup(repo, opts());
      expect(server.counters.bodies, mode).toBe(again);
      expect(r2.snapshot?.tree, mode).toBe(r.snapshot?.tree);
    }
  });

  it('stores a mail delivered to several users about once', async () => {
    const { repo, server, opts } = await setup();
    const users = ['u1', 'u2', 'u3', 'u4', 'u5'].map((u) => `${u}@example.com`);
    const body = `--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n${blob(300_000, 'pdf')}\r\n--b--\r\n`;
    for (const u of users) {
      server.addUser(u);
      server.append(
        u,
        'INBOX',
        mail('memo', body, `Delivered-To: ${u}\r\nContent-Type: multipart/mixed; boundary=b\r\n`),
      );
    }
    // One copy alone, in a fresh repository, for reference.
    const alone = await newTestRepository();
    const single = new FakeMailServer();
    single.addUser('x@example.com');
    single.append(
      'x@example.com',
      'INBOX',
      server.state(users[0] as string).get('INBOX')?.[0]?.raw as Buffer,
    );
    const one = await runBackup(alone.repo, {
      ...opts(),
      users: [{ user: 'x@example.com' }],
      openSource: (u) => single.open(u.user),
    });
    const oneCopy = one.snapshot?.stats.storedBytes ?? 0;
    expect(oneCopy).toBeGreaterThan(200_000); // base64 of random bytes: deflate keeps ~3/4

    const r = await runBackup(repo, opts({ users: users.map((user) => ({ user })) }));
    const raw = r.mailboxes.reduce((n, m) => n + m.fetchedBytes, 0);
    const total = r.snapshot?.stats.storedBytes ?? 0;
    // The four extra copies cost a header blob each (a few hundred bytes sealed), not 300 KB each.
    expect(total - oneCopy).toBeLessThan(4 * 1000);
    expect(total / raw).toBeLessThan(0.2);
  });

  it('skips a folder deleted during the run (NONEXISTENT) and completes', async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    server.afterStatus = (user) => {
      if (user === 'alice@example.com') server.deleteFolder(user, 'Sent');
    };
    const r = await runBackup(repo, opts());
    expect(r.status).toBe('complete');
    await expectMatchesServer(repo, server, r, ['alice@example.com', 'bob@example.com']);
    const alice = await snapshotState(repo, r.snapshot as Snapshot, 'alice@example.com');
    expect(alice?.has('Sent')).toBe(false);
  });

  it('marks a failing mailbox, carries its last good tree as stale, and never drops it', async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    const first = await runBackup(repo, opts());
    const firstBob = (await loadTenantTree(repo, first.snapshot as Snapshot)).mailboxes[1];
    server.refuse.add('bob@example.com');
    server.append('alice@example.com', 'INBOX', mail('a7'));
    const r = await runBackup(repo, opts());
    expect(r.status).toBe('partial');
    expect(r.snapshot?.status).toBe('partial');
    expect(r.snapshot?.failures).toEqual([
      { user: 'bob@example.com', code: 'IMAP_AUTH', message: expect.any(String) },
    ]);
    expect(r.mailboxes[1]).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'IMAP_AUTH' } });
    const refs = (await loadTenantTree(repo, r.snapshot as Snapshot)).mailboxes;
    expect(refs[1]).toEqual({ ...firstBob, state: 'stale', staleFrom: first.snapshot?.time });
    await expectMatchesServer(repo, server, r, ['alice@example.com']);
    // Still failing next time: staleFrom keeps pointing at the last good capture.
    const r2 = await runBackup(repo, opts());
    expect((await loadTenantTree(repo, r2.snapshot as Snapshot)).mailboxes[1]?.staleFrom).toBe(
      first.snapshot?.time,
    );
  });

  it('reports progress: mailboxes done/total, messages of the expected, bytes fetched and stored', async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    const reporter = new RecordingReporter();
    const r = await runBackup(repo, opts({ reporter, concurrency: 1 }));
    const last = reporter.states.at(-1);
    const stored = r.mailboxes.reduce((n, m) => n + m.storedBytes, 0);
    expect(stored).toBeGreaterThan(0);
    expect(last).toMatchObject({ phase: 'backup', done: 2, total: 2, messages: 8, totalMessages: 8 });
    expect(last?.bytes).toBe(r.mailboxes.reduce((n, m) => n + m.fetchedBytes, 0));
    expect(last?.storedBytes).toBe(stored);
    // alice's 7 messages are expected from her STATUS round, before the first one is fetched.
    expect(reporter.states[0]).toMatchObject({ done: 0, messages: 0, totalMessages: 7 });
    // A no-change run expects nothing.
    const again = new RecordingReporter();
    await runBackup(repo, opts({ reporter: again }));
    expect(again.states.at(-1)).toMatchObject({ done: 2, messages: 0, totalMessages: 0, storedBytes: 0 });
  });

  it('skips a damaged checkpoint with a warning naming it and how to delete it, and completes', async () => {
    const { repo, store, server, opts } = await setup();
    seed(server);
    const id = await repo.saveObject('checkpoints', { v: 1, kind: 'backup', tenant: TENANT, mailboxes: [] });
    const bytes = Uint8Array.from(store.raw(`checkpoints/${id}`) as Uint8Array);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 0xff;
    store.corrupt(`checkpoints/${id}`, bytes);
    const reporter = new RecordingReporter();
    const r = await runBackup(repo, opts({ reporter }));
    expect(r.status).toBe('complete');
    await expectMatchesServer(repo, server, r, ['alice@example.com', 'bob@example.com']);
    const warnings = reporter.logs.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toContain(`checkpoint checkpoints/${id} is damaged and was skipped`);
    expect(warnings[0]?.message).toContain(`rm REPO/checkpoints/${id}`);
  });

  it("starts from the snapshot when a checkpoint's mailbox tree cannot be read", async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    const first = await runBackup(repo, opts());
    const cp: Checkpoint = {
      v: 1,
      kind: 'backup',
      tenant: TENANT,
      parent: first.snapshotId as string,
      runStarted: new Date().toISOString(),
      time: new Date(Date.now() + 1000).toISOString(),
      mailboxes: [
        {
          user: 'alice@example.com',
          tree: 'ab'.repeat(32),
          complete: false,
          folders: 1,
          messages: 1,
          bytes: 1,
          capturedAt: new Date().toISOString(),
        },
      ],
    };
    await repo.saveObject('checkpoints', cp);
    server.append('alice@example.com', 'INBOX', mail('a9'));
    const reporter = new RecordingReporter();
    const r = await runBackup(repo, opts({ reporter }));
    expect(r.status).toBe('complete');
    expect(r.mailboxes[0]?.newMessages).toBe(1); // from the snapshot: only the new mail is fetched
    await expectMatchesServer(repo, server, r, ['alice@example.com', 'bob@example.com']);
    expect(reporter.logs.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual([
      expect.stringContaining("alice@example.com: the checkpoint's tree abababab cannot be read"),
    ]);
  });

  it('saves nothing when every mailbox fails and none was captured before', async () => {
    const { repo, store, server, opts } = await setup();
    const snaps = await repo.listSnapshots();
    server.refuse.add('alice@example.com');
    const reporter = new RecordingReporter();
    const r = await runBackup(repo, opts({ users: [{ user: 'alice@example.com' }], reporter }));
    expect(r.status).toBe('failed');
    expect(r.snapshotId).toBeUndefined();
    // The result carries the error and its fix; the front end shows them once (core logs it at debug).
    expect(r.mailboxes[0]?.error).toEqual({
      code: 'IMAP_AUTH',
      message: 'login as alice@example.com refused',
      hint: 'check the admin credentials',
    });
    expect(reporter.logs.filter((l) => l.level !== 'debug' && l.message.includes('refused'))).toEqual([]);
    expect(await repo.listSnapshots()).toEqual(snaps);
    expect(await keys(store, 'locks/')).toEqual([]);
  });

  it('retries a transient failure from where it got to, without re-downloading', async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    let failed = false;
    server.beforeBody = (user, uid) => {
      if (user === 'alice@example.com' && uid === 4 && !failed) {
        failed = true;
        throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
      }
    };
    const reporter = new RecordingReporter();
    const r = await runBackup(repo, opts({ reporter }));
    expect(r.status).toBe('complete');
    expect(r.mailboxes[0]?.attempts).toBe(2);
    expect(server.counters.bodies).toBe(8);
    await expectMatchesServer(repo, server, r, ['alice@example.com', 'bob@example.com']);
    // The retry is announced without restating the error (shown once, if the mailbox finally fails).
    expect(reporter.logs.filter((l) => l.level !== 'debug').map((l) => l.message)).toEqual([
      'backup of example.com: 2 mailbox(es)',
      'alice@example.com: attempt 1 of 3 failed (connection reset); retrying in 0 s',
    ]);
  });

  it('fails an attempt whose blob cannot be stored while later messages are in flight, then retries', async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    const save = repo.saveBlob.bind(repo);
    let dataBlobs = 0;
    repo.saveBlob = async (type, plain) => {
      if (type === 'data' && ++dataBlobs === 5) throw new Error('seal failed');
      return save(type, plain);
    };
    const r = await runBackup(repo, opts());
    expect(r.status).toBe('complete');
    expect(r.mailboxes.map((m) => m.attempts).sort()).toEqual([1, 2]);
    await expectMatchesServer(repo, server, r, ['alice@example.com', 'bob@example.com']);
  });

  it('on abort: writes a checkpoint, no snapshot; the next run resumes without re-downloading', async () => {
    const { repo, server, opts } = await setup();
    seed(server);
    const ac = new AbortController();
    server.beforeBody = (_user, _uid, served) => {
      if (served === 4) ac.abort();
    };
    await expect(runBackup(repo, opts({ signal: ac.signal, concurrency: 1 }))).rejects.toMatchObject({
      code: 'INTERRUPTED',
    });
    expect(await repo.listSnapshots()).toEqual([]);
    const ids = await repo.listObjects('checkpoints');
    expect(ids).toHaveLength(1);
    const cp = await repo.loadObject<Checkpoint>('checkpoints', ids[0] as string);
    expect(cp.mailboxes.map((m) => [m.user, m.complete, m.messages])).toEqual([
      ['alice@example.com', false, 4],
    ]);

    server.beforeBody = undefined;
    const r = await runBackup(repo, opts());
    expect(r.status).toBe('complete');
    // 4 stored before the abort, 1 in flight when it came (discarded), the remaining 4 after.
    expect(server.counters.bodies).toBe(9);
    await expectMatchesServer(repo, server, r, ['alice@example.com', 'bob@example.com']);
    expect(await repo.listObjects('checkpoints')).toEqual([]);
  });

  it('survives a kill mid-mailbox: periodic checkpoints hold what was flushed', async () => {
    const { repo, store, server, opts } = await setup();
    server.addUser('alice@example.com');
    for (let i = 1; i <= 20; i++)
      server.append('alice@example.com', 'INBOX', mail(`k${i}`, `${blob(20_000, `k${i}`)}\r\n`));
    let stall: () => void = () => {};
    server.beforeBody = (_u, _uid, served) =>
      served === 12 ? new Promise<void>((resolve) => (stall = resolve)) : undefined;
    const users = [{ user: 'alice@example.com' }];
    // The "killed" run: never finishes; its repository object (and anything unflushed) is abandoned.
    // It works through a store that, once killed, completes nothing more: messages it was still
    // storing when the server stalled must not land later, as a dead process's would not.
    let dead = false;
    let lastOp = Date.now();
    const hang = <T>(op: () => Promise<T>): Promise<T> => {
      if (dead) return new Promise<T>(() => {});
      lastOp = Date.now();
      return op().finally(() => {
        lastOp = Date.now();
      });
    };
    const mortal: ObjectStore = {
      location: store.location,
      put: (k, d) => hang(() => store.put(k, d)),
      get: (k, r) => hang(() => store.get(k, r)),
      stat: (k) => hang(() => store.stat(k)),
      list: (p) => store.list(p),
      delete: (k) => hang(() => store.delete(k)),
      close: () => store.close(),
    };
    const doomed = await Repository.open(mortal, 'test password');
    const progress = new RecordingReporter();
    void runBackup(doomed, opts({ users, checkpointBytes: 50_000, reporter: progress })).catch(() => {});
    // Killed once it is stuck on the 12th body with the 11 before it stored and checkpointed (stores
    // finish after the next message is read, and a checkpoint follows the store that made it due).
    const stored = () => progress.states.at(-1)?.messages ?? 0;
    while (server.counters.bodies < 12 || stored() < 11 || Date.now() - lastOp < 300)
      await new Promise((r) => setTimeout(r, 10));
    dead = true;
    const ids = await repo.listObjects('checkpoints');
    expect(ids.length).toBe(1);

    const reopened = await Repository.open(store, 'test password');
    server.beforeBody = undefined;
    const before = server.counters.bodies;
    const r = await runBackup(reopened, opts({ users }));
    expect(r.status).toBe('complete');
    await expectMatchesServer(reopened, server, r, ['alice@example.com']);
    // Checkpoints every ~50 KB: at most the messages after the last checkpoint are fetched again.
    expect(server.counters.bodies - before).toBeLessThanOrEqual(20 - 12 + 3);
    expect(server.counters.bodies - before).toBeGreaterThanOrEqual(8);
    expect(await reopened.listObjects('checkpoints')).toEqual([]);
    stall(); // the killed run's store never answers again: it stays stuck, as a dead process would
  });

  it('checkpoints finished mailboxes only once enough was fetched since the last checkpoint', async () => {
    // alice fetches ~1.5 KB, then bob ~200 KB; a finished mailbox is due after checkpointBytes/8.
    for (const [checkpointBytes, expected] of [
      [undefined, 0],
      [1_000_000, 1],
      [8_000, 2],
    ] as const) {
      const { repo, store, server, opts } = await setup();
      seed(server);
      const puts = store.counters.puts;
      const over = { concurrency: 1, ...(checkpointBytes === undefined ? {} : { checkpointBytes }) };
      const r = await runBackup(repo, opts(over));
      expect(r.status).toBe('complete');
      expect(r.checkpoints).toBe(expected);
      // Without checkpoints: lock, data pack, tree pack, index, snapshot.
      if (expected === 0) expect(store.counters.puts - puts).toBe(5);
    }
  });

  it('dry run: plans and counts, stores nothing', async () => {
    const { repo, store, server, opts } = await setup();
    seed(server);
    const puts = store.counters.puts;
    const r = await runBackup(repo, opts({ dryRun: true }));
    expect(r.dryRun).toBe(true);
    expect(r.snapshotId).toBeUndefined();
    expect(server.counters.bodies).toBe(0);
    expect(r.mailboxes.map((m) => m.newMessages)).toEqual([7, 1]);
    expect(r.mailboxes[1]?.fetchedBytes).toBe(server.state('bob@example.com').get('INBOX')?.[0]?.raw.length);
    await repo.flush();
    for (const prefix of ['data/', 'index/', 'snapshots/', 'checkpoints/'])
      expect(await keys(store, prefix)).toEqual([]);
    expect(store.counters.puts - puts).toBeLessThanOrEqual(2); // the lock record (and its refresh), nothing else
  });

  it('rejects bad input before touching anything', async () => {
    const { repo, opts } = await setup();
    await expect(runBackup(repo, opts({ users: [] }))).rejects.toMatchObject({ code: 'USAGE' });
    await expect(runBackup(repo, opts({ users: [{ user: 'a@x' }, { user: 'a@x' }] }))).rejects.toMatchObject({
      code: 'USAGE',
    });
    await expect(runBackup(repo, opts({ tenant: ' ' }))).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('classifies errors for retry', () => {
    expect(isTransient(new TypeError('bug'))).toBe(false);
    expect(isTransient(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
  });
});
