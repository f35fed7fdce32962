/**
 * `mailark ls SNAPSHOT`: what a snapshot holds, one level at a time, reading only that level:
 * the mailboxes (tenant tree), one mailbox's folders (--user), or one folder's messages (--folder).
 */
import {
  type FolderNode,
  loadFolderEntries,
  loadMailboxTree,
  loadTenantTree,
  locate,
  MailarkError,
  type MailboxRef,
  toMatch,
} from '@mailark/core';
import { defineCommand } from '../command.js';
import { clip, formatBytes, formatCount, formatTime, shortId } from '../text-format.js';

export const ls = defineCommand({
  command: 'ls <snapshot>',
  describe: "list a snapshot's mailboxes, a mailbox's folders, or a folder's messages",
  builder: (y) =>
    y
      .positional('snapshot', {
        type: 'string',
        demandOption: true,
        describe: '"latest", an id or a unique prefix',
      })
      .option('user', { type: 'string', describe: 'list the folders of this mailbox (login name)' })
      .option('folder', { type: 'string', describe: 'with --user: list the messages of this folder' })
      .implies('folder', 'user'),
  handler: async (args, ctx) => {
    const repo = await ctx.openRepository({ lock: 'shared' });
    const { id, snapshot } = await repo.resolveSnapshot(args.snapshot);
    const head = { id, time: snapshot.time, tenant: snapshot.tenant };
    const tenant = await loadTenantTree(repo, snapshot);

    if (args.user === undefined) {
      ctx.output.table(
        [
          { header: 'Mailbox' },
          { header: 'Folders', align: 'right' },
          { header: 'Messages', align: 'right' },
          { header: 'Size', align: 'right' },
          { header: 'State' },
        ],
        tenant.mailboxes.map((m) => [
          m.user,
          formatCount(m.folders),
          formatCount(m.messages),
          formatBytes(m.bytes),
          m.state === 'stale' ? `stale (from ${formatTime(m.staleFrom)})` : m.state,
        ]),
      );
      ctx.output.result({ snapshot: head, mailboxes: tenant.mailboxes });
      return;
    }

    const ref = findMailbox(tenant.mailboxes, args.user, id);
    const mailbox = await loadMailboxTree(repo, ref);
    if (args.folder === undefined) {
      ctx.output.table(
        [
          { header: 'Folder' },
          { header: 'Messages', align: 'right' },
          { header: 'Size', align: 'right' },
          { header: 'Special use' },
          { header: 'UIDVALIDITY', align: 'right' },
        ],
        mailbox.folders.map((f) => [
          f.selectable ? f.path : `${f.path} (no messages)`,
          formatCount(f.messages),
          formatBytes(f.bytes),
          f.specialUse ?? '',
          f.uidValidity ?? '',
        ]),
      );
      ctx.output.result({
        snapshot: head,
        user: ref.user,
        folders: mailbox.folders.map(({ pages: _pages, ...f }) => f),
      });
      return;
    }

    const folder = findFolder(mailbox.folders, args.folder, ref.user, id);
    const entries = await loadFolderEntries(repo, folder);
    ctx.output.table(
      [
        { header: 'UID', align: 'right' },
        { header: 'Date (UTC)' },
        { header: 'From' },
        { header: 'Subject' },
        { header: 'Size', align: 'right' },
        { header: 'Flags' },
      ],
      entries.map((e) => [
        String(e.uid),
        formatTime(e.internalDate),
        clip(e.h.from ?? '', 32),
        clip(e.h.subject ?? '', 48),
        formatBytes(e.size),
        [...e.flags, ...e.keywords].join(' '),
      ]),
    );
    ctx.output.result({
      snapshot: head,
      user: ref.user,
      folder: folder.path,
      messages: entries.map((e) => toMatch(locate(id, snapshot, ref.user, folder, e))),
    });
  },
});

function findMailbox(mailboxes: readonly MailboxRef[], user: string, snapshotId: string): MailboxRef {
  const ref = mailboxes.find((m) => m.user === user);
  if (ref !== undefined) return ref;
  throw new MailarkError('NOT_FOUND', `snapshot ${shortId(snapshotId)} holds no mailbox ${user}`, {
    hint: `list its mailboxes with "mailark ls ${shortId(snapshotId)}"`,
  });
}

function findFolder(
  folders: readonly FolderNode[],
  path: string,
  user: string,
  snapshotId: string,
): FolderNode {
  const folder = folders.find((f) => f.path === path) ?? folders.find((f) => f.rawPath === path);
  if (folder !== undefined) return folder;
  throw new MailarkError(
    'NOT_FOUND',
    `mailbox ${user} in snapshot ${shortId(snapshotId)} has no folder "${path}"`,
    {
      hint: `list its folders with "mailark ls ${shortId(snapshotId)} --user ${user}"`,
    },
  );
}
