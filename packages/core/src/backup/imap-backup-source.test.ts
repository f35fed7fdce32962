import { describe, expect, it } from 'vitest';
import type { FolderInfo, ImapFolderStatus, MailboxSession } from '../imap/mailbox-session.js';
import { sessionBackupSource } from './imap-backup-source.js';

const folder = (path: string): FolderInfo => ({
  path,
  rawPath: path,
  delimiter: '/',
  flags: [],
  subscribed: true,
  selectable: true,
});
const st = (uidNext: number): ImapFolderStatus => ({ uidValidity: '7', uidNext, messages: uidNext - 1 });

/** A session whose LIST-STATUS reported INBOX and Sent (not Archive), recording every server call. */
function fakeSession(listStatus: boolean) {
  const calls: string[] = [];
  const server = new Map([
    ['INBOX', st(5)],
    ['Sent', st(3)],
    ['Archive', st(9)],
  ]);
  const session = {
    async listFoldersWithStatus() {
      calls.push('LIST');
      const statuses = new Map(listStatus ? [...server].filter(([p]) => p !== 'Archive') : []);
      return { folders: [...server.keys()].map(folder), statuses };
    },
    async statusAll(paths?: readonly string[]) {
      calls.push(`STATUS ${(paths ?? []).join(',')}`);
      return new Map([...server].filter(([p]) => paths?.includes(p)));
    },
    async listMessages() {
      calls.push('listMessages');
      return { status: st(1), messages: [] };
    },
  } as unknown as MailboxSession;
  return { session, calls, server };
}

describe('sessionBackupSource', () => {
  it('answers the statusAll after listFolders from the LIST-STATUS, asking only for what it lacked', async () => {
    const { session, calls, server } = fakeSession(true);
    const src = sessionBackupSource(session);
    expect((await src.listFolders()).map((f) => f.path)).toEqual(['INBOX', 'Sent', 'Archive']);
    server.set('INBOX', st(6)); // changed after the LIST: the listed status is the one reported
    const got = await src.statusAll(['INBOX', 'Sent', 'Archive']);
    expect(Object.fromEntries(got)).toEqual({ INBOX: st(5), Sent: st(3), Archive: st(9) });
    expect(calls).toEqual(['LIST', 'STATUS Archive']);
    // Used once: a later statusAll asks the server.
    expect((await src.statusAll(['INBOX'])).get('INBOX')).toEqual(st(6));
    expect(calls).toEqual(['LIST', 'STATUS Archive', 'STATUS INBOX']);
  });

  it('asks the server when LIST-STATUS is not offered, or when another call came in between', async () => {
    const plain = fakeSession(false);
    const a = sessionBackupSource(plain.session);
    await a.listFolders();
    expect((await a.statusAll(['Sent'])).get('Sent')).toEqual(st(3));
    expect(plain.calls).toEqual(['LIST', 'STATUS Sent']);

    const between = fakeSession(true);
    const b = sessionBackupSource(between.session);
    await b.listFolders();
    await b.listMessages('INBOX');
    await b.statusAll(['INBOX']);
    expect(between.calls).toEqual(['LIST', 'listMessages', 'STATUS INBOX']);
  });
});
