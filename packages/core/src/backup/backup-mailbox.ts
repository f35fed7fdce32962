/**
 * One mailbox's backup pass: folder by folder, follow the plans of plan-folder.ts over one IMAP
 * session, store new bodies as message records, and build the new MailboxTree.
 *
 * Rules it keeps:
 * - one connection, one command at a time (Zimbra serialises FETCH per account anyway);
 * - a body is fetched only when neither the folder's previous entries nor a content-key match anywhere
 *   in the user's previous state (moves, renames, UIDVALIDITY changes) can account for it;
 * - progress survives failure: the pass keeps what it has captured in memory (partialTree), so a retry
 *   or a checkpoint resumes from it; a half-done folder is never marked with UIDNEXT/HIGHESTMODSEQ, so
 *   it is diffed (never carried) next time.
 */
import { isMailarkError, MailarkError } from '../errors.js';
import {
  type BlobId,
  type FolderNode,
  type MailboxTree,
  type MessageEntry,
  type MessagePage,
  SNAPSHOT_VERSION,
  splitFlags,
} from '../mail/snapshot.js';
import { saveFolderPages, type TreeWriter } from '../mail/snapshot-tree.js';
import type { BackupSource, SourceFolder, SourceMessage } from './backup-source.js';
import type { ChunkerParams } from './chunker.js';
import { HeaderScanner } from './header-summary.js';
import { type BlobSaver, MessageRecordWriter } from './message-record.js';
import {
  ContentIndex,
  type FolderStatus,
  type ListedMessage,
  type MessageMeta,
  matchUnknown,
  planFolder,
  planListing,
} from './plan-folder.js';

/** What a mailbox pass needs of the repository (Repository satisfies it). */
export interface MailboxRepo extends TreeWriter, BlobSaver {}

export interface MailboxStats {
  folders: number;
  messages: number;
  bytes: number;
  /** Messages whose content is new to this mailbox's state (fetched and not a re-download). */
  newMessages: number;
  changedFlags: number;
  expunged: number;
  /** Bodies downloaded, and their bytes. */
  fetchedMessages: number;
  fetchedBytes: number;
  /** Bodies downloaded whose exact bytes this mailbox's previous state already held (counted, reported). */
  refetched: number;
  /** Unknown UIDs matched to stored content by Message-ID + size + INTERNALDATE (no download). */
  matched: number;
  /** Bytes added to the repository for message data. */
  storedBytes: number;
  /** Folders carried without a listing (one STATUS each). */
  carriedFolders: number;
}

export function emptyStats(): MailboxStats {
  return {
    folders: 0,
    messages: 0,
    bytes: 0,
    newMessages: 0,
    changedFlags: 0,
    expunged: 0,
    fetchedMessages: 0,
    fetchedBytes: 0,
    refetched: 0,
    matched: 0,
    storedBytes: 0,
    carriedFolders: 0,
  };
}

export interface MailboxPassOptions {
  user: string;
  repo: MailboxRepo;
  chunker: ChunkerParams;
  /** The state to be incremental from (a snapshot's or checkpoint's tree, or a failed attempt's). */
  prev: MailboxTree | undefined;
  /** Further previous trees whose entries may match unknown messages by content key. */
  alsoKnown?: readonly MailboxTree[];
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Fetched bytes between two onPartial calls (the caller checkpoints there). */
  partialEvery?: number;
  onPartial?: (tree: MailboxTree) => Promise<void>;
  /** Called after each stored message with its size and the bytes it added to the repository. */
  onMessage?: (bytes: number, storedBytes: number) => void;
  /** After the STATUS round: about how many messages this pass will fetch (for an ETA). */
  onPlan?: (expectedMessages: number) => void;
}

interface CurrentFolder {
  base: FolderNode;
  entries: MessageEntry[];
}

/** One attempt at one mailbox. run() once; partialTree() any time (also after run failed). */
export class MailboxPass {
  readonly stats = emptyStats();
  private readonly done: FolderNode[] = [];
  private current: CurrentFolder | undefined;
  private readonly pageCache = new Map<BlobId, MessageEntry[]>();
  private index: ContentIndex | undefined;
  private sinceCheckpoint = 0;

  constructor(private readonly o: MailboxPassOptions) {}

