/**
 * verifyExport: re-reads an export (archive or directory) and proves it against the snapshot it came
 * from: every file against its SHA256SUMS line (and no file unlisted); every message of the exported
 * users present exactly once per exported format with its exact bytes (SHA-256), and in Maildir its
 * flags and keywords (file name + dovecot-keywords) and internal date (mtime), in mbox its internal
 * date (separator line) and exact bytes after mboxrd unquoting, in EML its bytes and mtime; every
 * manifest.jsonl and folders.jsonl line equal to the snapshot's facts; and nothing else.
 *
 * One sequential pass over the export; each message's bytes are hashed as they stream by and never
 * held; expected facts are walked from the snapshot in the same order (verify-plan.ts) and merged
 * (sorted-matcher.ts). Differences are counted; the first `maxDifferences` are described.
 */
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { errorText, isMailarkError, MailarkError } from '../errors.js';
import type { Snapshot } from '../mail/snapshot.js';
import { loadTenantTree, type TreeReader } from '../mail/snapshot-tree.js';
import { type Reporter, silentReporter } from '../progress.js';
import { type ArchiveEntry, openExportReader } from './archive-reader.js';
import { EXPORT_FORMATS, type ExportFormat, INFO_FILE, SUMS_FILE } from './export-paths.js';
import { type ExportInfo, parseSha256SumsLine, sha256SumsLine } from './manifest.js';
import { OrderedMatcher } from './ordered-matcher.js';
import { SpoolFile } from './spool-file.js';
import { VerifyChecks } from './verify-checks.js';
import { VerifyPlan } from './verify-plan.js';

export type DifferenceKind =
  | 'checksum'
  | 'missing'
  | 'unexpected'
  | 'content'
  | 'flags'
  | 'date'
  | 'manifest'
  | 'folders'
  | 'info'
  | 'order';

export interface ExportDifference {
  kind: DifferenceKind;
  /** The file concerned, when there is one. */
  path?: string;
  format?: ExportFormat;
  user?: string;
  folder?: string;
  uid?: number;
  message: string;
}

export interface VerifyExportResult {
  ok: boolean;
  location: string;
  kind: 'dir' | 'tar' | 'tgz' | 'zip';
  snapshotId: string;
  tenant: string;
  formats: ExportFormat[];
  users: string[];
  /** Files read, and how many of them SHA256SUMS vouched for. */
  files: number;
  checkedFiles: number;
  bytes: number;
  messages: { expected: number; found: Partial<Record<ExportFormat, number>> };
  differences: ExportDifference[];
  differenceCount: number;
}

export interface VerifyRepository extends TreeReader {
  resolveSnapshot(ref: string): Promise<{ id: string; snapshot: Snapshot }>;
}

export interface VerifyExportOptions {
  /** Snapshot to compare with (id, unique prefix, 'latest'); default: the one export.json names. */
  snapshot?: string;
  reporter?: Reporter;
  signal?: AbortSignal;
  /** Differences described in detail (default 50); all are counted. */
  maxDifferences?: number;
  tmpDir?: string;
}

