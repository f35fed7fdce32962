/**
 * Resolving a message reference (message-ref.ts) back to its snapshot entry, reading only the path
 * to it: the snapshot, its tenant tree, one MailboxTree, and a bisection of one folder's pages.
 * Every way it can fail is NOT_FOUND naming what is missing, with a hint to list what exists.
 */
import { isMailarkError, MailarkError } from '../errors.js';
import type { MailboxTree, MessageEntry, MessagePage, TenantTree } from '../mail/snapshot.js';
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
  const entry = await findInPages(repo, folder.pages, r.uid);
  if (entry !== undefined) return locate(id, snapshot, r.user, folder, entry);
  throw notFound(
    text,
    `${at} holds no message with UID ${r.uid} in folder "${r.folder}" of ${r.user}`,
    `run "mailark find --all-snapshots --user ${r.user}" to see which snapshots hold it`,
  );
}

/**
 * The entry with this UID in a folder's pages. Pages hold ascending, non-overlapping UID ranges, so a
 * bisection reads about log2(pages) + 1 of them: 8 of a 40,000-message folder's ~160, not all before
 * the UID. An empty page (never written by paginate) makes it fall back to reading them in order.
 */
async function findInPages(
  repo: SnapshotSource,
  pages: readonly string[],
  uid: number,
): Promise<MessageEntry | undefined> {
  let lo = 0;
  let hi = pages.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const { entries } = await repo.loadTree<MessagePage>(pages[mid] as string);
    const first = entries[0];
    const last = entries.at(-1);
    if (first === undefined || last === undefined) return scanPages(repo, pages, uid);
    if (uid < first.uid) hi = mid - 1;
    else if (uid > last.uid) lo = mid + 1;
    else return entries.find((e) => e.uid === uid);
  }
  return undefined;
}

async function scanPages(
  repo: SnapshotSource,
  pages: readonly string[],
  uid: number,
): Promise<MessageEntry | undefined> {
  for (const pageId of pages) {
    const { entries } = await repo.loadTree<MessagePage>(pageId);
    const entry = entries.find((e) => e.uid === uid);
    if (entry !== undefined) return entry;
  }
  return undefined;
}

function notFound(ref: string, why: string, hint: string): MailarkError {
  return new MailarkError('NOT_FOUND', `message ${ref} not found: ${why}`, { hint, details: { ref } });
}
