/**
 * verify-export's per-file checks: each file of the export is hashed as it streams by, sorted by what
 * it is (a Maildir message or control file, an mbox file, an EML file, manifest.jsonl,
 * folders.jsonl...) and its facts merged against the snapshot's (verify-plan.ts), one merge per kind.
 */
import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { ArchiveEntry } from './archive-reader.js';
import {
  classifyExportPath,
  type ExportFormat,
  FOLDERS_FILE,
  MANIFEST_FILE,
  README_FILE,
} from './export-paths.js';
import {
  dovecotKeywordsFile,
  maildirBaseName,
  parseDovecotKeywords,
  parseMaildirFileName,
  subscriptionName,
  subscriptionsFile,
} from './maildir-layout.js';
import type { FolderLine, ManifestLine } from './manifest.js';
import { type MboxMessage, MboxrdReader } from './mbox-reader.js';
import { compareTuples, SortedMatcher } from './sorted-matcher.js';
import {
  compareFile,
  compareFolderLine,
  compareMaildir,
  compareManifestLine,
  compareMbox,
  type FileSeen,
  ids,
  type MaildirSeen,
  type WithLetters,
} from './verify-compare.js';
import type { ExportDifference } from './verify-export.js';
import type { ExpectedMessage, Key, PlannedFolder, VerifyPlan } from './verify-plan.js';

type Differ = (d: ExportDifference) => void;
export class VerifyChecks {
  readonly found: Partial<Record<ExportFormat, number>> = {};
  readonly expectedMessages: number;
  private readonly maildir?: SortedMatcher<Key, WithLetters, MaildirSeen>;
  private readonly mbox?: SortedMatcher<Key, ExpectedMessage, MboxMessage & { path: string }>;
  private readonly eml?: SortedMatcher<Key, ExpectedMessage, FileSeen>;
  private readonly manifest: SortedMatcher<Key, WithLetters, ManifestLine>;
  private readonly folderLines: SortedMatcher<Key, PlannedFolder, FolderLine>;
  /** letter → keyword per Maildir folder directory, from the export's own dovecot-keywords. */
  private readonly lettersByDir = new Map<string, Map<string, string>>();
  private readonly byUserFolder = new Map<string, PlannedFolder>();
  private sawManifest = false;
  private sawFolders = false;
  private sawReadme = false;

