/**
 * exportTenant: a whole tenant (or some of its mailboxes) from an ExportSource into an ArchiveSink, in
 * any of Maildir, mbox and EML at once, reading each message once. Layout: export-paths.ts.
 *
 * Rules it keeps:
 * - streaming end to end: one message (plus the source's small read-ahead) in memory at a time; what
 *   grows with the tenant (mbox files, manifest.jsonl, folders.jsonl, SHA256SUMS) is spooled to disk;
 * - each message's bytes are checked against its SHA-256 (by the source) and size before they are written;
 * - all or nothing: on any failure or interruption the sink is aborted (no file, directory or S3 object
 *   is left that looks complete) and the temporary files are removed;
 * - export.json comes first, SHA256SUMS last, listing every other file in the order written (the order
 *   verify-export reads them back in).
 */
import { tmpdir } from 'node:os';
import { MailarkError } from '../errors.js';
import { type Reporter, silentReporter } from '../progress.js';
import type { ArchiveKind, ArchiveSink, SinkResult } from './archive-sink.js';
import { EmlWriter } from './eml-writer.js';
import { ExportArchive } from './export-archive.js';
import {
  EXPORT_FORMATS,
  type ExportFormat,
  FOLDERS_FILE,
  INFO_FILE,
  MANIFEST_FILE,
  README_FILE,
  SUMS_FILE,
} from './export-paths.js';
import type { ExportFolder, ExportSource } from './export-source.js';
import type { FormatWriter, WriterContext } from './format-writer.js';
import { MaildirWriter } from './maildir-writer.js';
import type { ExportCounts, ExportInfo, ExportOrigin, FolderLine, ManifestLine } from './manifest.js';
import { MboxWriter } from './mbox-writer.js';
import { readmeText } from './readme.js';

export interface ExportOptions {
  /** Formats to write (default all three). */
  formats?: readonly ExportFormat[];
  /** Only these mailboxes (default every mailbox of the source). */
  users?: readonly string[];
  /** Prepend Status/X-Status/X-Keywords lines to mbox messages (mboxrd.ts); default exact bytes. */
  mboxStatusHeaders?: boolean;
  /** Where spool files go (default os.tmpdir()): needs room for the largest folder's mbox. */
  tmpDir?: string;
  reporter?: Reporter;
  signal?: AbortSignal;
  toolVersion?: string;
  /** Clock (tests). */
  now?: () => Date;
}

export interface ExportSummary {
  tenant: string;
  origin: ExportOrigin;
  formats: ExportFormat[];
  users: string[];
  counts: ExportCounts;
  /** Files in the export, SHA256SUMS included. */
  files: number;
  archive: SinkResult & { kind: ArchiveKind };
  /** SHA-256 of SHA256SUMS: one value that vouches for every file. */
  sumsSha256: string;
  durationMs: number;
  warnings: string[];
}

