/**
 * The mailbox sessions a backup run opens before its repository is ready: one for each mailbox its
 * pool starts first (as many as the concurrency, so no extra connection is ever open). Each logs in
 * and lists its folders (LIST, with LIST-STATUS the statuses too) while the repository derives its
 * key, loads its index, takes its lock and loads the previous state.
 *
 * The rule it keeps: only reads happen early. Planning needs the previous state, so it waits for the
 * repository; nothing is written before it is open and locked.
 */
import type { Reporter } from '../progress.js';
import type { BackupSource, SourceFolder, SourceMessage } from './backup-source.js';
import { openSource } from './mailbox-runner.js';
import type { FolderListing, FolderStatus, MessageMeta } from './plan-folder.js';
import type { BackupUser, RunBackupOptions } from './run-backup.js';

/**
 * Sessions opened ahead, one per mailbox. Each is taken by its mailbox's first attempt (a failed login
 * or listing counts as that attempt's failure); what is never taken is logged out by closeUnused().
 */
export class EarlySources {
  private readonly sources = new Map<string, Promise<BackupSource>>();

  constructor(
    private readonly opts: RunBackupOptions,
    private readonly reporter: Reporter,
  ) {}

  open(users: readonly BackupUser[]): void {
    for (const u of users) {
      const source = openSource(this.opts, this.reporter, u).then((s) => new ListedAhead(s));
      source.catch(() => {}); // seen by the mailbox that takes it
      this.sources.set(u.user, source);
    }
  }

  take(user: string): Promise<BackupSource> | undefined {
    const source = this.sources.get(user);
    this.sources.delete(user);
    return source;
  }

  async closeUnused(): Promise<void> {
    const unused = [...this.sources.values()];
    this.sources.clear();
    await Promise.all(unused.map((s) => s.then((source) => source.close()).catch(() => {})));
  }
}

/**
 * A source whose folder list is asked for at once: the first listFolders() call gets that answer
 * (or its failure), every later call asks again. The session is still used by one caller at a time:
 * the pass's first call is listFolders(), which waits for the listing in flight.
 */
class ListedAhead implements BackupSource {
  private listed: Promise<SourceFolder[]> | undefined;

  constructor(private readonly s: BackupSource) {
    this.listed = s.listFolders();
    this.listed.catch(() => {}); // seen by the first listFolders() call
  }

  get condstore(): boolean {
    return this.s.condstore;
  }

  get qresync(): boolean {
    return this.s.qresync;
  }

  listFolders(): Promise<SourceFolder[]> {
    const listed = this.listed;
    this.listed = undefined;
    return listed ?? this.s.listFolders();
  }

  statusAll(paths: readonly string[]): Promise<Map<string, FolderStatus>> {
    return this.s.statusAll(paths);
  }

  listMessages(path: string, opts?: { changedSince?: string }): Promise<FolderListing> {
    return this.s.listMessages(path, opts);
  }

  fetchMeta(path: string, uids: readonly number[]): Promise<MessageMeta[]> {
    return this.s.fetchMeta(path, uids);
  }

  fetchMessages(
    path: string,
    uids: readonly number[],
    sizes?: ReadonlyMap<number, number>,
  ): AsyncIterable<SourceMessage> {
    return this.s.fetchMessages(path, uids, sizes);
  }

  async close(): Promise<void> {
    // A listing still in flight is answered before LOGOUT (the session queues its commands).
    await this.s.close();
  }
}
