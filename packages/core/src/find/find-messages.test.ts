import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import {
  type BlobId,
  canonicalJson,
  type FolderNode,
  type HeaderSummary,
  type MailboxTree,
  type MessageEntry,
  SNAPSHOT_VERSION,
  type Snapshot,
  type TenantTree,
} from '../mail/snapshot.js';
import { readMessageBytes, saveFolderPages, type TreeWriter } from '../mail/snapshot-tree.js';
import { newTestRepository, saveTestSnapshot, snapshotOf } from '../repo/test-repository.js';
import { findMessages, type SnapshotSource } from './find-messages.js';
import { parseMessageQuery } from './message-query.js';
import { parseMessageRef } from './message-ref.js';
import { resolveMessageRef } from './resolve-message-ref.js';

/**
 * A repository stand-in: content-addressed blobs in a Map, snapshots in a list. It records every
 * tree id loaded, so tests can prove find reads only the subtrees a query concerns.
 */
class SyntheticRepo implements TreeWriter, SnapshotSource {
  readonly blobs = new Map<BlobId, Uint8Array>();
  readonly snapshots: Array<{ id: string; snapshot: Snapshot }> = [];
  loaded: BlobId[] = [];

  private put(bytes: Uint8Array): BlobId {
    const id = createHash('sha256').update('k').update(bytes).digest('hex');
    this.blobs.set(id, bytes);
    return id;
  }
  async saveData(bytes: Uint8Array): Promise<BlobId> {
    return this.put(bytes);
  }
  async saveTree(value: unknown): Promise<BlobId> {
    return this.put(Buffer.from(canonicalJson(value)));
  }
  async loadBlob(id: BlobId): Promise<Uint8Array> {
    const b = this.blobs.get(id);
    if (b === undefined) throw new MailarkError('NOT_FOUND', `blob ${id}`);
    return b;
  }
  async loadTree<T>(id: BlobId): Promise<T> {
    this.loaded.push(id);
    return JSON.parse(Buffer.from(await this.loadBlob(id)).toString('utf8')) as T;
  }
  async listSnapshots() {
    return [...this.snapshots];
  }
  async resolveSnapshot(ref: string) {
    if (ref === 'latest') {
      const last = this.snapshots.at(-1);
      if (last === undefined) throw new MailarkError('NOT_FOUND', 'no snapshot');
      return last;
    }
    const hits = this.snapshots.filter((s) => s.id.startsWith(ref));
    if (hits.length !== 1 || ref.length < 4) throw new MailarkError('NOT_FOUND', `no snapshot ${ref}`);
    return hits[0] as { id: string; snapshot: Snapshot };
  }
}

interface Msg {
  uid: number;
  body: string;
  date: string;
  flags?: string[];
  keywords?: string[];
  h: HeaderSummary;
}
type Spec = Record<string, Record<string, { uidValidity: string; messages: Msg[] }>>;

async function entryOf(repo: SyntheticRepo, m: Msg): Promise<MessageEntry> {
  const bytes = Buffer.from(m.body);
  const split = bytes.indexOf('\r\n\r\n') + 4;
  return {
    uid: m.uid,
    size: bytes.byteLength,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    internalDate: m.date,
    flags: m.flags ?? [],
    keywords: m.keywords ?? [],
    content: [await repo.saveData(bytes.subarray(0, split)), await repo.saveData(bytes.subarray(split))],
    h: m.h,
  };
}

