/**
 * Where an export's files go: a directory, or one archive (.tar, .tar.gz/.tgz, .zip) written to a file,
 * to standard output, or to S3 as a multipart upload. `openArchiveSink(out)` picks the sink from the
 * output name; the export writes through the ArchiveSink interface and never knows which one it has.
 *
 * Contract every sink keeps:
 * - backpressure: addFile/addStream resolve only once the bytes were accepted downstream (each entry is
 *   awaited: nothing queues up in memory however fast the repository reads);
 * - nothing looks complete until it is: a file or directory is written under a temporary name and
 *   renamed to its final name by finish(); an S3 object only exists once the multipart upload is
 *   completed by finish(); abort() removes the temporary name or aborts the upload;
 * - an existing output is never overwritten (USAGE error before anything is written);
 * - failures are MailarkErrors (STORE_IO for local files: disk full, permission denied; the S3 codes
 *   for uploads), and after one the export calls abort().
 */
import { readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { MailarkError } from '../errors.js';
import { type Reporter, silentReporter } from '../progress.js';
import { parseStoreLocation } from '../store/open-store.js';
import { type ByteOutput, FileOutput, S3Output, type S3OutputOptions, StdoutOutput } from './byte-output.js';
import { DirSink } from './dir-sink.js';
import { TarSink } from './tar-sink.js';
import { ZipSink } from './zip-sink.js';

export interface EntryOptions {
  /** The entry's modification time (for Maildir files: the internal date, which Dovecot reads back). */
  mtime: Date;
}

export interface SinkResult {
  /** Where the export is now: the final path, `s3://bucket/key` or `stdout`. */
  location: string;
  /** Bytes written: the archive's size, or the sum of the files' sizes for a directory. */
  bytes: number;
  /** SHA-256 of the archive as written (absent for a directory). */
  sha256?: string;
}

export type ArchiveKind = 'dir' | 'tar' | 'tgz' | 'zip';

export interface ArchiveSink {
  readonly kind: ArchiveKind;
  /** The final location, for messages. */
  readonly location: string;
  /** A directory entry ("a/b"; parents need no entry of their own). */
  addDirectory(path: string, opts: EntryOptions): Promise<void>;
  /** A file whose bytes are in memory. */
  addFile(path: string, data: Uint8Array, opts: EntryOptions): Promise<void>;
  /** A file of known size streamed from `data` (which must yield exactly `size` bytes). */
  addStream(path: string, size: number, data: AsyncIterable<Uint8Array>, opts: EntryOptions): Promise<void>;
  /** Completes the archive and gives it its final name. */
  finish(): Promise<SinkResult>;
  /** Discards everything: no partial output is left under the final name. Never throws. */
  abort(reason: unknown): Promise<void>;
}

export interface OpenSinkOptions {
  /** The archive type for stdout (`-`), default 'tar'. Other outputs take it from the name. */
  stdoutKind?: Exclude<ArchiveKind, 'dir'>;
  /** Where stdout goes (tests pass their own stream). */
  stdout?: NodeJS.WritableStream;
  /** gzip/deflate level 0-9 (default 6, as gzip and `tar czf`). */
  compressionLevel?: number;
  /** For s3:// outputs: the expected archive size (sets the part size) and the client settings. */
  s3?: Omit<S3OutputOptions, 'bucket' | 'key'>;
  /** Base for relative paths (default process.cwd()). */
  cwd?: string;
  /** Where a zip's central directory is staged (default os.tmpdir()). */
  tmpDir?: string;
  reporter?: Reporter;
}

/** The archive type a name asks for: .tar, .tar.gz/.tgz, .zip; anything else is a directory. */
export function archiveKindOf(name: string): ArchiveKind {
  const n = name.toLowerCase();
  if (n.endsWith('.tar')) return 'tar';
  if (n.endsWith('.tar.gz') || n.endsWith('.tgz')) return 'tgz';
  if (n.endsWith('.zip')) return 'zip';
  return 'dir';
}

/** Opens the sink for `out`: `-` (stdout), `s3://bucket/key.tar.gz`, `x.tar|.tar.gz|.tgz|.zip`, or a directory. */
export async function openArchiveSink(out: string, opts: OpenSinkOptions = {}): Promise<ArchiveSink> {
  const level = opts.compressionLevel ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new MailarkError('USAGE', `compression level ${level} is out of range`, {
      hint: 'use 0 (none) to 9 (best)',
    });
  }
  const reporter = opts.reporter ?? silentReporter;
  const tmp = opts.tmpDir ?? tmpdir();
  if (out === '-') {
    const kind = opts.stdoutKind ?? 'tar';
    return archiveOn(kind, new StdoutOutput(opts.stdout ?? process.stdout), level, tmp);
  }
  if (out.startsWith('s3:')) {
    const loc = parseStoreLocation(out);
    if (loc.kind !== 's3' || loc.prefix === '') {
      throw new MailarkError('USAGE', `${out} names no object key`, {
        hint: 'use s3://bucket/path/acme-export.tar.gz',
      });
    }
    const kind = archiveKindOf(loc.prefix);
    if (kind === 'dir') {
      throw new MailarkError(
        'USAGE',
        `an S3 export must be one archive: ${out} does not end in .tar, .tar.gz, .tgz or .zip`,
        {
          hint: 'e.g. --out s3://bucket/exports/acme.tar.gz',
        },
      );
    }
    const s3 = { ...opts.s3, bucket: loc.bucket, key: loc.prefix, reporter };
    if (loc.endpoint !== undefined && s3.endpoint === undefined) s3.endpoint = loc.endpoint;
    return archiveOn(kind, await S3Output.open(s3), level, tmp);
  }
  const path = resolve(opts.cwd ?? process.cwd(), out);
  await refuseExisting(path, archiveKindOf(path));
  const kind = archiveKindOf(path);
  if (kind === 'dir') return DirSink.open(path);
  return archiveOn(kind, await FileOutput.open(path), level, tmp);
}

function archiveOn(
  kind: Exclude<ArchiveKind, 'dir'>,
  output: ByteOutput,
  level: number,
  tmpDir: string,
): ArchiveSink {
  if (kind === 'zip') return ZipSink.open(output, level, tmpDir);
  return TarSink.open(output, kind === 'tgz' ? level : undefined);
}

/** An existing file, or a non-empty directory, is never overwritten. */
async function refuseExisting(path: string, kind: ArchiveKind): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (st === undefined) return;
  if (kind === 'dir' && st.isDirectory() && (await readdir(path)).length === 0) return;
  throw new MailarkError('USAGE', `${path} already exists`, {
    hint: 'mailark never overwrites an export: choose another --out, or move the existing one away',
  });
}