export async function verifyExport(
  path: string,
  repo: VerifyRepository,
  opts: VerifyExportOptions = {},
): Promise<VerifyExportResult> {
  const reporter = opts.reporter ?? silentReporter;
  const max = opts.maxDifferences ?? 50;
  const differences: ExportDifference[] = [];
  let differenceCount = 0;
  const differ = (d: ExportDifference) => {
    differenceCount++;
    if (differences.length < max) differences.push(d);
  };
  const reader = await openExportReader(path);
  const actualSums = await SpoolFile.create(opts.tmpDir ?? tmpdir(), 'verify-sums');
  const listedSums = await SpoolFile.create(opts.tmpDir ?? tmpdir(), 'verify-listed');
  let checks: VerifyChecks | undefined;
  let snapshotId = '';
  let info: ExportInfo | undefined;
  let files = 0;
  let bytes = 0;
  let sawSums = false;
  let lastPath = '';
  try {
    const entries = reader.entries()[Symbol.asyncIterator]();
    while (true) {
      let next: IteratorResult<ArchiveEntry>;
      try {
        next = await entries.next();
      } catch (err) {
        if (checks === undefined || opts.signal?.aborted) throw err;
        differ({
          kind: 'content',
          message: `the export cannot be read past ${lastPath || 'its start'}: ${errorText(err)}`,
        });
        break;
      }
      if (next.done === true) break;
      const entry = next.value;
      lastPath = entry.path;
      opts.signal?.throwIfAborted();
      if (entry.type === 'directory') continue;
      if (entry.type !== 'file') {
        differ({ kind: 'unexpected', path: entry.path, message: `${entry.path} is not a regular file` });
        await entry.skip();
        continue;
      }
      files++;
      if (checks === undefined) {
        // export.json comes first; the checks need it (snapshot, users, formats, options).
        const read = entry.path === INFO_FILE ? await readInfo(entry, differ) : undefined;
        info = read?.info;
        if (info === undefined) {
          differ({
            kind: 'info',
            path: INFO_FILE,
            message: `${INFO_FILE} is missing or not the first file of the export`,
          });
        }
        const resolved = await resolveSnapshot(repo, opts.snapshot, info);
        snapshotId = resolved.id;
        const users = info?.users ?? (await allUsers(repo, resolved.snapshot));
        const { plan, unknownUsers } = await VerifyPlan.load(repo, resolved.snapshot, users);
        for (const u of unknownUsers) {
          differ({
            kind: 'info',
            user: u,
            message: `the export holds mailbox ${u}, which snapshot ${snapshotId.slice(0, 8)} does not have`,
          });
        }
        if (info !== undefined && info.tenant !== resolved.snapshot.tenant) {
          differ({
            kind: 'info',
            path: INFO_FILE,
            message: `the export is of tenant ${info.tenant}, the snapshot of ${resolved.snapshot.tenant}`,
          });
        }
        checks = new VerifyChecks(
          plan,
          info?.formats ?? [...EXPORT_FORMATS],
          info?.options.mboxStatusHeaders ?? false,
          differ,
        );
        if (read !== undefined) {
          await actualSums.write(sha256SumsLine(read.sha256, INFO_FILE));
          continue;
        }
      }
      if (entry.path === SUMS_FILE) {
        sawSums = true;
        for await (const chunk of entry.content()) await listedSums.write(chunk);
        continue;
      }
      let sha: string;
      try {
        sha = await checks.file(entry);
      } catch (err) {
        if (opts.signal?.aborted || isMailarkError(err, 'INTERNAL')) throw err;
        // A damaged entry (bad deflate data, truncated archive) is named; a zip's other entries
        // still read, a tar stream ends here (the entries after it are reported missing).
        differ({
          kind: 'content',
          path: entry.path,
          message: `${entry.path}: cannot be read (${errorText(err)})`,
        });
        sha = 'unreadable';
      }
      bytes += entry.size;
      await actualSums.write(sha256SumsLine(sha, entry.path));
      reporter.progress({ phase: 'verify', done: files, bytes, current: entry.path });
    }
    if (checks === undefined) {
      throw new MailarkError('NOT_FOUND', `${path} holds no file: it is not a mailark export`, {
        hint: 'give the archive or directory that "mailark export --out" wrote',
      });
    }
    await checks.finish();
    let checkedFiles = 0;
    if (!sawSums) {
      differ({
        kind: 'checksum',
        path: SUMS_FILE,
        message: `${SUMS_FILE} is missing: no file can be vouched for`,
      });
    } else {
      checkedFiles = await compareSums(listedSums, actualSums, differ);
    }
    return {
      ok: differenceCount === 0,
      location: reader.location,
      kind: reader.kind,
      snapshotId,
      tenant: checks.plan.tenant,
      formats: checks.formats,
      users: checks.plan.users,
      files,
      checkedFiles,
      bytes,
      messages: { expected: checks.expectedMessages, found: checks.found },
      differences,
      differenceCount,
    };
  } catch (err) {
    if (opts.signal?.aborted)
      throw new MailarkError('INTERRUPTED', 'verification interrupted', { cause: err });
    throw err;
  } finally {
    await actualSums.dispose();
    await listedSums.dispose();
  }
}