let seq = 0;
async function snapshot(repo: SyntheticRepo, time: string, spec: Spec): Promise<string> {
  const refs = [];
  for (const user of Object.keys(spec).sort()) {
    const folders: FolderNode[] = [];
    for (const path of Object.keys(spec[user] ?? {}).sort()) {
      const f = (spec[user] as Spec[string])[path] as Spec[string][string];
      const entries = await Promise.all(f.messages.map((m) => entryOf(repo, m)));
      folders.push({
        path,
        rawPath: path,
        delimiter: '/',
        flags: [],
        subscribed: true,
        selectable: true,
        uidValidity: f.uidValidity,
        messages: entries.length,
        bytes: entries.reduce((n, e) => n + e.size, 0),
        pages: await saveFolderPages(repo, entries),
      });
    }
    const tree: MailboxTree = { v: SNAPSHOT_VERSION, user, folders };
    refs.push({
      user,
      tree: await repo.saveTree(tree),
      folders: folders.length,
      messages: 0,
      bytes: 0,
      state: 'ok' as const,
    });
  }
  const tenant: TenantTree = { v: SNAPSHOT_VERSION, mailboxes: refs };
  const snap: Snapshot = snapshotOf(await repo.saveTree(tenant), time, 'example.com');
  const id = createHash('sha256').update(`snap${seq++}`).digest('hex');
  repo.snapshots.push({ id, snapshot: snap });
  return id;
}

const msg = (uid: number, subject: string, from: string, date: string, extra: Partial<Msg> = {}): Msg => ({
  uid,
  body: `Message-ID: <${subject.replace(/\W/g, '')}@ex>\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`,
  date,
  h: { messageId: `${subject.replace(/\W/g, '')}@ex`, subject, from },
  ...extra,
});

const invoice = msg(3, 'Facture 42', 'Bob <bob@ex>', '2026-11-21T08:00:00.000Z', {
  h: { messageId: 'Facture42@ex', subject: 'Facture 42', from: 'Bob <bob@ex>', attachments: ['facture.pdf'] },
});
const hello = msg(1, 'Hello', 'Carol <carol@ex>', '2026-11-19T08:00:00.000Z');
const minutes = msg(2, 'Minutes', 'Dan <dan@ex>', '2026-11-20T08:00:00.000Z');
const contract = msg(1, 'Contrat été', 'Eve <eve@ex>', '2026-11-18T08:00:00.000Z');
const flash = msg(4, 'Flash sale', 'Shop <shop@ex>', '2026-11-21T10:00:00.000Z');

