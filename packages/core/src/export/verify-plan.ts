/**
 * The expected side of verify-export: from a snapshot, what an export of some of its users must hold,
 * computed with the same layout functions the writers use (export-paths.ts, maildir-layout.ts).
 *
 * Folders are few (held in memory, with the maps from each format's folder path to the folder);
 * messages are many (walked lazily, page by page, once per format, in the order the export writes
 * them). Keys are number tuples [user, folder, uid] (mbox: [user, folder, position in the file]) so a
 * merge join (sorted-matcher.ts) compares the export with the snapshot in O(1) memory.
 */
import type { FolderNode, MessageEntry, MessagePage, Snapshot } from '../mail/snapshot.js';
import { loadMailboxTree, loadTenantTree, type TreeReader } from '../mail/snapshot-tree.js';
import { emlFolderPath, maildirFolderPath, mboxPath, userRoot } from './export-paths.js';
import { byPath } from './export-source.js';
import { keywordLetters } from './maildir-layout.js';

export interface PlannedFolder {
  user: string;
  userIndex: number;
  folderIndex: number;
  node: FolderNode;
  maildirDir: string;
  emlDir: string;
  mboxFile: string;
}

export interface ExpectedMessage {
  folder: PlannedFolder;
  entry: MessageEntry;
}

export type Key = number[];

export class VerifyPlan {
  /** Every folder of the exported users, in export order (\Noselect ones included). */
  readonly folders: PlannedFolder[] = [];
  readonly byMaildirDir = new Map<string, PlannedFolder>();
  readonly byEmlDir = new Map<string, PlannedFolder>();
  readonly byMboxFile = new Map<string, PlannedFolder>();
  readonly userRoots = new Map<string, string>();
  private readonly letterCache = new Map<PlannedFolder, Map<string, string>>();

  private constructor(
    private readonly repo: TreeReader,
    readonly tenant: string,
    readonly users: string[],
  ) {}

  /** Loads the tenant and mailbox trees of `users` (those the snapshot lacks are returned apart). */
  static async load(
    repo: TreeReader,
    snapshot: Snapshot,
    users: readonly string[],
  ): Promise<{ plan: VerifyPlan; unknownUsers: string[] }> {
    const tenant = await loadTenantTree(repo, snapshot);
    const refs = tenant.mailboxes
      .filter((r) => users.includes(r.user))
      .sort((a, b) => (a.user < b.user ? -1 : 1));
    const plan = new VerifyPlan(
      repo,
      snapshot.tenant,
      refs.map((r) => r.user),
    );
    for (const [userIndex, ref] of refs.entries()) {
      plan.userRoots.set(userRoot(snapshot.tenant, ref.user), ref.user);
      const tree = await loadMailboxTree(repo, ref);
      const folders = [...tree.folders].sort(byPath);
      for (const [folderIndex, node] of folders.entries()) {
        const f: PlannedFolder = {
          user: ref.user,
          userIndex,
          folderIndex,
          node,
          maildirDir: maildirFolderPath(snapshot.tenant, ref.user, node),
          emlDir: emlFolderPath(snapshot.tenant, ref.user, node),
          mboxFile: mboxPath(snapshot.tenant, ref.user, node),
        };
        plan.folders.push(f);
        if (node.selectable) {
          plan.byMaildirDir.set(f.maildirDir, f);
          plan.byEmlDir.set(f.emlDir, f);
          plan.byMboxFile.set(f.mboxFile, f);
        }
      }
    }
    return { plan, unknownUsers: users.filter((u) => !refs.some((r) => r.user === u)) };
  }

  /** Messages of every selectable folder in export order, keyed [user, folder, uid or position]. */
  async *messages(keyBy: 'uid' | 'position'): AsyncGenerator<[Key, ExpectedMessage]> {
    for (const folder of this.folders) {
      if (!folder.node.selectable) continue;
      let position = 0;
      for (const id of folder.node.pages) {
        for (const entry of (await this.repo.loadTree<MessagePage>(id)).entries) {
          const last = keyBy === 'uid' ? entry.uid : position++;
          yield [[folder.userIndex, folder.folderIndex, last], { folder, entry }];
        }
      }
    }
  }

  /** Every folder in export order, keyed [user, folder]. */
  async *folderKeys(): AsyncGenerator<[Key, PlannedFolder]> {
    for (const f of this.folders) yield [[f.userIndex, f.folderIndex], f];
  }

  /** The folder's Maildir keyword letters, as the writer assigned them (keywords sorted, a..z). */
  async letters(folder: PlannedFolder): Promise<Map<string, string>> {
    const cached = this.letterCache.get(folder);
    if (cached !== undefined) return cached;
    const set = new Set<string>();
    for (const id of folder.node.pages) {
      for (const e of (await this.repo.loadTree<MessagePage>(id)).entries)
        for (const k of e.keywords) set.add(k);
    }
    const { letters } = keywordLetters([...set].sort());
    // A few folders at a time are enough: each check visits folders in order.
    if (this.letterCache.size >= 4)
      this.letterCache.delete(this.letterCache.keys().next().value as PlannedFolder);
    this.letterCache.set(folder, letters);
    return letters;
  }

  /** The user (login) whose part of the export `root` ("<tenant>/<user>") is. */
  userOf(root: string): string | undefined {
    return this.userRoots.get(root);
  }
}
