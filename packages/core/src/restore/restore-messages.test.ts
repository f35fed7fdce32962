import { createHash } from 'node:crypto';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { findMessages } from '../find/find-messages.js';
import { parseMessageQuery } from '../find/message-query.js';
import { resolveMessageRef } from '../find/resolve-message-ref.js';
import type { FolderNode, MessageEntry } from '../mail/snapshot.js';
import { saveFolderPages } from '../mail/snapshot-tree.js';
import { RecordingReporter } from '../progress.js';
import type { Repository } from '../repo/repository.js';
import { newTestRepository, snapshotOf } from '../repo/test-repository.js';
import { restoreAsEml, restoreMessages } from './restore-messages.js';
import type { AppendResult, RestoreTarget, TargetCopy, TargetFolder } from './restore-target.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

interface StoredMessage {
  uid: number;
  body: Buffer;
  flags: string[];
  internalDate: string;
}

function copyOf(m: StoredMessage): TargetCopy {
  return { uid: m.uid, size: m.body.length, sha256: sha(m.body), flags: m.flags };
}

/** An in-memory IMAP server: enough behaviour to exercise restore's decisions. */
class FakeServer {
  readonly folders = new Map<string, { uidNext: number; messages: StoredMessage[] }>([
    ['INBOX', { uidNext: 1, messages: [] }],
  ]);
  /** Serve bare LF as CRLF, as Dovecot does. */
  normalizeLf = false;
  /** Send APPENDUID (UIDPLUS). */
  uidplus = true;
  /** Keywords the folder refuses silently (not in PERMANENTFLAGS). */
  dropKeywords = false;
  /** Throw IMAP_CONNECT on the Nth call from now (0 = never). */
  failAtCall = 0;
  calls: string[] = [];
  delimiter = '/';

  private call(name: string): void {
    this.calls.push(name);
    if (this.failAtCall > 0 && this.calls.length >= this.failAtCall) {
      throw new MailarkError('IMAP_CONNECT', 'connection closed by the server', { hint: 'check the server' });
    }
  }