describe('findMessages', () => {
  let repo: SyntheticRepo;
  let s1: string;
  let s2: string;
  let s3: string;

  // s1: alice has hello, minutes, invoice in INBOX and contract in Clients/Été; bob has one message.
  // s2: hello flagged \Seen, flash arrived; minutes moved to Archive.
  // s3: invoice, flash and the whole Clients/Été folder are gone.
  beforeEach(async () => {
    repo = new SyntheticRepo();
    const bob = {
      INBOX: {
        uidValidity: '9',
        messages: [msg(1, 'Lunch', 'Alice <alice@ex>', '2026-11-20T12:00:00.000Z')],
      },
    };
    s1 = await snapshot(repo, '2026-11-20T02:00:00.000Z', {
      'alice@ex': {
        INBOX: { uidValidity: '100', messages: [hello, minutes, invoice] },
        'Clients/Été': { uidValidity: '100', messages: [contract] },
      },
      'bob@ex': bob,
    });
    s2 = await snapshot(repo, '2026-11-21T02:00:00.000Z', {
      'alice@ex': {
        Archive: { uidValidity: '300', messages: [{ ...minutes, uid: 1 }] },
        INBOX: { uidValidity: '100', messages: [{ ...hello, flags: ['\\Seen'] }, invoice, flash] },
        'Clients/Été': { uidValidity: '100', messages: [contract] },
      },
      'bob@ex': bob,
    });
    s3 = await snapshot(repo, '2026-11-22T02:00:00.000Z', {
      'alice@ex': {
        Archive: { uidValidity: '300', messages: [{ ...minutes, uid: 1 }] },
        INBOX: { uidValidity: '100', messages: [{ ...hello, flags: ['\\Seen'] }] },
      },
      'bob@ex': bob,
    });
  });

  const q = (raw: Parameters<typeof parseMessageQuery>[0]) => parseMessageQuery(raw);

  it('finds by Message-ID in the latest snapshot, with a reference restore can resolve', async () => {
    const r = await findMessages(repo, q({ messageId: '<Hello@ex>' }));
    expect(r.matches).toHaveLength(1);
    const m = r.matches[0];
    expect(m).toMatchObject({
      user: 'alice@ex',
      folder: 'INBOX',
      uid: 1,
      snapshotId: s3,
      flags: ['\\Seen'],
      subject: 'Hello',
    });
    expect(m?.ref).toBe(`${s3.slice(0, 8)}/alice@ex/INBOX/100/1`);
    const back = await resolveMessageRef(repo, m?.ref as string);
    expect(Buffer.from(await readMessageBytes(repo, back.entry)).toString()).toBe(hello.body);
    expect(r.scanned).toEqual([{ id: s3, time: '2026-11-22T02:00:00.000Z' }]);
  });

  it('finds in a named snapshot by subject, sender and date', async () => {
    const r = await findMessages(
      repo,
      q({ subject: 'facture', from: 'BOB', since: '2026-11-21', until: '2026-11-21' }),
      {
        snapshot: s2.slice(0, 6),
      },
    );
    expect(r.matches.map((m) => [m.user, m.folder, m.uid, m.attachments])).toEqual([
      ['alice@ex', 'INBOX', 3, ['facture.pdf']],
    ]);
    expect(r.matches[0]?.sha256).toBe(createHash('sha256').update(invoice.body).digest('hex'));
    expect((await findMessages(repo, q({ subject: 'facture' }))).matches).toEqual([]);
  });

  it('reads only the mailbox and folder the query names', async () => {
    const tenant = repo.snapshots[2]?.snapshot.tree as string;
    const trees = await repo.loadTree<TenantTree>(tenant);
    const bobTree = trees.mailboxes.find((m) => m.user === 'bob@ex')?.tree;
    const alice = await repo.loadTree<MailboxTree>(
      trees.mailboxes.find((m) => m.user === 'alice@ex')?.tree as string,
    );
    repo.loaded = [];
    const r = await findMessages(repo, q({ user: 'alice@ex', folder: 'Archive' }));
    expect(r.matches.map((m) => m.subject)).toEqual(['Minutes']);
    expect(repo.loaded).not.toContain(bobTree);
    const inboxPages = alice.folders.find((f) => f.path === 'INBOX')?.pages ?? [];
    for (const p of inboxPages) expect(repo.loaded).not.toContain(p);
    expect(repo.loaded).toHaveLength(3); // tenant, alice's mailbox, the Archive page
  });

  it('stops at the limit and says so', async () => {
    const all = await findMessages(repo, q({}), { snapshot: s2 });
    expect(all.matches).toHaveLength(6);
    const two = await findMessages(repo, q({}), { snapshot: s2, limit: 2 });
    expect(two.matches.map((m) => [m.folder, m.subject])).toEqual([
      ['Archive', 'Minutes'],
      ['Clients/Été', 'Contrat été'],
    ]);
    expect(two.truncated).toBe(true);
    expect(all.truncated).toBe(false);
    await expect(findMessages(repo, q({}), { limit: 0 })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('--all-snapshots lists each distinct message once with the snapshots holding it', async () => {
    const r = await findMessages(repo, q({ user: 'alice@ex' }), { allSnapshots: true });
    const rows = r.matches.map((m) => [m.folder, m.subject, m.flags, m.snapshots?.map((s) => s.id)]);
    expect(rows).toEqual([
      ['Archive', 'Minutes', [], [s2, s3]],
      ['Clients/Été', 'Contrat été', [], [s1, s2]],
      ['INBOX', 'Hello', ['\\Seen'], [s1, s2, s3]],
      ['INBOX', 'Minutes', [], [s1]],
      ['INBOX', 'Facture 42', [], [s1, s2]],
      ['INBOX', 'Flash sale', [], [s2]],
    ]);
    // The reference names the newest snapshot holding the message.
    const inv = r.matches.find((m) => m.subject === 'Facture 42');
    expect(parseMessageRef(inv?.ref as string).snapshot).toBe(s2.slice(0, 8));
    await expect(findMessages(repo, q({}), { allSnapshots: true, snapshot: s1 })).rejects.toMatchObject({
      code: 'USAGE',
    });
  });

  it('reads each shared page once across snapshots', async () => {
    repo.loaded = [];
    await findMessages(repo, q({ user: 'bob@ex' }), { allSnapshots: true });
    const counts = new Map<string, number>();
    for (const id of repo.loaded) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });

  it('--deleted-since reports deletions, not moves, including mail that came and went between runs', async () => {
    const bySnap = await findMessages(repo, q({}), { deletedSince: s1.slice(0, 8) });
    expect(bySnap.matches.map((m) => [m.user, m.folder, m.subject, m.snapshotId])).toEqual([
      ['alice@ex', 'Clients/Été', 'Contrat été', s2],
      ['alice@ex', 'INBOX', 'Facture 42', s2],
      ['alice@ex', 'INBOX', 'Flash sale', s2],
    ]);
    expect(bySnap.comparedTo?.id).toBe(s3);
    expect(bySnap.scanned.map((s) => s.id)).toEqual([s1, s2]);
    // Minutes moved INBOX -> Archive: same user and bytes still present, so not deleted.
    expect(bySnap.matches.some((m) => m.subject === 'Minutes')).toBe(false);

    // A date picks the newest snapshot at or before it: here s2, so it still reports all three.
    const byDate = await findMessages(repo, q({ from: 'bob' }), {
      deletedSince: '2026-11-21T03:00:00Z',
    });
    expect(byDate.scanned.map((s) => s.id)).toEqual([s2]);
    expect(byDate.matches.map((m) => m.subject)).toEqual(['Facture 42']);

    // Comparing s2 with s1: only what s2 lost (nothing; minutes moved).
    const early = await findMessages(repo, q({}), { deletedSince: s1, snapshot: s2 });
    expect(early.matches).toEqual([]);
  });

  it('--deleted-since relative dates use the given clock; the base must be older', async () => {
    const r = await findMessages(repo, q({ folder: 'Clients*' }), {
      deletedSince: 'yesterday',
      now: new Date('2026-11-22T12:00:00Z'),
    });
    expect(r.matches.map((m) => m.subject)).toEqual(['Contrat été']);
    await expect(findMessages(repo, q({}), { deletedSince: s3 })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(findMessages(repo, q({}), { deletedSince: 'ffff0000' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('says so when there is no snapshot', async () => {
    const empty = new SyntheticRepo();
    await expect(findMessages(empty, q({}), { allSnapshots: true })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      hint: expect.stringContaining('backup'),
    });
    await expect(findMessages(empty, q({}))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('resolveMessageRef', () => {
  let repo: SyntheticRepo;
  let s1: string;
  beforeEach(async () => {
    repo = new SyntheticRepo();
    s1 = await snapshot(repo, '2026-11-20T02:00:00.000Z', {
      'alice@ex': {
        INBOX: { uidValidity: '100', messages: [hello, minutes, invoice] },
        'Clients/Été': { uidValidity: '100', messages: [contract] },
      },
    });
  });

  it('finds the entry of a folder with a non-ASCII nested name', async () => {
    const ref = `${s1.slice(0, 8)}/alice@ex/Clients%2F%C3%89t%C3%A9/100/1`;
    const m = await resolveMessageRef(repo, ref);
    expect(m.folder.path).toBe('Clients/Été');
    expect(m.entry.sha256).toBe(createHash('sha256').update(contract.body).digest('hex'));
    expect(m.ref).toBe(ref);
  });

  it('names what is missing', async () => {
    const p = s1.slice(0, 8);
    const cases: Array<[string, string]> = [
      ['00000000/alice@ex/INBOX/100/1', 'no snapshot 00000000'],
      [`${p}/carol@ex/INBOX/100/1`, 'holds no mailbox "carol@ex"'],
      [`${p}/alice@ex/Trash/100/1`, 'holds no folder "Trash"'],
      [`${p}/alice@ex/INBOX/101/1`, 'UIDVALIDITY 100, not 101'],
      [`${p}/alice@ex/INBOX/100/9`, 'no message with UID 9'],
    ];
    for (const [ref, why] of cases) {
      const err = await resolveMessageRef(repo, ref).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MailarkError);
      expect((err as MailarkError).code).toBe('NOT_FOUND');
      expect((err as MailarkError).message).toContain(why);
      expect((err as MailarkError).hint).toMatch(/mailark (find|snapshots)/);
    }
    await expect(resolveMessageRef(repo, 'nonsense')).rejects.toMatchObject({ code: 'USAGE' });
  });

  it("reads a bisection of a large folder's pages, not every page before the UID", async () => {
    // UIDs 1, 3, 5 ... so that even UIDs fall between entries (and sometimes between pages).
    const messages = Array.from({ length: 4000 }, (_, i) =>
      msg(2 * i + 1, `m${i}`, 'X <x@ex>', '2026-11-19T08:00:00.000Z'),
    );
    const big = new SyntheticRepo();
    const id = await snapshot(big, '2026-11-20T02:00:00.000Z', {
      'alice@ex': { INBOX: { uidValidity: '7', messages } },
    });
    const mailbox = await big.loadTree<TenantTree>((await big.resolveSnapshot('latest')).snapshot.tree);
    const tree = await big.loadTree<MailboxTree>(mailbox.mailboxes[0]?.tree as string);
    const pages = tree.folders[0]?.pages ?? [];
    expect(pages.length).toBeGreaterThan(8);
    const most = Math.ceil(Math.log2(pages.length)) + 1;
    for (const uid of [1, 2 * 1999 + 1, 7999]) {
      big.loaded = [];
      const m = await resolveMessageRef(big, `${id.slice(0, 8)}/alice@ex/INBOX/7/${uid}`);
      expect(m.entry.uid).toBe(uid);
      expect(m.entry.sha256).toBe(
        createHash('sha256')
          .update(messages[(uid - 1) / 2]?.body ?? '')
          .digest('hex'),
      );
      expect(big.loaded.filter((t) => pages.includes(t)).length).toBeLessThanOrEqual(most);
    }
    for (const uid of [2, 4000, 8000]) {
      await expect(resolveMessageRef(big, `${id.slice(0, 8)}/alice@ex/INBOX/7/${uid}`)).rejects.toMatchObject(
        {
          code: 'NOT_FOUND',
        },
      );
    }
  });
});

describe('findMessages on a real Repository', () => {
  it('finds, resolves and reads back exact bytes from an encrypted repository', async () => {
    const { repo } = await newTestRepository();
    const a = Buffer.from('Subject: one\r\n\r\nfirst\r\n');
    const b = Buffer.from('Subject: two\r\n\r\nsecond\r\n');
    const first = await saveTestSnapshot(
      repo,
      { 'alice@ex': { INBOX: [a, b], 'Clients/Été': [b] } },
      '2026-11-20T02:00:00.000Z',
    );
    await saveTestSnapshot(repo, { 'alice@ex': { INBOX: [a] } }, '2026-11-21T02:00:00.000Z');
    const gone = await findMessages(repo, parseMessageQuery({}), { deletedSince: first.id.slice(0, 8) });
    expect(gone.matches.map((m) => [m.folder, m.uid, m.snapshotId])).toEqual([
      ['Clients/Été', 1, first.id],
      ['INBOX', 2, first.id],
    ]);
    const located = await resolveMessageRef(repo, gone.matches[0]?.ref as string);
    expect(Buffer.from(await readMessageBytes(repo, located.entry)).equals(b)).toBe(true);
    await expect(
      findMessages(repo, parseMessageQuery({}), { deletedSince: 'last tuesday' }),
    ).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining('neither a date nor a snapshot'),
    });
  });
});