/** Reads export.json (at most 1 MiB of it is parsed); info is undefined when it is not valid. */
async function readInfo(
  entry: ArchiveEntry,
  differ: (d: ExportDifference) => void,
): Promise<{ info: ExportInfo | undefined; sha256: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of entry.content()) {
    size += c.byteLength;
    if (size <= 1024 * 1024) chunks.push(Buffer.from(c));
  }
  const text = Buffer.concat(chunks);
  const sha256 = createHash('sha256').update(text).digest('hex');
  try {
    const info = JSON.parse(text.toString('utf8')) as ExportInfo;
    if (info.format !== 'mailark-export' || info.version !== 1)
      throw new Error('not a mailark export, version 1');
    return { info, sha256 };
  } catch (err) {
    differ({
      kind: 'info',
      path: INFO_FILE,
      message: `${INFO_FILE} cannot be read: ${(err as Error).message}`,
    });
    return { info: undefined, sha256 };
  }
}

async function resolveSnapshot(
  repo: VerifyRepository,
  ref: string | undefined,
  info: ExportInfo | undefined,
) {
  if (ref !== undefined) return repo.resolveSnapshot(ref);
  if (info?.origin.kind === 'snapshot') return repo.resolveSnapshot(info.origin.snapshotId);
  throw new MailarkError('USAGE', 'this export does not name the snapshot it came from', {
    hint: 'name the snapshot to compare it with: --snapshot ID (or latest)',
  });
}

async function allUsers(repo: TreeReader, snapshot: Snapshot): Promise<string[]> {
  return (await loadTenantTree(repo, snapshot)).mailboxes.map((m) => m.user);
}

/** SHA256SUMS against the files read, line by line (both in write order). Returns lines that matched. */
async function compareSums(
  listed: SpoolFile,
  actual: SpoolFile,
  differ: (d: ExportDifference) => void,
): Promise<number> {
  await listed.close();
  await actual.close();
  let ok = 0;
  const matcher = new OrderedMatcher<string, string, string>(sumLines(listed, differ), {
    matched: (path, want, got) => {
      if (want === got) ok++;
      else differ({ kind: 'checksum', path, message: `${path}: SHA-256 ${got}, SHA256SUMS says ${want}` });
    },
    missing: (path) =>
      differ({ kind: 'missing', path, message: `${path} is listed in ${SUMS_FILE} but not in the export` }),
    unexpected: (path) =>
      differ({
        kind: 'unexpected',
        path,
        message: `${path} is in the export but not listed in ${SUMS_FILE}`,
      }),
    duplicate: (path) => differ({ kind: 'unexpected', path, message: `${path} appears twice in the export` }),
  });
  for await (const [path, sha] of sumLines(actual, differ)) await matcher.found(path, sha);
  await matcher.finish();
  return ok;
}

async function* sumLines(
  spool: SpoolFile,
  differ: (d: ExportDifference) => void,
): AsyncGenerator<[string, string]> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of spool.read()) {
    const lines = (rest + decoder.write(Buffer.from(chunk))).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') continue;
      const p = parseSha256SumsLine(line);
      if (p === undefined)
        differ({
          kind: 'checksum',
          path: SUMS_FILE,
          message: `malformed line in ${SUMS_FILE}: ${line.slice(0, 100)}`,
        });
      else yield [p.path, p.sha256];
    }
  }
  rest += decoder.end();
  if (rest !== '') {
    const p = parseSha256SumsLine(rest);
    if (p !== undefined) yield [p.path, p.sha256];
  }
}