  session(): RestoreTarget {
    return {
      listFolders: async (): Promise<TargetFolder[]> => {
        this.call('list');
        return [...this.folders.keys()].map((path) => ({ path, delimiter: this.delimiter }));
      },
      createFolder: async (path) => {
        this.call(`create ${path}`);
        const parent = path.split(this.delimiter).slice(0, -1).join(this.delimiter);
        if (parent !== '' && !this.folders.has(parent))
          throw new MailarkError('IMAP_PROTOCOL', `NO no parent ${parent}`);
        if (!this.folders.has(path)) this.folders.set(path, { uidNext: 1, messages: [] });
      },
      append: async (path, body, flags, internalDate): Promise<AppendResult> => {
        this.call(`append ${path}`);
        const f = this.folders.get(path);
        if (f === undefined) throw new MailarkError('IMAP_PROTOCOL', `NO [TRYCREATE] ${path}`);
        let stored = Buffer.from(body);
        if (this.normalizeLf)
          stored = Buffer.from(stored.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'), 'latin1');
        const kept = this.dropKeywords ? flags.filter((x) => x.startsWith('\\')) : [...flags];
        const uid = f.uidNext++;
        f.messages.push({ uid, body: stored, flags: kept, internalDate: internalDate.toISOString() });
        return this.uidplus ? { uid, uidValidity: '1', refusedFlags: [] } : { refusedFlags: [] };
      },
      copiesByMessageId: async (path, id) => {
        this.call(`search-id ${path}`);
        return (this.folders.get(path)?.messages ?? [])
          .filter((m) => m.body.toString('latin1').includes(`Message-ID: <${id}>`))
          .map(copyOf);
      },
      copiesBySize: async (path, sizes) => {
        this.call(`search-size ${path}`);
        return (this.folders.get(path)?.messages ?? [])
          .filter((m) => sizes.includes(m.body.length))
          .map(copyOf);
      },
      copies: async (path, uids): Promise<TargetCopy[]> => {
        this.call(`fetch ${path}`);
        return (this.folders.get(path)?.messages ?? []).filter((m) => uids.includes(m.uid)).map(copyOf);
      },
      close: async () => {},
    };
  }
}

interface Mail {
  body: string;
  messageId?: string;
  flags?: string[];
  keywords?: string[];
  date?: string;
}

/** One snapshot: user -> folder -> messages (UIDs from 1), with Message-IDs in the header summary. */
async function backup(repo: Repository, mail: Record<string, Record<string, Mail[]>>): Promise<string> {
  const mailboxes = [];
  for (const user of Object.keys(mail).sort()) {
    const folders: FolderNode[] = [];
    for (const [path, msgs] of Object.entries(mail[user] ?? {}).sort()) {
      const entries: MessageEntry[] = [];
      for (const [i, m] of msgs.entries()) {
        const bytes = Buffer.from(m.body, 'latin1');
        entries.push({
          uid: i + 1,
          size: bytes.length,
          sha256: sha(bytes),
          internalDate: m.date ?? '2026-11-20T08:00:00.000Z',
          flags: m.flags ?? [],
          keywords: m.keywords ?? [],
          content: [(await repo.saveBlob('data', bytes)).id],
          h: m.messageId === undefined ? {} : { messageId: m.messageId },
        });
      }
      folders.push({
        path,
        rawPath: path,
        delimiter: '/',
        flags: [],
        subscribed: true,
        selectable: true,
        uidValidity: '77',
        messages: entries.length,
        bytes: 0,
        pages: await saveFolderPages(repo, entries),
      });
    }
    const tree = await repo.saveTree({ v: 1, user, folders });
    mailboxes.push({ user, tree, folders: folders.length, messages: 0, bytes: 0, state: 'ok' });
  }
  const tree = await repo.saveTree({ v: 1, mailboxes });
  return repo.saveSnapshot(snapshotOf(tree, '2026-11-20T02:00:00.000Z'));
}

const invoice: Mail = {
  body: 'Message-ID: <inv42@bob>\r\nSubject: Facture\r\n\r\nPay me\r\n',
  messageId: 'inv42@bob',
  flags: ['\\Answered', '\\Seen'],
  keywords: ['$Forwarded', 'Important'],
  date: '2026-11-21T07:59:30.000Z',
};
const bareLf: Mail = { body: 'Message-ID: <lf@x>\nSubject: LF\n\nunix lines\n', messageId: 'lf@x' };
const noId: Mail = { body: 'Subject: no id\r\n\r\nanonymous\r\n', flags: ['\\Flagged'] };

describe('restoreMessages', () => {
  let repo: Repository;
  let servers: Map<string, FakeServer>;
  const connect = async (user: string) => {
    const s = servers.get(user);
    if (s === undefined)
      throw new MailarkError('IMAP_AUTH', `the server refused the login for ${user}`, {
        hint: 'check the user',
      });
    return s.session();
  };
  const all = async () => (await findMessages(repo, parseMessageQuery({}))).located;

  beforeEach(async () => {
    repo = (await newTestRepository()).repo;
    await backup(repo, { 'alice@ex': { 'Clients/Été': [invoice, noId], INBOX: [bareLf] } });
    servers = new Map([
      ['alice@ex', new FakeServer()],
      ['carol@ex', new FakeServer()],
    ]);
  });

  it('recreates the folder with parents and restores exact bytes, flags, keywords and date', async () => {
    const alice = servers.get('alice@ex') as FakeServer;
    const reporter = new RecordingReporter();
    const out = await restoreMessages(repo, connect, await all(), { reporter });
    expect(out.map((o) => [o.folder, o.status, o.uid, o.normalized])).toEqual([
      ['Clients/Été', 'restored', 1, undefined],
      ['Clients/Été', 'restored', 2, undefined],
      ['INBOX', 'restored', 1, undefined],
    ]);
    expect(alice.calls.filter((c) => c.startsWith('create'))).toEqual([
      'create Clients',
      'create Clients/Été',
    ]);
    const [inv, anon] = alice.folders.get('Clients/Été')?.messages ?? [];
    expect(sha(inv?.body ?? '')).toBe(sha(invoice.body));
    expect(inv?.flags).toEqual(['\\Answered', '\\Seen', '$Forwarded', 'Important']);
    expect(inv?.internalDate).toBe('2026-11-21T07:59:30.000Z');
    expect(anon?.flags).toEqual(['\\Flagged']);
    expect(reporter.states.at(-1)).toMatchObject({ phase: 'restore', done: 3, total: 3 });
  });

  it('is idempotent: a second run reports already-present and appends nothing', async () => {
    const alice = servers.get('alice@ex') as FakeServer;
    alice.normalizeLf = true;
    const first = await restoreMessages(repo, connect, await all());
    expect(first.map((o) => o.status)).toEqual(['restored', 'restored', 'restored']);
    expect(first[2]?.normalized).toBe(true); // bare LF served back as CRLF, verified in that form
    alice.calls = [];
    const second = await restoreMessages(repo, connect, await all());
    expect(second.map((o) => [o.status, o.uid])).toEqual([
      ['already-present', 1],
      ['already-present', 2],
      ['already-present', 1],
    ]);
    expect(alice.calls.some((c) => c.startsWith('append') || c.startsWith('create'))).toBe(false);
    expect(alice.calls).toContain('search-size Clients/Été'); // the message without Message-ID
    expect(alice.folders.get('Clients/Été')?.messages).toHaveLength(2);
  });

  it('the same Message-ID with other bytes is not "present"', async () => {
    const alice = servers.get('alice@ex') as FakeServer;
    alice.folders.set('Clients', { uidNext: 1, messages: [] });
    alice.folders.set('Clients/Été', {
      uidNext: 2,
      messages: [
        {
          uid: 1,
          body: Buffer.from('Message-ID: <inv42@bob>\r\n\r\nother\r\n'),
          flags: [],
          internalDate: '',
        },
      ],
    });
    const [item] = await all();
    const out = await restoreMessages(repo, connect, [item as NonNullable<typeof item>]);
    expect(out[0]).toMatchObject({ status: 'restored', uid: 2 });
  });

  it('verifies without UIDPLUS and reports refused keywords', async () => {
    const alice = servers.get('alice@ex') as FakeServer;
    alice.uidplus = false;
    alice.dropKeywords = true;
    const out = await restoreMessages(repo, connect, (await all()).slice(0, 2));
    expect(out[0]).toMatchObject({ status: 'restored', uid: 1, refusedFlags: ['$Forwarded', 'Important'] });
    expect(out[1]).toMatchObject({ status: 'restored', uid: 2 });
    expect(out[1]?.refusedFlags).toBeUndefined();
  });

  it('fails an item whose server copy differs', async () => {
    const alice = servers.get('alice@ex') as FakeServer;
    const session = alice.session();
    const original = session.append;
    alice.session = () => ({
      ...session,
      append: (path, body, flags, date) =>
        original(path, Buffer.concat([body, Buffer.from('X')]), flags, date),
    });
    const out = await restoreMessages(repo, connect, (await all()).slice(0, 1));
    expect(out[0]?.status).toBe('failed');
    expect(out[0]?.error?.code).toBe('CORRUPT');
    expect(out[0]?.error?.message).toContain('differs');
  });

  it('restores into another user and folder; an unknown user fails every item with the reason', async () => {
    const items = await all();
    const out = await restoreMessages(repo, connect, items, {
      toUser: 'carol@ex',
      toFolder: 'Restored 2026-11-21',
    });
    expect(out.map((o) => [o.user, o.folder, o.status])).toEqual([
      ['carol@ex', 'Restored 2026-11-21', 'restored'],
      ['carol@ex', 'Restored 2026-11-21', 'restored'],
      ['carol@ex', 'Restored 2026-11-21', 'restored'],
    ]);
    expect(servers.get('carol@ex')?.folders.get('Restored 2026-11-21')?.messages).toHaveLength(3);
    expect(servers.get('alice@ex')?.calls).toEqual([]);
    const nobody = await restoreMessages(repo, connect, items, { toUser: 'ghost@ex' });
    expect(nobody.every((o) => o.status === 'failed' && o.error?.code === 'IMAP_AUTH')).toBe(true);
  });

  it('dry run decides without changing anything', async () => {
    const alice = servers.get('alice@ex') as FakeServer;
    await restoreMessages(repo, connect, (await all()).slice(2)); // INBOX message restored for real
    alice.calls = [];
    const out = await restoreMessages(repo, connect, await all(), { dryRun: true });
    expect(out.map((o) => o.status)).toEqual(['would-restore', 'would-restore', 'already-present']);
    expect(alice.calls.some((c) => c.startsWith('append') || c.startsWith('create'))).toBe(false);
  });

  it('a lost connection fails the rest at once; a re-run completes without duplicates', async () => {
    const alice = servers.get('alice@ex') as FakeServer;
    // Calls: list, create, create, append, fetch (msg 1), search-size, append (msg 2) <- dies here.
    alice.failAtCall = 7;
    const first = await restoreMessages(repo, connect, await all());
    expect(first.map((o) => [o.status, o.error?.code])).toEqual([
      ['restored', undefined],
      ['failed', 'IMAP_CONNECT'],
      ['failed', 'IMAP_CONNECT'],
    ]);
    alice.failAtCall = 0;
    alice.calls = [];
    const again = await restoreMessages(repo, connect, await all());
    expect(again.map((o) => o.status)).toEqual(['already-present', 'restored', 'restored']);
    expect(alice.folders.get('Clients/Été')?.messages).toHaveLength(2);
  });

  it('stops on abort and says which messages were not restored', async () => {
    const ctl = new AbortController();
    ctl.abort();
    const out = await restoreMessages(repo, connect, await all(), { signal: ctl.signal });
    expect(out.every((o) => o.status === 'failed' && o.error?.code === 'INTERRUPTED')).toBe(true);
  });

  it('writes .eml files instead, with exact bytes and mtime, idempotently', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailark-restore-eml-'));
    const ref = (await all())[0]?.ref as string;
    const item = await resolveMessageRef(repo, ref);
    const out = await restoreAsEml(repo, [item], dir);
    expect(out[0]).toMatchObject({ status: 'restored', user: 'alice@ex', folder: 'Clients/Été' });
    const file = out[0]?.file as string;
    expect(sha(await readFile(file))).toBe(sha(invoice.body));
    expect((await stat(file)).mtime.toISOString()).toBe('2026-11-21T07:59:30.000Z');
    expect((await restoreAsEml(repo, [item], dir))[0]?.status).toBe('already-present');
  });
});
