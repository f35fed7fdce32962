/**
 * find: which messages of which snapshots match a query, without downloading any message.
 *
 * Only the snapshot tree is read (tenant -> mailbox -> folder -> pages), and of it only what the
 * query lets through: `user` loads one MailboxTree, `folder` the pages of that folder. Pages are
 * memoised by blob id within a call, so scanning many snapshots costs one read per page that
 * changed, not per snapshot (unchanged folders share their pages).
 *
 * Three modes:
 * - one snapshot (default `latest`): every matching message, in tree order (user, folder, UID);
 * - allSnapshots: each distinct message once, with every snapshot that holds it. A message is
 *   identified by user + folder + SHA-256 of its bytes: a flag change keeps its identity, a
 *   UIDVALIDITY change (re-numbering) too, a move to another folder makes a new one;
 * - deletedSince BASE: messages that some snapshot from BASE up to (not including) the compared
 *   snapshot held, and that the compared snapshot (default latest) no longer holds. BASE is a
 *   snapshot reference, or a date (then the newest snapshot taken at or before it, or the oldest
 *   snapshot if none is that old). Presence is judged by user + SHA-256 over ALL the user's folders,
 *   so a message moved to another folder is NOT reported as deleted. Taking every snapshot in the
 *   window (not only BASE) also reports mail that arrived after BASE and was deleted before the
 *   compared run, as long as one backup saw it: the case hourly passes exist for.
 */
import { isMailarkError, MailarkError } from '../errors.js';
import type {
  FolderNode,
  MailboxRef,
  MailboxTree,
  MessageEntry,
  MessagePage,
  Snapshot,
  TenantTree,
} from '../mail/snapshot.js';
import type { TreeReader } from '../mail/snapshot-tree.js';
import {
  type MessageQuery,
  matchesEntry,
  matchesFolder,
  matchesUser,
  parseDateBound,
} from './message-query.js';
import { formatMessageRef } from './message-ref.js';
import { pagePrefilter } from './page-prefilter.js';

/** What find needs of a repository (Repository satisfies it). */
export interface SnapshotSource extends TreeReader {
  listSnapshots(): Promise<Array<{ id: string; snapshot: Snapshot }>>;
  resolveSnapshot(ref: string, filter?: { tenant?: string }): Promise<{ id: string; snapshot: Snapshot }>;
}

export interface FindOptions {
  /** Snapshot id, unique prefix, or 'latest' (default). With deletedSince: the newer snapshot. */
  snapshot?: string;
  allSnapshots?: boolean;
  /** Snapshot reference or date expression (see parseDateBound). */
  deletedSince?: string;
  /** At most this many matches (after grouping). */
  limit?: number;
  /** Only snapshots of this tenant. */
  tenant?: string;
  /** Clock for date expressions in deletedSince (tests). */
  now?: Date;
}

export interface SnapshotStamp {
  id: string;
  time: string;
}

/** One message found in a snapshot, with everything restore needs to put it back. */
export interface LocatedMessage {
  /** Reference for restore (see message-ref.ts), into the newest snapshot that holds the message. */
  ref: string;
  snapshotId: string;
  snapshotTime: string;
  user: string;
  folder: FolderNode;
  entry: MessageEntry;
  /** allSnapshots / deletedSince: every scanned snapshot holding the message, oldest first. */
  snapshots?: SnapshotStamp[];
}

/** A match as front ends show it (every field; `--json` prints them all). */
export interface MessageMatch {
  ref: string;
  snapshotId: string;
  snapshotTime: string;
  user: string;
  /** Unicode folder path. */
  folder: string;
  uidValidity: string;
  uid: number;
  internalDate: string;
  size: number;
  flags: string[];
  keywords: string[];
  sha256: string;
  messageId?: string;
  from?: string;
  to?: string;
  cc?: string;
  subject?: string;
  date?: string;
  attachments?: string[];
  snapshots?: SnapshotStamp[];
}