  async run(source: BackupSource): Promise<MailboxTree> {
    const folders = (await source.listFolders()).sort((a, b) => cmp(a.path, b.path));
    const selectable = folders.filter((f) => f.selectable).map((f) => f.path);
    const statuses = await source.statusAll(selectable);
    const prevByPath = new Map((this.o.prev?.folders ?? []).map((f) => [f.path, f]));
    this.o.onPlan?.(expectedMessages(prevByPath, statuses));
    for (const f of folders) {
      this.checkAborted();
      const base = baseNode(f);
      const status = statuses.get(f.path);
      if (!f.selectable) {
        this.done.push(base);
        continue;
      }
      // Deleted between LIST and STATUS: the folder is gone; the next run sees it so.
      if (status === undefined) continue;
      try {
        this.done.push(await this.folder(source, f, base, status, prevByPath.get(f.path)));
      } catch (err) {
        // Deleted while we were at it (RFC 5530 [NONEXISTENT]): it is gone, as the next LIST will say.
        if (!folderGone(err)) throw err;
        this.current = undefined;
      }
    }
    const tree: MailboxTree = { v: SNAPSHOT_VERSION, user: this.o.user, folders: this.done };
    this.stats.folders = tree.folders.length;
    this.stats.messages = sum(tree.folders, (f) => f.messages);
    this.stats.bytes = sum(tree.folders, (f) => f.bytes);
    return tree;
  }

  /**
   * What this pass has captured so far, over the previous state: finished folders as they are now, the
   * folder in progress with the messages stored so far (no UIDNEXT/HIGHESTMODSEQ), and every folder not
   * visited yet as it was. Stores the in-progress folder's pages.
   */
  async partialTree(): Promise<MailboxTree> {
    const byPath = new Map((this.o.prev?.folders ?? []).map((f) => [f.path, f]));
    for (const f of this.done) byPath.set(f.path, f);
    if (this.current !== undefined && !this.o.dryRun) {
      const entries = [...this.current.entries].sort((a, b) => a.uid - b.uid);
      const node: FolderNode = {
        ...this.current.base,
        messages: entries.length,
        bytes: sum(entries, (e) => e.size),
        pages: await saveFolderPages(this.o.repo, entries),
      };
      byPath.set(node.path, node);
    }
    return {
      v: SNAPSHOT_VERSION,
      user: this.o.user,
      folders: [...byPath.values()].sort((a, b) => cmp(a.path, b.path)),
    };
  }

  private async folder(
    source: BackupSource,
    f: SourceFolder,
    base: FolderNode,
    status: FolderStatus,
    prev: FolderNode | undefined,
  ): Promise<FolderNode> {
    const request = planListing(prev, status, { condstore: source.condstore });
    if (request.kind === 'carry' && prev !== undefined) {
      this.stats.carriedFolders++;
      return { ...prev, ...listAttributes(base) };
    }
    if (request.kind === 'carry') throw new Error('unreachable: carry without a previous folder');
    const listing = await source.listMessages(
      f.path,
      request.kind === 'changes' ? { changedSince: request.changedSince } : {},
    );
    const prevEntries = prev === undefined ? [] : await this.entries(prev);
    const plan = planFolder(prevEntries, request, listing);
    this.stats.changedFlags += plan.flagChanges;

    // Half-done state of this folder: same UIDVALIDITY, but no UIDNEXT/HIGHESTMODSEQ until it is whole.
    const partialBase: FolderNode = { ...base, uidValidity: status.uidValidity };
    this.current = { base: partialBase, entries: [...plan.keep] };

    let toFetch: Array<ListedMessage | MessageMeta> = plan.unknown;
    let matched = 0;
    if (plan.unknown.length > 0) {
      const index = await this.contentIndex();
      // Only a message whose listed size some stored message has may match by content key: the others
      // need no Message-ID (in an initial backup that spares a meta round for almost every message).
      const ask = this.o.dryRun ? plan.unknown : plan.unknown.filter((m) => index.mayMatch(m.size));
      if (ask.length > 0 && (index.size > 0 || this.o.dryRun)) {
        const metas = await source.fetchMeta(
          f.path,
          ask.map((m) => m.uid),
        );
        const r = matchUnknown(metas, index);
        matched = r.matched.length;
        this.stats.matched += matched;
        this.current.entries.push(...r.matched);
        const asked = new Set(ask.map((m) => m.uid));
        toFetch = [...plan.unknown.filter((m) => !asked.has(m.uid)), ...r.fetch];
      }
    }

    let refetched = 0;
    let got = 0;
    if (this.o.dryRun) {
      this.stats.fetchedMessages += toFetch.length;
      this.stats.fetchedBytes += sum(toFetch, (m) => m.size ?? 0);
      this.stats.newMessages += toFetch.length;
    } else if (toFetch.length > 0) {
      const current = this.current;
      // Entries are recorded in message order, each once its blobs are stored.
      const record = async (entry: MessageEntry): Promise<void> => {
        got++;
        current.entries.push(entry);
        // Bytes this mailbox already had (no Message-ID to match on, or a changed one): counted.
        if (this.index?.hasContent(entry.sha256)) refetched++;
        this.index?.add([entry]);
        await this.maybeCheckpoint(entry.size);
      };
      // Messages are stored while the next ones are read: the seal pool gets a batch's blobs at once
      // instead of one message's, and IMAP parsing never waits for compression.
      const window = new StoreWindow<MessageEntry>(STORE_WINDOW_BYTES, STORE_WINDOW_MESSAGES);
      try {
        for await (const msg of source.fetchMessages(
          f.path,
          toFetch.map((m) => m.uid),
          knownSizes(toFetch),
        )) {
          this.checkAborted();
          const { consumed, stored } = this.store(msg);
          // A streamed body must be read to its end before the source is asked for the next message.
          await consumed;
          await window.add(msg.size, stored, record);
        }
      } catch (err) {
        // No store outlives the loop: what finishes is recorded (kept by partialTree), and the error
        // that ended the loop is the one reported.
        await window.drain().catch(() => {});
        throw err;
      }
      await window.drain();
      this.stats.newMessages += got - refetched;
      this.stats.refetched += refetched;
    }
    // In a re-map no previous UID survives, but matched and re-downloaded messages were never gone.
    this.stats.expunged +=
      plan.mode === 'remap' ? Math.max(0, plan.expunged.length - matched - refetched) : plan.expunged.length;

    const entries = this.current.entries.sort((a, b) => a.uid - b.uid);
    this.current = undefined;
    const node: FolderNode = {
      ...base,
      uidValidity: status.uidValidity,
      uidNext: status.uidNext,
      messages: entries.length,
      bytes: sum(entries, (e) => e.size),
      pages: this.o.dryRun ? [] : await saveFolderPages(this.o.repo, entries),
    };
    if (status.highestModseq !== undefined) node.highestModseq = status.highestModseq;
    return node;
  }