  constructor(
    readonly plan: VerifyPlan,
    readonly formats: ExportFormat[],
    private readonly statusHeaders: boolean,
    private readonly differ: Differ,
  ) {
    this.expectedMessages = plan.folders.reduce((n, f) => n + (f.node.selectable ? f.node.messages : 0), 0);
    for (const f of plan.folders) this.byUserFolder.set(`${f.user}\0${f.node.path}`, f);
    const where = (e: ExpectedMessage) => `${e.folder.user} ${e.folder.node.path} UID ${e.entry.uid}`;
    const missing =
      (format: ExportFormat, path: (e: ExpectedMessage) => string) => (_: Key, e: ExpectedMessage) =>
        differ({
          kind: 'missing',
          format,
          ...ids(e),
          path: path(e),
          message: `${where(e)}: no ${format} copy (${path(e)})`,
        });
    const unexpected = (format: ExportFormat) => (_: Key, a: { path: string }) =>
      differ({
        kind: 'unexpected',
        format,
        path: a.path,
        message: `${a.path}: not a message of the snapshot`,
      });
    const outOfOrder = (format: ExportFormat) => (_: Key, a: { path: string }) =>
      differ({
        kind: 'order',
        format,
        path: a.path,
        message: `${a.path}: out of the order mailark writes (repacked? verify the unpacked directory)`,
      });
    if (formats.includes('maildir')) {
      this.maildir = new SortedMatcher<Key, WithLetters, MaildirSeen>(this.withLetters(), compareTuples, {
        matched: (_, e, a) => this.report('maildir', compareMaildir(e, a)),
        missing: missing(
          'maildir',
          (e) =>
            `${e.folder.maildirDir}/cur/${maildirBaseName(e.entry.uid, e.entry.internalDate, e.entry.size)}:2,…`,
        ),
        unexpected: unexpected('maildir'),
        outOfOrder: outOfOrder('maildir'),
      });
    }
    if (formats.includes('mbox')) {
      this.mbox = new SortedMatcher<Key, ExpectedMessage, MboxMessage & { path: string }>(
        plan.messages('position'),
        compareTuples,
        {
          matched: (_, e, a) => this.report('mbox', compareMbox(e, a, this.statusHeaders)),
          missing: missing('mbox', (e) => e.folder.mboxFile),
          unexpected: (_, a) =>
            differ({
              kind: 'unexpected',
              format: 'mbox',
              path: a.path,
              message: `${a.path}: message #${a.index + 1} (offset ${a.offset}) is not in the snapshot`,
            }),
          outOfOrder: outOfOrder('mbox'),
        },
      );
    }
    if (formats.includes('eml')) {
      this.eml = new SortedMatcher<Key, ExpectedMessage, FileSeen>(plan.messages('uid'), compareTuples, {
        matched: (_, e, a) => this.report('eml', compareFile('eml', e, a)),
        missing: missing('eml', (e) => `${e.folder.emlDir}/${e.entry.uid}.eml`),
        unexpected: unexpected('eml'),
        outOfOrder: outOfOrder('eml'),
      });
    }
    this.manifest = new SortedMatcher<Key, WithLetters, ManifestLine>(this.withLetters(), compareTuples, {
      matched: (_, e, a) => this.report(undefined, compareManifestLine(e, a, this.formats)),
      missing: (_, e) =>
        differ({
          kind: 'manifest',
          ...ids(e),
          path: MANIFEST_FILE,
          message: `${MANIFEST_FILE}: no line for ${where(e)}`,
        }),
      unexpected: (_, a) =>
        differ({
          kind: 'manifest',
          path: MANIFEST_FILE,
          message: `${MANIFEST_FILE}: line for ${a.user} ${a.folder} UID ${a.uid}, not in the snapshot`,
        }),
      outOfOrder: (_, a) =>
        differ({
          kind: 'manifest',
          path: MANIFEST_FILE,
          message: `${MANIFEST_FILE}: line for ${a.user} ${a.folder} UID ${a.uid} out of order`,
        }),
    });
    this.folderLines = new SortedMatcher<Key, PlannedFolder, FolderLine>(plan.folderKeys(), compareTuples, {
      matched: (_, e, a) => this.report(undefined, compareFolderLine(e, a)),
      missing: (_, e) =>
        differ({
          kind: 'folders',
          user: e.user,
          folder: e.node.path,
          path: FOLDERS_FILE,
          message: `${FOLDERS_FILE}: no line for ${e.user} ${e.node.path}`,
        }),
      unexpected: (_, a) =>
        differ({
          kind: 'folders',
          path: FOLDERS_FILE,
          message: `${FOLDERS_FILE}: line for ${a.user} ${a.folder}, not in the snapshot`,
        }),
      outOfOrder: (_, a) =>
        differ({
          kind: 'folders',
          path: FOLDERS_FILE,
          message: `${FOLDERS_FILE}: line for ${a.user} ${a.folder} out of order`,
        }),
    });
  }

  /** Checks one file (consuming its content); returns its SHA-256. */
  async file(entry: ArchiveEntry): Promise<string> {
    const c = classifyExportPath(entry.path);
    const user =
      c.kind === 'maildir' || c.kind === 'mbox' || c.kind === 'eml' ? this.plan.userOf(c.root) : undefined;
    if (c.kind === 'root') {
      if (c.name === MANIFEST_FILE) return this.manifestFile(entry);
      if (c.name === FOLDERS_FILE) return this.foldersFile(entry);
      if (c.name === README_FILE) {
        this.sawReadme = true;
        return (await hashOf(entry)).sha256;
      }
    } else if (c.kind !== 'other' && user !== undefined && this.formats.includes(c.kind)) {
      if (c.kind === 'maildir') {
        const sha = await this.maildirFile(entry, c.root, c.rest, user);
        if (sha !== undefined) return sha;
      } else if (c.kind === 'mbox') {
        const folder = this.plan.byMboxFile.get(entry.path);
        if (folder !== undefined) return this.mboxFile(entry, folder);
      } else {
        const m = /^(.*)\/(\d+)\.eml$/.exec(c.rest);
        const folder = m === null ? undefined : this.plan.byEmlDir.get(`${c.root}/eml/${m[1]}`);
        if (m !== null && folder !== undefined) {
          const h = await hashOf(entry);
          await this.eml?.found([folder.userIndex, folder.folderIndex, Number(m[2])], {
            path: entry.path,
            mtime: entry.mtime,
            ...h,
          });
          return h.sha256;
        }
      }
    }
    this.differ({
      kind: 'unexpected',
      path: entry.path,
      message: `${entry.path}: not part of an export of this snapshot`,
    });
    return (await hashOf(entry)).sha256;
  }