export interface FindResult {
  matches: MessageMatch[];
  /** The messages, for restore (same order as matches). */
  located: LocatedMessage[];
  /** The snapshots scanned, oldest first. */
  scanned: SnapshotStamp[];
  /** deletedSince: the snapshot compared against (the newer one). */
  comparedTo?: SnapshotStamp;
  /** True when limit cut the list. */
  truncated: boolean;
}

/** Runs a query; see the module comment for the modes. */
export async function findMessages(
  repo: SnapshotSource,
  query: MessageQuery,
  opts: FindOptions = {},
): Promise<FindResult> {
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) {
    throw new MailarkError('USAGE', `--limit must be a positive whole number, not ${opts.limit}`, {
      hint: 'e.g. --limit 50',
    });
  }
  const scanner = new TreeScanner(repo, query);
  if (opts.deletedSince !== undefined) return findDeleted(repo, scanner, opts.deletedSince, opts);
  if (opts.allSnapshots === true) {
    if (opts.snapshot !== undefined) {
      throw new MailarkError('USAGE', '--all-snapshots and --snapshot cannot be combined', {
        hint: 'drop --snapshot to search every snapshot, or drop --all-snapshots to search one',
      });
    }
    const all = await snapshotsOf(repo, opts.tenant);
    return finish(await scanGrouped(scanner, all), stamps(all), opts.limit);
  }
  const { id, snapshot } = await repo.resolveSnapshot(opts.snapshot ?? 'latest', tenantFilter(opts.tenant));
  const located: LocatedMessage[] = [];
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  let truncated = false;
  for await (const m of scanner.scan(id, snapshot)) {
    if (located.length >= limit) {
      truncated = true;
      break;
    }
    located.push(m);
  }
  return { matches: located.map(toMatch), located, scanned: [stamp(id, snapshot)], truncated };
}

/** The match as shown to people, from a located message. */
export function toMatch(m: LocatedMessage): MessageMatch {
  const { entry: e, folder } = m;
  const out: MessageMatch = {
    ref: m.ref,
    snapshotId: m.snapshotId,
    snapshotTime: m.snapshotTime,
    user: m.user,
    folder: folder.path,
    uidValidity: folder.uidValidity ?? '0',
    uid: e.uid,
    internalDate: e.internalDate,
    size: e.size,
    flags: e.flags,
    keywords: e.keywords,
    sha256: e.sha256,
    ...e.h,
  };
  if (m.snapshots !== undefined) out.snapshots = m.snapshots;
  return out;
}

/** Builds the located message of an entry of a snapshot. */
export function locate(
  id: string,
  snapshot: Snapshot,
  user: string,
  folder: FolderNode,
  entry: MessageEntry,
) {
  const ref = formatMessageRef({
    snapshot: id,
    user,
    folder: folder.path,
    uidValidity: folder.uidValidity ?? '0',
    uid: entry.uid,
  });
  return { ref, snapshotId: id, snapshotTime: snapshot.time, user, folder, entry } satisfies LocatedMessage;
}

/** deletedSince mode (allSnapshots adds nothing: each deleted message already lists its snapshots). */
async function findDeleted(
  repo: SnapshotSource,
  scanner: TreeScanner,
  since: string,
  opts: FindOptions,
): Promise<FindResult> {
  const all = await snapshotsOf(repo, opts.tenant);
  const target =
    opts.snapshot === undefined
      ? (all.at(-1) as { id: string; snapshot: Snapshot })
      : await repo.resolveSnapshot(opts.snapshot, tenantFilter(opts.tenant));
  const targetIndex = all.findIndex((s) => s.id === target.id);
  const baseIndex = await baseSnapshotIndex(repo, all, since, opts);
  if (baseIndex >= targetIndex) {
    throw new MailarkError(
      'USAGE',
      `--deleted-since ${since} names snapshot ${all[baseIndex]?.id.slice(0, 8)} which is not older than the compared snapshot ${target.id.slice(0, 8)}`,
      { hint: 'give an older snapshot or date, or compare with a newer one via --snapshot' },
    );
  }
  const window = all.slice(baseIndex, targetIndex);
  // What the compared snapshot still holds, per user, over every folder (moves are not deletions).
  const present = new Set<string>();
  for await (const { user, entry } of scanner.scanAll(target.snapshot))
    present.add(user + '\0' + entry.sha256);
  const grouped = await scanGrouped(scanner, window);
  const gone = grouped.filter((m) => !present.has(m.user + '\0' + m.entry.sha256));
  const result = finish(gone, stamps(window), opts.limit);
  return { ...result, comparedTo: stamp(target.id, target.snapshot) };
}