  /**
   * Streams one message into the repository and reads its header summary on the way. `consumed`
   * resolves once its body is read (and its blobs handed to the repository), `stored` once they are
   * stored; the caller may read the next message in between.
   */
  private store(msg: SourceMessage): { consumed: Promise<void>; stored: Promise<MessageEntry> } {
    const writer = new MessageRecordWriter(this.o.repo, this.o.chunker);
    const scanner = new HeaderScanner();
    const consumed = (async () => {
      if (msg.body instanceof Uint8Array) {
        scanner.push(msg.body);
        await writer.write(msg.body);
      } else {
        for await (const piece of msg.body) {
          scanner.push(piece);
          await writer.write(piece);
        }
      }
    })();
    // A body that could not be read to its end is never finished: free what its stream holds.
    consumed.catch(() => writer.abort());
    // Metadata only: the body (a buffer of the IMAP batch) must be free to go once its blobs are
    // handed to the seal pool, not held until they are stored.
    const { body: _body, ...meta } = msg;
    const stored = consumed.then(() => this.finishStore(meta, writer, scanner));
    // When reading fails the caller sees it through `consumed`; this copy must not go unhandled.
    stored.catch(() => {});
    return { consumed, stored };
  }

  private async finishStore(
    msg: Omit<SourceMessage, 'body'>,
    writer: MessageRecordWriter,
    scanner: HeaderScanner,
  ): Promise<MessageEntry> {
    const rec = await writer.finish();
    const { flags, keywords } = splitFlags(msg.flags);
    const entry: MessageEntry = {
      uid: msg.uid,
      size: rec.size,
      sha256: rec.sha256,
      internalDate: new Date(msg.internalDate).toISOString(),
      flags,
      keywords,
      content: rec.content,
      h: scanner.summary(),
    };
    if (msg.modseq !== undefined) entry.modseq = msg.modseq;
    this.stats.fetchedMessages++;
    this.stats.fetchedBytes += rec.size;
    this.stats.storedBytes += rec.storedBytes;
    this.o.onMessage?.(rec.size, rec.storedBytes);
    return entry;
  }

  private async maybeCheckpoint(bytes: number): Promise<void> {
    this.sinceCheckpoint += bytes;
    const every = this.o.partialEvery;
    if (every === undefined || this.o.onPartial === undefined || this.sinceCheckpoint < every) return;
    this.sinceCheckpoint = 0;
    await this.o.onPartial(await this.partialTree());
  }

  private checkAborted(): void {
    if (this.o.signal?.aborted) {
      throw new MailarkError('INTERRUPTED', `backup of ${this.o.user} interrupted`, {
        hint: 'run the backup again: it resumes from the last checkpoint',
      });
    }
  }

  private async entries(folder: FolderNode): Promise<MessageEntry[]> {
    const pages = await Promise.all(folder.pages.map((id) => this.page(id)));
    return pages.flat();
  }

  private async page(id: BlobId): Promise<MessageEntry[]> {
    let entries = this.pageCache.get(id);
    if (entries === undefined) {
      entries = (await this.o.repo.loadTree<MessagePage>(id)).entries;
      this.pageCache.set(id, entries);
    }
    return entries;
  }

