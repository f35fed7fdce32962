import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { parseMessageRef } from '../find/message-ref.js';
import type { Repository } from '../repo/repository.js';
import { newTestRepository, snapshotOf } from '../repo/test-repository.js';
import { compareFolderEntries, diffSnapshots, type SnapshotSide } from './diff-snapshots.js';
import type { BlobId, FolderNode, MailboxRef, MessageEntry } from './snapshot.js';
import { saveFolderPages, type TreeReader } from './snapshot-tree.js';

/** A message as a test states it: the bytes are derived from `body`, so equal bodies are equal mail. */
interface Msg {
  uid: number;
  body: string;
  flags?: string[];
  keywords?: string[];
}
interface Folder {
  uidValidity?: string;
  messages: Msg[];
}
type Tenant = Record<string, Record<string, Folder>>;

const bytesOf = (body: string) =>
  Buffer.from(`Subject: ${body}\r\nFrom: a@example.test\r\n\r\n${body} body\r\n`);
const sha = (body: string) => createHash('sha256').update(bytesOf(body)).digest('hex');

/** Stores a tenant as a real snapshot through Repository (MemoryStore, cheap KDF). */
async function save(repo: Repository, tenant: Tenant, time: string): Promise<SnapshotSide> {
  const mailboxes: MailboxRef[] = [];
  for (const user of Object.keys(tenant).sort()) {
    const folders: FolderNode[] = [];
    for (const path of Object.keys(tenant[user]!).sort()) {
      const f = tenant[user]![path]!;
      const entries: MessageEntry[] = [];
      for (const m of f.messages) {
        const bytes = bytesOf(m.body);
        entries.push({
          uid: m.uid,
          size: bytes.byteLength,
          sha256: sha(m.body),
          internalDate: '2024-05-01T08:00:00.000Z',
          flags: m.flags ?? [],
          keywords: m.keywords ?? [],
          content: [(await repo.saveBlob('data', bytes)).id],
          h: { subject: m.body, from: 'a@example.test' },
        });
      }
      folders.push({
        path,
        rawPath: path,
        delimiter: '/',
        flags: [],
        subscribed: true,
        selectable: true,
        uidValidity: f.uidValidity ?? '1700000000',
        messages: entries.length,
        bytes: entries.reduce((n, e) => n + e.size, 0),
        pages: await saveFolderPages(repo, entries),
      });
    }
    const tree = await repo.saveTree({ v: 1, user, folders });
    mailboxes.push({ user, tree, folders: folders.length, messages: 0, bytes: 0, state: 'ok' });
  }
  const snapshot = snapshotOf(await repo.saveTree({ v: 1, mailboxes }), time);
  return { id: await repo.saveSnapshot(snapshot), snapshot };
}

/** Counts tree loads, to prove identical subtrees are skipped. */
function counting(repo: Repository): TreeReader & { loads: BlobId[] } {
  const loads: BlobId[] = [];
  return {
    loads,
    loadBlob: (id) => repo.loadBlob(id),
    loadTree: <T>(id: BlobId) => {
      loads.push(id);
      return repo.loadTree<T>(id);
    },
  };
}

const base: Tenant = {
  'alice@example.test': {
    INBOX: {
      messages: [
        { uid: 1, body: 'invoice' },
        { uid: 2, body: 'lunch', flags: ['\\Seen'] },
        { uid: 3, body: 'report' },
      ],
    },
    'Projets/Été': { messages: [{ uid: 7, body: 'plan' }] },
  },
  'bob@example.test': { INBOX: { messages: [{ uid: 1, body: 'hello' }] } },
};