  async finish(): Promise<void> {
    await this.maildir?.finish();
    await this.mbox?.finish();
    await this.eml?.finish();
    await this.manifest.finish();
    await this.folderLines.finish();
    for (const [seen, name] of [
      [this.sawManifest, MANIFEST_FILE],
      [this.sawFolders, FOLDERS_FILE],
      [this.sawReadme, README_FILE],
    ] as const) {
      if (!seen) this.differ({ kind: 'missing', path: name, message: `${name} is missing` });
    }
  }

  /** Expected messages with their folder's keyword letters (as the Maildir writer assigned them). */
  private async *withLetters(): AsyncGenerator<[Key, WithLetters]> {
    for await (const [k, e] of this.plan.messages('uid'))
      yield [k, { ...e, letters: await this.plan.letters(e.folder) }];
  }

  private async maildirFile(
    entry: ArchiveEntry,
    root: string,
    rest: string,
    user: string,
  ): Promise<string | undefined> {
    const m =
      /^(?:(\.[^/]+)\/)?(cur|new|tmp|dovecot-keywords|dovecot-uidlist|maildirfolder|subscriptions)(?:\/([^/]+))?$/.exec(
        rest,
      );
    if (m === null) return undefined;
    const dirPath = m[1] === undefined ? `${root}/Maildir` : `${root}/Maildir/${m[1]}`;
    const folder = this.plan.byMaildirDir.get(dirPath);
    const what = m[2] as string;
    if (what === 'subscriptions') {
      if (m[1] !== undefined || m[3] !== undefined) return undefined;
      const { sha256, text } = await textOf(entry);
      const names = this.plan.folders
        .filter((f) => f.user === user && f.node.subscribed)
        .map((f) => subscriptionName(f.node.path, f.node.delimiter));
      if (text !== subscriptionsFile(names)) {
        this.differ({
          kind: 'content',
          format: 'maildir',
          user,
          path: entry.path,
          message: `${entry.path}: the subscriptions differ from the snapshot's`,
        });
      }
      return sha256;
    }
    if (folder === undefined || (m[3] === undefined) !== (what !== 'cur' && what !== 'new' && what !== 'tmp'))
      return undefined;
    if (what === 'dovecot-keywords') {
      const { sha256, text } = await textOf(entry);
      this.lettersByDir.set(dirPath, parseDovecotKeywords(text));
      const expected = dovecotKeywordsFile(await this.plan.letters(folder));
      if (text !== expected) {
        this.differ({
          kind: 'flags',
          format: 'maildir',
          user,
          folder: folder.node.path,
          path: entry.path,
          message: `${entry.path}: keyword letters differ from the snapshot's keywords`,
        });
      }
      return sha256;
    }
    if (what === 'dovecot-uidlist') {
      const { sha256, text } = await textOf(entry, 4096);
      const v = /^3 V(\d+) N(\d+)/.exec(text)?.[1];
      if (v !== folder.node.uidValidity) {
        this.differ({
          kind: 'content',
          format: 'maildir',
          user,
          folder: folder.node.path,
          path: entry.path,
          message: `${entry.path}: UIDVALIDITY ${v ?? 'missing'}, the snapshot has ${folder.node.uidValidity}`,
        });
      }
      return sha256;
    }
    if (what === 'maildirfolder') return (await hashOf(entry)).sha256;
    const name = parseMaildirFileName(m[3] as string);
    if (what !== 'cur' || name.uid === undefined) return undefined;
    const h = await hashOf(entry);
    await this.maildir?.found([folder.userIndex, folder.folderIndex, name.uid], {
      path: entry.path,
      ...h,
      ...(name.size === undefined ? {} : { nameSize: name.size }),
      info: name.info,
      mtime: entry.mtime,
      byLetter: this.lettersByDir.get(dirPath) ?? new Map(),
    });
    return h.sha256;
  }