  /** Every previous entry of this user (all folders, all known trees), by content key; built once. */
  private async contentIndex(): Promise<ContentIndex> {
    if (this.index !== undefined) return this.index;
    const index = new ContentIndex();
    const seen = new Set<BlobId>();
    for (const tree of [this.o.prev, ...(this.o.alsoKnown ?? [])]) {
      for (const folder of tree?.folders ?? []) {
        for (const id of folder.pages) {
          if (seen.has(id)) continue;
          seen.add(id);
          index.add(await this.page(id));
        }
      }
    }
    // Messages stored later in this pass are added as they come (a copy in two folders downloads once).
    this.index = index;
    return index;
  }
}

/**
 * Bytes and messages a mailbox pass may have in flight between reading and stored: one fetch batch.
 * Four mailboxes then have at most ~6 seal jobs in flight (10 with 4 MiB), enough for the pool's two
 * workers; what waits beyond that is sealed data and messages held for nothing. 500 MB rig, 10
 * alternating runs: external peak median ~117 -> ~100 MiB, max RSS median ~273 -> ~258 MiB, CPU
 * unchanged.
 */
const STORE_WINDOW_BYTES = 1024 * 1024;
const STORE_WINDOW_MESSAGES = 32;

/**
 * Stores in flight, bounded by bytes and count; each one's result is recorded in the order added.
 * add() waits while the window is full; drain() waits for all. The first failure is thrown once (by
 * add or drain); later results are dropped and nothing is left unhandled.
 */
class StoreWindow<T> {
  private chain: Promise<void> = Promise.resolve();
  private bytes = 0;
  private count = 0;
  private readonly waiting: Array<() => void> = [];
  private failure: { err: unknown } | undefined;
  private thrown = false;

  constructor(
    private readonly maxBytes: number,
    private readonly maxCount: number,
  ) {}

  async add(bytes: number, work: Promise<T>, record: (result: T) => Promise<void>): Promise<void> {
    this.bytes += bytes;
    this.count++;
    work.catch(() => {});
    this.chain = this.chain.then(async () => {
      try {
        if (this.failure === undefined) await record(await work);
      } catch (err) {
        this.failure ??= { err };
      } finally {
        this.bytes -= bytes;
        this.count--;
        this.waiting.shift()?.();
      }
    });
    while (this.failure === undefined && (this.bytes > this.maxBytes || this.count > this.maxCount))
      await new Promise<void>((r) => this.waiting.push(r));
    this.throwFailure();
  }

  async drain(): Promise<void> {
    await this.chain;
    this.throwFailure();
  }

  private throwFailure(): void {
    if (this.failure === undefined || this.thrown) return;
    this.thrown = true;
    throw this.failure.err;
  }
}

/** The server says the folder does not exist (any more): RFC 5530 NONEXISTENT. */
function folderGone(err: unknown): boolean {
  return isMailarkError(err) && err.details?.responseCode === 'NONEXISTENT';
}

function baseNode(f: SourceFolder): FolderNode {
  const node: FolderNode = {
    path: f.path,
    rawPath: f.rawPath,
    delimiter: f.delimiter,
    flags: [...f.flags].sort(),
    subscribed: f.subscribed,
    selectable: f.selectable,
    messages: 0,
    bytes: 0,
    pages: [],
  };
  if (f.specialUse !== undefined) node.specialUse = f.specialUse;
  return node;
}

/** The LIST-derived fields of a node (for a carried folder: its name and attributes may have changed). */
function listAttributes(base: FolderNode): Partial<FolderNode> {
  return {
    path: base.path,
    rawPath: base.rawPath,
    delimiter: base.delimiter,
    flags: base.flags,
    specialUse: base.specialUse,
    subscribed: base.subscribed,
    selectable: base.selectable,
  };
}

/** RFC822.SIZE of the messages whose listing or meta gave it. */
function knownSizes(messages: ReadonlyArray<{ uid: number; size?: number }>): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of messages) if (m.size !== undefined) out.set(m.uid, m.size);
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sum<T>(xs: readonly T[], f: (x: T) => number): number {
  let n = 0;
  for (const x of xs) n += f(x);
  return n;
}

/**
 * About how many messages a pass will fetch: per folder, the count STATUS reports minus what the
 * previous state held under the same UIDVALIDITY (a progress estimate, not a plan: moves and expunges
 * blur it, and messages matched by content are not fetched).
 */
export function expectedMessages(
  prev: ReadonlyMap<string, FolderNode>,
  statuses: ReadonlyMap<string, FolderStatus>,
): number {
  let n = 0;
  for (const [path, status] of statuses) {
    const p = prev.get(path);
    n += Math.max(
      0,
      status.messages - (p !== undefined && p.uidValidity === status.uidValidity ? p.messages : 0),
    );
  }
  return n;
}
