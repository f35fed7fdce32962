/**
 * Test helper: a snapshot with chosen folders (names, delimiters, attributes) and messages (bytes,
 * flags, keywords, internal dates, UIDs) in a repository, for the export and verify-export tests.
 * Not for production use.
 */
import { createHash } from 'node:crypto';
import type { FolderNode, MessageEntry } from '../mail/snapshot.js';
import { saveFolderPages } from '../mail/snapshot-tree.js';
import type { Repository } from '../repo/repository.js';
import { saveSnapshotOfFolders } from '../repo/test-repository.js';

export interface TestMessage {
  raw: Uint8Array;
  uid?: number;
  flags?: string[];
  keywords?: string[];
  internalDate?: string;
}

export interface TestFolder {
  path: string;
  delimiter?: string;
  rawPath?: string;
  flags?: string[];
  specialUse?: string;
  subscribed?: boolean;
  selectable?: boolean;
  uidValidity?: string;
  uidNext?: number;
  messages?: TestMessage[];
}

export async function saveExportTestSnapshot(
  repo: Repository,
  tenant: string,
  mail: Record<string, TestFolder[]>,
  time = '2024-06-01T02:00:00.000Z',
): Promise<string> {
  const byUser = new Map<string, FolderNode[]>();
  for (const user of Object.keys(mail).sort()) {
    const folders: FolderNode[] = [];
    for (const f of [...(mail[user] ?? [])].sort((a, b) => (a.path < b.path ? -1 : 1))) {
      const entries: MessageEntry[] = [];
      for (const [i, m] of (f.messages ?? []).entries()) {
        const content = [(await repo.saveBlob('data', m.raw)).id];
        entries.push({
          uid: m.uid ?? i + 1,
          size: m.raw.byteLength,
          sha256: createHash('sha256').update(m.raw).digest('hex'),
          internalDate: m.internalDate ?? new Date(Date.UTC(2024, 0, 1 + i, 8, 30, 15)).toISOString(),
          flags: [...(m.flags ?? [])].sort(),
          keywords: [...(m.keywords ?? [])].sort(),
          content,
          h: {},
        });
      }
      const selectable = f.selectable ?? true;
      folders.push({
        path: f.path,
        rawPath: f.rawPath ?? f.path,
        delimiter: f.delimiter ?? '/',
        flags: f.flags ?? [],
        ...(f.specialUse === undefined ? {} : { specialUse: f.specialUse }),
        subscribed: f.subscribed ?? true,
        selectable,
        ...(selectable ? { uidValidity: f.uidValidity ?? '1700000000' } : {}),
        ...(selectable ? { uidNext: f.uidNext ?? (entries.at(-1)?.uid ?? 0) + 1 } : {}),
        messages: entries.length,
        bytes: entries.reduce((n, e) => n + e.size, 0),
        pages: await saveFolderPages(repo, entries),
      });
    }
    byUser.set(user, folders);
  }
  return (await saveSnapshotOfFolders(repo, byUser, time, tenant)).id;
}