  private async mboxFile(entry: ArchiveEntry, folder: PlannedFolder): Promise<string> {
    const seen: MboxMessage[] = [];
    const reader = new MboxrdReader({ statusHeaders: this.statusHeaders, onMessage: (m) => seen.push(m) });
    const hash = createHash('sha256');
    const drain = async () => {
      for (const m of seen.splice(0)) {
        await this.mbox?.found([folder.userIndex, folder.folderIndex, m.index], { ...m, path: entry.path });
      }
    };
    for await (const chunk of entry.content()) {
      hash.update(chunk);
      reader.write(chunk);
      await drain();
    }
    reader.end();
    await drain();
    if (reader.preamble > 0) {
      this.differ({
        kind: 'content',
        format: 'mbox',
        path: entry.path,
        message: `${entry.path}: ${reader.preamble} bytes before the first "From " line`,
      });
    }
    return hash.digest('hex');
  }

  private async manifestFile(entry: ArchiveEntry): Promise<string> {
    this.sawManifest = true;
    return this.jsonLines(entry, async (line: ManifestLine) => {
      const f = this.byUserFolder.get(`${line.user}\0${line.folder}`);
      const key = f === undefined ? [Number.MAX_SAFE_INTEGER, 0, 0] : [f.userIndex, f.folderIndex, line.uid];
      await this.manifest.found(key, line);
    });
  }

  private async foldersFile(entry: ArchiveEntry): Promise<string> {
    this.sawFolders = true;
    return this.jsonLines(entry, async (line: FolderLine) => {
      const f = this.byUserFolder.get(`${line.user}\0${line.folder}`);
      await this.folderLines.found(
        f === undefined ? [Number.MAX_SAFE_INTEGER, 0] : [f.userIndex, f.folderIndex],
        line,
      );
    });
  }

  private async jsonLines<T>(entry: ArchiveEntry, each: (v: T) => Promise<void>): Promise<string> {
    const hash = createHash('sha256');
    const decoder = new StringDecoder('utf8');
    let rest = '';
    let n = 0;
    const line = async (l: string) => {
      n++;
      if (l === '') return;
      let v: T;
      try {
        v = JSON.parse(l) as T;
      } catch {
        this.differ({ kind: 'content', path: entry.path, message: `${entry.path} line ${n} is not JSON` });
        return;
      }
      await each(v);
    };
    for await (const chunk of entry.content()) {
      hash.update(chunk);
      const parts = (rest + decoder.write(Buffer.from(chunk))).split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) await line(p);
    }
    await line(rest + decoder.end());
    return hash.digest('hex');
  }

  /** Counts a message found in `format` (when given) and reports its differences. */
  private report(format: ExportFormat | undefined, diffs: ExportDifference[]): void {
    if (format !== undefined) this.found[format] = (this.found[format] ?? 0) + 1;
    for (const d of diffs) this.differ(d);
  }
}

async function hashOf(entry: ArchiveEntry): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of entry.content()) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

/** The file's SHA-256 and its text (the first `keep` bytes only: control files are small). */
async function textOf(entry: ArchiveEntry, keep = 1024 * 1024): Promise<{ sha256: string; text: string }> {
  const hash = createHash('sha256');
  const parts: Buffer[] = [];
  let kept = 0;
  for await (const chunk of entry.content()) {
    hash.update(chunk);
    if (kept < keep) {
      const b = Buffer.from(chunk).subarray(0, keep - kept);
      parts.push(b);
      kept += b.length;
    }
  }
  return { sha256: hash.digest('hex'), text: Buffer.concat(parts).toString('utf8') };
}