/** Index in `all` of the snapshot deleted-since starts from. */
async function baseSnapshotIndex(
  repo: SnapshotSource,
  all: Array<{ id: string; snapshot: Snapshot }>,
  since: string,
  opts: FindOptions,
): Promise<number> {
  let at: number | undefined;
  try {
    at = parseDateBound('--deleted-since', since, opts.now ?? new Date()).start;
  } catch {
    at = undefined; // not a date: a snapshot reference
  }
  if (at === undefined) {
    const base = await repo.resolveSnapshot(since, tenantFilter(opts.tenant)).catch((err: unknown) => {
      if (!isMailarkError(err, 'USAGE')) throw err;
      throw new MailarkError(
        'USAGE',
        `--deleted-since "${since}" is neither a date nor a snapshot reference`,
        {
          hint: 'e.g. --deleted-since yesterday, --deleted-since 2026-11-20 or --deleted-since 3fa2b1c9',
        },
      );
    });
    return all.findIndex((s) => s.id === base.id);
  }
  let index = 0;
  all.forEach((s, i) => {
    if (Date.parse(s.snapshot.time) <= (at as number)) index = i;
  });
  return index;
}

/** Scans snapshots (oldest first) and groups by user + folder + SHA-256; the newest copy represents. */
async function scanGrouped(
  scanner: TreeScanner,
  snaps: Array<{ id: string; snapshot: Snapshot }>,
): Promise<LocatedMessage[]> {
  const groups = new Map<string, LocatedMessage & { snapshots: SnapshotStamp[] }>();
  for (const { id, snapshot } of snaps) {
    for await (const m of scanner.scan(id, snapshot)) {
      const key = [m.user, m.folder.path, m.entry.sha256].join('\0');
      const seen = groups.get(key)?.snapshots ?? [];
      if (seen.at(-1)?.id !== id) seen.push(stamp(id, snapshot));
      groups.set(key, { ...m, snapshots: seen });
    }
  }
  return [...groups.values()].sort(
    (a, b) =>
      cmp(a.user, b.user) ||
      cmp(a.folder.path, b.folder.path) ||
      cmp(a.entry.internalDate, b.entry.internalDate) ||
      cmp(a.entry.sha256, b.entry.sha256),
  );
}

function finish(located: LocatedMessage[], scanned: SnapshotStamp[], limit: number | undefined): FindResult {
  const cut = limit !== undefined && located.length > limit ? located.slice(0, limit) : located;
  return { matches: cut.map(toMatch), located: cut, scanned, truncated: cut.length < located.length };
}

async function snapshotsOf(repo: SnapshotSource, tenant: string | undefined) {
  const all = (await repo.listSnapshots()).filter(
    (s) => tenant === undefined || s.snapshot.tenant === tenant,
  );
  if (all.length === 0) {
    throw new MailarkError(
      'NOT_FOUND',
      `the repository holds no snapshot${tenant === undefined ? '' : ` of tenant ${tenant}`}`,
      {
        hint: 'run "mailark backup" first',
      },
    );
  }
  return all;
}

function tenantFilter(tenant: string | undefined): { tenant?: string } | undefined {
  return tenant === undefined ? undefined : { tenant };
}

function stamp(id: string, snapshot: Snapshot): SnapshotStamp {
  return { id, time: snapshot.time };
}

