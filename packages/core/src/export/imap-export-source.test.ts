import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseImapEndpoint } from '../imap/imap-endpoint.js';
import type { FetchedMessage, FolderInfo, MailboxSession } from '../imap/imap-session.js';
import { openArchiveSink } from './archive-sink.js';
import { exportTenant } from './export-tenant.js';
import { ImapExportSource } from './imap-export-source.js';
import type { ManifestLine } from './manifest.js';

const work = mkdtempSync(join(tmpdir(), 'mailark-imap-export-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const msg = (uid: number, text: string, flags: string[]): FetchedMessage => {
  const body = Buffer.from(`Subject: ${text}\r\n\r\n${text}\r\n`);
  return { uid, flags, internalDate: new Date(Date.UTC(2023, 4, uid, 12)), size: body.length, body };
};

/** The part of a MailboxSession an export uses, over fixed folders. */
function fakeSession(
  user: string,
  folders: Array<FolderInfo & { messages: FetchedMessage[] }>,
): MailboxSession {
  const byPath = new Map(folders.map((f) => [f.path, f]));
  const session = {
    user,
    closed: false,
    async listFolders() {
      return folders.map(({ messages: _, ...info }) => info);
    },
    async statusAll(paths: readonly string[]) {
      return new Map(
        paths.map((p) => [
          p,
          { uidValidity: '42', uidNext: 100, messages: byPath.get(p)?.messages.length ?? 0 },
        ]),
      );
    },
    async listMessages(path: string) {
      const f = byPath.get(path)!;
      return {
        status: { uidValidity: '42', uidNext: 100, messages: f.messages.length },
        messages: f.messages.map((m) => ({ uid: m.uid, flags: m.flags })),
      };
    },
    async *fetchMessages(path: string, uids: readonly number[]) {
      for (const m of byPath.get(path)!.messages) if (uids.includes(m.uid)) yield m;
    },
    async close() {
      session.closed = true;
    },
  };
  return session as unknown as MailboxSession;
}

describe('ImapExportSource', () => {
  it('exports live mailboxes in the same layout, computing each SHA-256 from the bytes', async () => {
    const sessions: MailboxSession[] = [];
    const source = new ImapExportSource({
      endpoint: parseImapEndpoint('imap://127.0.0.1:1143', { adminUser: 'admin', password: 'x' }),
      users: [{ user: 'zoe@live.example' }, { user: 'amy@live.example', password: 'own' }],
      tenant: 'live.example',
      open: async (_e, user, opts) => {
        expect(opts.userPassword).toBe(user === 'amy@live.example' ? 'own' : undefined);
        const s = fakeSession(user, [
          {
            path: 'INBOX',
            rawPath: 'INBOX',
            delimiter: '/',
            flags: [],
            subscribed: true,
            selectable: true,
            messages: [msg(3, 'one', ['\\Seen', 'Work']), msg(5, 'two', ['$Forwarded'])],
          },
          {
            path: 'Boîte',
            rawPath: 'Bo&AO4-te',
            delimiter: '/',
            flags: [],
            subscribed: false,
            selectable: true,
            messages: [],
          },
        ]);
        sessions.push(s);
        return s;
      },
    });
    const sink = await openArchiveSink(join(work, 'live'), { tmpDir: work });
    const s = await exportTenant(source, sink, { tmpDir: work });
    expect(s.users).toEqual(['amy@live.example', 'zoe@live.example']);
    expect(s.counts).toMatchObject({ users: 2, folders: 4, messages: 4 });
    expect(s.origin).toMatchObject({ kind: 'imap', server: 'imap://127.0.0.1:1143' });
    expect(sessions.every((x) => (x as unknown as { closed: boolean }).closed)).toBe(true);
    const lines = readFileSync(join(work, 'live/manifest.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ManifestLine);
    const body = msg(3, 'one', []).body;
    expect(lines[0]).toMatchObject({
      user: 'amy@live.example',
      folder: 'INBOX',
      uid: 3,
      uidValidity: '42',
      flags: ['\\Seen'],
      keywords: ['Work'],
      internalDate: '2023-05-03T12:00:00.000Z',
      sha256: createHash('sha256').update(body).digest('hex'),
    });
    expect(lines[1]?.paths.maildir).toMatch(/\/Maildir\/cur\/\d+\.U5\.mailark,S=\d+:2,Pa$/);
    expect(
      readFileSync(join(work, 'live/live.example/amy@live.example/Maildir/dovecot-keywords'), 'utf8'),
    ).toBe('0 $Forwarded\n1 Work\n');
    const info = JSON.parse(readFileSync(join(work, 'live/export.json'), 'utf8'));
    expect(info.origin.kind).toBe('imap');
  });
});