export async function exportTenant(
  source: ExportSource,
  sink: ArchiveSink,
  opts: ExportOptions = {},
): Promise<ExportSummary> {
  const started = Date.now();
  const now = (opts.now ?? (() => new Date()))();
  const reporter = opts.reporter ?? silentReporter;
  const formats = EXPORT_FORMATS.filter((f) => (opts.formats ?? EXPORT_FORMATS).includes(f));
  const warnings: string[] = [];
  const warn = (message: string, fields?: Record<string, unknown>) => {
    warnings.push(message);
    reporter.log('warn', message, fields);
  };
  let archive: ExportArchive | undefined;
  let writers: FormatWriter[] = [];
  try {
    if (formats.length === 0)
      throw new MailarkError('USAGE', 'no export format chosen', {
        hint: 'use --format maildir, mbox, eml or all',
      });
    const users = await chooseUsers(source, opts.users);
    const totals = await source.totals(users);
    archive = await ExportArchive.create(sink, opts.tmpDir ?? tmpdir());
    const ctx: WriterContext = { archive, tenant: source.tenant, now };
    writers = formats.map((f) =>
      f === 'maildir'
        ? new MaildirWriter(ctx)
        : f === 'mbox'
          ? new MboxWriter(ctx, { statusHeaders: opts.mboxStatusHeaders ?? false })
          : new EmlWriter(ctx),
    );
    const info: ExportInfo = {
      format: 'mailark-export',
      version: 1,
      tenant: source.tenant,
      users,
      origin: source.origin,
      created: now.toISOString(),
      formats,
      options: { mboxStatusHeaders: opts.mboxStatusHeaders ?? false },
      ...(opts.toolVersion === undefined ? {} : { toolVersion: opts.toolVersion }),
    };
    // First: whoever reads the export as a stream learns what it is before anything else.
    await archive.addFile(INFO_FILE, `${JSON.stringify(info, null, 2)}\n`, now);
    const manifest = await archive.spool('manifest');
    const folderLines = await archive.spool('folders');
    const counts: ExportCounts = { users: users.length, folders: 0, messages: 0, bytes: 0 };
    const progress = (current: string) =>
      reporter.progress({
        phase: 'export',
        done: counts.messages,
        ...(totals === undefined ? {} : { total: totals.messages, totalBytes: totals.bytes }),
        messages: counts.messages,
        bytes: counts.bytes,
        current,
      });

    for (const user of users) {
      for (const note of (await source.notes?.(user)) ?? []) warn(note, { user });
      const mailbox = await source.openMailbox(user);
      try {
        const folders = await mailbox.folders();
        for (const w of writers) await w.beginMailbox(user, folders);
        for (const folder of folders) {
          opts.signal?.throwIfAborted();
          const keywords = folder.selectable ? await mailbox.keywords(folder) : [];
          const line = folderLine(user, folder);
          for (const w of writers) {
            const opened = await w.beginFolder({ folder, keywords });
            if (opened.path !== undefined) line.paths[w.format] = opened.path;
            if (opened.keywordsWithoutLetter !== undefined) {
              line.keywordsWithoutLetter = opened.keywordsWithoutLetter;
              warn(
                `${user} ${folder.path}: ${opened.keywordsWithoutLetter.length} keywords beyond Maildir's 26 letters are kept in manifest.jsonl only`,
                { user, folder: folder.path, keywords: opened.keywordsWithoutLetter },
              );
            }
          }
          if (folder.selectable) {
            progress(`${user} ${folder.path}`);
            for await (const msg of mailbox.messages(folder, opts.signal)) {
              opts.signal?.throwIfAborted();
              checkBytes(user, folder, msg.entry, msg.bytes);
              const m: ManifestLine = {
                user,
                folder: folder.path,
                folderRaw: folder.rawPath,
                delimiter: folder.delimiter,
                uid: msg.entry.uid,
                ...(folder.uidValidity === undefined ? {} : { uidValidity: folder.uidValidity }),
                flags: msg.entry.flags,
                keywords: msg.entry.keywords,
                internalDate: msg.entry.internalDate,
                size: msg.entry.size,
                sha256: msg.entry.sha256,
                paths: {},
              };
              for (const w of writers) {
                const written = await w.addMessage(msg);
                m.paths[w.format] = written.path;
                if (written.offset !== undefined) m.mboxOffset = written.offset;
              }
              await manifest.write(`${JSON.stringify(m)}\n`);
              line.messages++;
              line.bytes += msg.entry.size;
              counts.messages++;
              counts.bytes += msg.entry.size;
              progress(`${user} ${folder.path}`);
            }
          }
          for (const w of writers) await w.endFolder();
          await folderLines.write(`${JSON.stringify(line)}\n`);
          counts.folders++;
        }
        for (const w of writers) await w.endMailbox();
      } finally {
        await mailbox.close();
      }
    }

    opts.signal?.throwIfAborted();
    await archive.addSpool(MANIFEST_FILE, manifest, now);
    await archive.addSpool(FOLDERS_FILE, folderLines, now);
    await archive.addFile(README_FILE, readmeText(info, counts), now);
    const sumsSha256 = await archive.addSums(SUMS_FILE, now);
    const files = archive.files + 1;
    const result = await sink.finish();
    reporter.progress({
      phase: 'export',
      done: counts.messages,
      total: counts.messages,
      messages: counts.messages,
      bytes: counts.bytes,
      current: 'done',
    });
    return {
      tenant: source.tenant,
      origin: source.origin,
      formats,
      users,
      counts,
      files,
      archive: { ...result, kind: sink.kind },
      sumsSha256,
      durationMs: Date.now() - started,
      warnings,
    };
  } catch (err) {
    await sink.abort(err);
    if (opts.signal?.aborted) {
      throw new MailarkError('INTERRUPTED', 'export interrupted: no partial export was left behind', {
        cause: err,
      });
    }
    throw err;
  } finally {
    for (const w of writers) await w.dispose();
    await archive?.dispose();
  }
}

/** The users to export, in source order; NOT_FOUND for one the source does not have. */
async function chooseUsers(source: ExportSource, wanted: readonly string[] | undefined): Promise<string[]> {
  const all = await source.users();
  if (wanted === undefined) return all;
  const missing = wanted.filter((u) => !all.includes(u));
  if (missing.length > 0) {
    throw new MailarkError('NOT_FOUND', `no mailbox ${missing.join(', ')} in ${describe(source.origin)}`, {
      hint: `the mailboxes there are: ${all.slice(0, 10).join(', ')}${all.length > 10 ? ', ...' : ''}`,
    });
  }
  return all.filter((u) => wanted.includes(u));
}

function describe(o: ExportOrigin): string {
  return o.kind === 'snapshot' ? `snapshot ${o.snapshotId.slice(0, 8)}` : o.server;
}

function folderLine(user: string, f: ExportFolder): FolderLine {
  return {
    user,
    folder: f.path,
    folderRaw: f.rawPath,
    delimiter: f.delimiter,
    flags: f.flags,
    ...(f.specialUse === undefined ? {} : { specialUse: f.specialUse }),
    subscribed: f.subscribed,
    selectable: f.selectable,
    ...(f.uidValidity === undefined ? {} : { uidValidity: f.uidValidity }),
    ...(f.uidNext === undefined ? {} : { uidNext: f.uidNext }),
    messages: 0,
    bytes: 0,
    paths: {},
  };
}

/**
 * Sources check each message's SHA-256 as they read it (readMessageBytes; the IMAP source computes
 * it from the bytes); this guards the size, which the Maildir name and the manifest carry.
 */
function checkBytes(
  user: string,
  folder: ExportFolder,
  entry: { uid: number; size: number },
  bytes: Uint8Array,
): void {
  if (bytes.byteLength === entry.size) return;
  throw new MailarkError(
    'CORRUPT',
    `${user} ${folder.path} UID ${entry.uid}: ${bytes.byteLength} bytes read, the message has ${entry.size}`,
    {
      hint: 'run "mailark check --read-data" on the repository (or retry a live export)',
    },
  );
}