function stamps(snaps: Array<{ id: string; snapshot: Snapshot }>): SnapshotStamp[] {
  return snaps.map((s) => stamp(s.id, s.snapshot));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** How many tree blobs a scan reads at once: enough to hide object-store latency. */
const READ_CONCURRENCY = 8;

/**
 * Walks snapshot trees for one query, memoising tree blobs by id so that what several snapshots
 * share is read and filtered once.
 */
class TreeScanner {
  private readonly tenants = new Map<string, Promise<TenantTree>>();
  private readonly mailboxes = new Map<string, Promise<MailboxTree>>();
  private readonly pages = new Map<string, Promise<MessagePage>>();
  private readonly pageMatches = new Map<string, MessageEntry[]>();
  /** For a Message-ID query: pages whose bytes cannot hold the id are not parsed (page-prefilter.ts). */
  private readonly mayHold: ((page: Uint8Array) => boolean) | undefined;

  constructor(
    private readonly repo: TreeReader,
    private readonly query: MessageQuery,
  ) {
    this.mayHold = pagePrefilter(query);
  }

  /** The matching messages of one snapshot, in tree order. */
  async *scan(id: string, snapshot: Snapshot): AsyncGenerator<LocatedMessage> {
    for (const ref of await this.refs(snapshot)) {
      const mailbox = await this.mailbox(ref);
      const folders = mailbox.folders.filter((f) => matchesFolder(this.query, f));
      const jobs = folders.flatMap((folder) => folder.pages.map((pageId) => ({ folder, pageId })));
      const results = await inOrder(jobs, async ({ pageId }) => this.matchingEntries(pageId));
      for (let i = 0; i < jobs.length; i++) {
        const folder = (jobs[i] as { folder: FolderNode }).folder;
        for (const entry of results[i] as MessageEntry[]) yield locate(id, snapshot, ref.user, folder, entry);
      }
    }
  }

  /** Every message of the users the query concerns, all folders, no message criteria. */
  async *scanAll(snapshot: Snapshot): AsyncGenerator<{ user: string; entry: MessageEntry }> {
    for (const ref of await this.refs(snapshot)) {
      const mailbox = await this.mailbox(ref);
      const pageIds = mailbox.folders.flatMap((f) => f.pages);
      const pages = await inOrder(pageIds, (pageId) => this.page(pageId));
      for (const page of pages) for (const entry of page.entries) yield { user: ref.user, entry };
    }
  }

  private async refs(snapshot: Snapshot): Promise<MailboxRef[]> {
    let tenant = this.tenants.get(snapshot.tree);
    if (tenant === undefined) {
      tenant = this.repo.loadTree<TenantTree>(snapshot.tree);
      this.tenants.set(snapshot.tree, tenant);
    }
    return (await tenant).mailboxes.filter((r) => matchesUser(this.query, r.user));
  }

  private mailbox(ref: MailboxRef): Promise<MailboxTree> {
    let m = this.mailboxes.get(ref.tree);
    if (m === undefined) {
      m = this.repo.loadTree<MailboxTree>(ref.tree);
      this.mailboxes.set(ref.tree, m);
    }
    return m;
  }

  private page(id: string): Promise<MessagePage> {
    let p = this.pages.get(id);
    if (p === undefined) {
      p = this.repo.loadTree<MessagePage>(id);
      this.pages.set(id, p);
    }
    return p;
  }

  private async matchingEntries(pageId: string): Promise<MessageEntry[]> {
    const known = this.pageMatches.get(pageId);
    if (known !== undefined) return known;
    let page: MessagePage | undefined;
    if (this.mayHold === undefined) page = await this.repo.loadTree<MessagePage>(pageId);
    else {
      const bytes = await this.repo.loadBlob(pageId);
      if (this.mayHold(bytes)) page = parsePage(pageId, bytes);
    }
    const hits = page === undefined ? [] : page.entries.filter((e) => matchesEntry(this.query, e));
    this.pageMatches.set(pageId, hits);
    return hits;
  }
}

/** A page from its blob's bytes, as Repository.loadTree parses tree blobs. */
function parsePage(id: string, bytes: Uint8Array): MessagePage {
  try {
    return JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
    ) as MessagePage;
  } catch (err) {
    throw new MailarkError('CORRUPT', `tree blob ${id} is not valid JSON`, { cause: err });
  }
}

/** Maps with at most READ_CONCURRENCY calls in flight; results in input order. */
async function inOrder<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, items.length) }, worker));
  return out;
}
