/**
 * Resolving a message reference (message-ref.ts) back to its snapshot entry, reading only the path
 * to it: the snapshot, its tenant tree, one MailboxTree, and the pages of one folder up to the UID.
 * Every way it can fail is NOT_FOUND naming what is missing, with a hint to list what exists.
 */
import { isMailarkError, MailarkError } from '../errors.js';
import type { MailboxTree, MessagePage, TenantTree } from '../mail/snapshot.js';
import { type LocatedMessage, locate, type SnapshotSource } from './find-messages.js';
import { type MessageRef, parseMessageRef } from './message-ref.js';

export async function resolveMessageRef(
  repo: SnapshotSource,
  ref: string | MessageRef,
  opts: { tenant?: string } = {},
): Promise<LocatedMessage> {
  const r = typeof ref === 'string' ? parseMessageRef(ref) : ref;
  const text =
    typeof ref === 'string' ? ref.trim() : `${r.snapshot}/${r.user}/${r.folder}/${r.uidValidity}/${r.uid}`;
  let found: Awaited<ReturnType<SnapshotSource['resolveSnapshot']>>;
  try {
    found = await repo.resolveSnapshot(
      r.snapshot,
      opts.tenant === undefined ? undefined : { tenant: opts.tenant },
    );
  } catch (err) {
    if (!isMailarkError(err, 'NOT_FOUND')) throw err;
    throw notFound(text, `no snapshot ${r.snapshot}: ${err.message}`, 'run "mailark snapshots" to list them');
  }
  const { id, snapshot } = found;
  const at = `snapshot ${id.slice(0, 8)} (${snapshot.time})`;
  const tenant = await repo.loadTree<TenantTree>(snapshot.tree);
  const mailboxRef = tenant.mailboxes.find((m) => m.user === r.user);
  if (mailboxRef === undefined) {
    throw notFound(
      text,
      `${at} holds no mailbox "${r.user}"`,
      `run "mailark find --snapshot ${id.slice(0, 8)}" to list what it holds`,
    );
  }
  const mailbox = await repo.loadTree<MailboxTree>(mailboxRef.tree);
  const folder = mailbox.folders.find((f) => f.path === r.folder);
  if (folder === undefined) {
    throw notFound(
      text,
      `${at} holds no folder "${r.folder}" for ${r.user}`,
      `run "mailark find --snapshot ${id.slice(0, 8)} --user ${r.user}"`,
    );
  }
  if ((folder.uidValidity ?? '0') !== r.uidValidity) {
    throw notFound(
      text,
      `in ${at}, folder "${r.folder}" of ${r.user} has UIDVALIDITY ${folder.uidValidity ?? 'none'}, not ${r.uidValidity}: the reference is for another incarnation of the folder`,
      `run "mailark find --all-snapshots --user ${r.user} --folder ${JSON.stringify(r.folder)}" for current references`,
    );
  }
  // Pages hold ascending UIDs: stop at the first page that reaches the UID.
  for (const pageId of folder.pages) {
    const page = await repo.loadTree<MessagePage>(pageId);
    const last = page.entries.at(-1);
    if (last === undefined || last.uid < r.uid) continue;
    const entry = page.entries.find((e) => e.uid === r.uid);
    if (entry !== undefined) return locate(id, snapshot, r.user, folder, entry);
    break;
  }
  throw notFound(
    text,
    `${at} holds no message with UID ${r.uid} in folder "${r.folder}" of ${r.user}`,
    `run "mailark find --all-snapshots --user ${r.user}" to see which snapshots hold it`,
  );
}

function notFound(ref: string, why: string, hint: string): MailarkError {
  return new MailarkError('NOT_FOUND', `message ${ref} not found: ${why}`, { hint, details: { ref } });
}