describe('diffSnapshots', () => {
  let repo: Repository;
  beforeEach(async () => {
    repo = (await newTestRepository()).repo;
  });

  it('reports added, expunged, flag and keyword changes, and folders added and removed', async () => {
    const a = await save(repo, base, '2024-05-01T02:00:00.000Z');
    const b = await save(
      repo,
      {
        'alice@example.test': {
          INBOX: {
            messages: [
              { uid: 1, body: 'invoice', flags: ['\\Seen'], keywords: ['$Forwarded'] },
              { uid: 2, body: 'lunch', flags: ['\\Seen'] },
              { uid: 4, body: 'new mail' },
            ],
          },
          Clients: { messages: [{ uid: 1, body: 'contract' }] },
        },
        'bob@example.test': { INBOX: { messages: [{ uid: 1, body: 'hello' }] } },
      },
      '2024-05-02T02:00:00.000Z',
    );
    const d = await diffSnapshots(repo, a, b);
    expect(d.from).toEqual({ id: a.id, time: a.snapshot.time });
    expect(d.added.map((m) => [m.user, m.folder, m.uid, m.sha256])).toEqual([
      ['alice@example.test', 'Clients', 1, sha('contract')],
      ['alice@example.test', 'INBOX', 4, sha('new mail')],
    ]);
    expect(d.expunged.map((m) => [m.folder, m.uid, m.subject, m.sha256])).toEqual([
      ['INBOX', 3, 'report', sha('report')],
      ['Projets/Été', 7, 'plan', sha('plan')],
    ]);
    // An expunged message's ref points into the older snapshot, where restore finds it.
    const ref = parseMessageRef(d.expunged[1]!.ref);
    expect(ref).toEqual({
      snapshot: a.id.slice(0, 8),
      user: 'alice@example.test',
      folder: 'Projets/Été',
      uidValidity: '1700000000',
      uid: 7,
    });
    expect(d.flagChanges).toHaveLength(1);
    expect(d.flagChanges[0]).toMatchObject({
      message: { folder: 'INBOX', uid: 1, flags: ['\\Seen'], keywords: ['$Forwarded'] },
      flags: { added: ['\\Seen'], removed: [] },
      keywords: { added: ['$Forwarded'], removed: [] },
    });
    expect(d.foldersAdded).toEqual([{ user: 'alice@example.test', folder: 'Clients', messages: 1 }]);
    expect(d.foldersRemoved).toEqual([{ user: 'alice@example.test', folder: 'Projets/Été', messages: 1 }]);
    expect(d.mailboxesAdded).toEqual([]);
    expect(d.summary).toMatchObject({ added: 2, expunged: 2, moved: 0, flagChanges: 1, foldersAdded: 1 });
    expect(d.summary.addedBytes).toBe(bytesOf('contract').byteLength + bytesOf('new mail').byteLength);
  });

  it('reports a message expunged from one folder and added to another as moved', async () => {
    const a = await save(repo, base, '2024-05-01T02:00:00.000Z');
    const b = await save(
      repo,
      {
        ...base,
        'alice@example.test': {
          INBOX: {
            messages: [
              { uid: 1, body: 'invoice' },
              { uid: 2, body: 'lunch', flags: ['\\Seen'] },
            ],
          },
          'Projets/Été': { messages: [{ uid: 7, body: 'plan' }] },
          Trash: { messages: [{ uid: 1, body: 'report', flags: ['\\Deleted'] }] },
        },
      },
      '2024-05-02T02:00:00.000Z',
    );
    const d = await diffSnapshots(repo, a, b);
    expect(d.moved.map((m) => [m.from.folder, m.from.uid, m.to.folder, m.to.uid])).toEqual([
      ['INBOX', 3, 'Trash', 1],
    ]);
    expect(d.added).toEqual([]);
    expect(d.expunged).toEqual([]);
    expect(d.foldersAdded.map((f) => f.folder)).toEqual(['Trash']);
  });

  it('matches by content after a UIDVALIDITY change instead of reporting everything as new', async () => {
    const a = await save(repo, base, '2024-05-01T02:00:00.000Z');
    const renumbered: Tenant = {
      ...base,
      'alice@example.test': {
        ...base['alice@example.test'],
        INBOX: {
          uidValidity: '1800000000',
          messages: [
            { uid: 1, body: 'lunch', flags: ['\\Seen'] },
            { uid: 2, body: 'report', flags: ['\\Flagged'] },
            { uid: 3, body: 'fresh' },
          ],
        },
      },
    };
    const d = await diffSnapshots(repo, a, await save(repo, renumbered, '2024-05-02T02:00:00.000Z'));
    expect(d.added.map((m) => [m.uid, m.sha256])).toEqual([[3, sha('fresh')]]);
    expect(d.expunged.map((m) => [m.uid, m.sha256])).toEqual([[1, sha('invoice')]]);
    expect(d.flagChanges.map((c) => [c.message.uid, c.flags])).toEqual([
      [2, { added: ['\\Flagged'], removed: [] }],
    ]);
  });

  it('reports new and removed mailboxes, and filters by user', async () => {
    const a = await save(repo, base, '2024-05-01T02:00:00.000Z');
    const { 'bob@example.test': _bob, ...withoutBob } = base;
    const b = await save(
      repo,
      { ...withoutBob, 'carol@example.test': { INBOX: { messages: [{ uid: 5, body: 'welcome' }] } } },
      '2024-05-02T02:00:00.000Z',
    );
    const d = await diffSnapshots(repo, a, b);
    expect(d.mailboxesAdded).toEqual(['carol@example.test']);
    expect(d.mailboxesRemoved).toEqual(['bob@example.test']);
    expect(d.added.map((m) => [m.user, m.uid])).toEqual([['carol@example.test', 5]]);
    expect(d.expunged.map((m) => [m.user, m.sha256])).toEqual([['bob@example.test', sha('hello')]]);

    const onlyCarol = await diffSnapshots(repo, a, b, { user: 'carol@example.test' });
    expect(onlyCarol.mailboxesRemoved).toEqual([]);
    expect(onlyCarol.expunged).toEqual([]);
    expect(onlyCarol.added).toHaveLength(1);
    await expect(diffSnapshots(repo, a, b, { user: 'nobody@example.test' })).rejects.toSatisfy(
      (e) => e instanceof MailarkError && e.code === 'NOT_FOUND' && e.message.includes('nobody@example.test'),
    );
  });

  it('reads nothing below the tenant tree when two snapshots hold the same mail', async () => {
    const a = await save(repo, base, '2024-05-01T02:00:00.000Z');
    const b = await save(repo, base, '2024-05-02T02:00:00.000Z');
    const reader = counting(repo);
    const d = await diffSnapshots(reader, a, b);
    expect(d.summary).toMatchObject({ added: 0, expunged: 0, moved: 0, flagChanges: 0, foldersAdded: 0 });
    expect(reader.loads).toEqual([a.snapshot.tree, b.snapshot.tree]);
  });

  it('reads only the folder that changed', async () => {
    const a = await save(repo, base, '2024-05-01T02:00:00.000Z');
    const changed: Tenant = {
      ...base,
      'alice@example.test': {
        ...base['alice@example.test'],
        'Projets/Été': { messages: [{ uid: 7, body: 'plan', flags: ['\\Seen'] }] },
      },
    };
    const b = await save(repo, changed, '2024-05-02T02:00:00.000Z');
    const reader = counting(repo);
    const d = await diffSnapshots(reader, a, b);
    expect(d.flagChanges.map((c) => c.message.folder)).toEqual(['Projets/Été']);
    // 2 tenant trees, 2 alice mailbox trees, 1 page each side of the changed folder; not INBOX, not bob.
    expect(reader.loads).toHaveLength(6);
  });
});

describe('compareFolderEntries', () => {
  const entry = (uid: number, body: string, flags: string[] = []): MessageEntry => ({
    uid,
    size: 1,
    sha256: sha(body),
    internalDate: '2024-05-01T00:00:00.000Z',
    flags,
    keywords: [],
    content: [],
    h: {},
  });

  it('treats a UID whose bytes changed as expunged and added (same UIDVALIDITY)', () => {
    const r = compareFolderEntries([entry(1, 'x')], [entry(1, 'y')], true);
    expect(r.added.map((e) => e.sha256)).toEqual([sha('y')]);
    expect(r.expunged.map((e) => e.sha256)).toEqual([sha('x')]);
  });

  it('pairs duplicate copies one to one when matching by content', () => {
    const r = compareFolderEntries(
      [entry(1, 'x'), entry(2, 'x'), entry(3, 'x')],
      [entry(10, 'x'), entry(11, 'x')],
      false,
    );
    expect(r.added).toEqual([]);
    expect(r.expunged.map((e) => e.uid)).toEqual([3]);
    expect(r.changed).toEqual([]);
  });
});
