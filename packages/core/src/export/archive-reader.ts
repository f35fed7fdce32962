/**
 * Reads an export back, file by file, in the order mailark wrote it: a .tar or .tar.gz (tar-stream; gzip
 * detected by its magic bytes), a .zip (yauzl, central directory order, ZIP64 included), or an
 * unpacked directory (in SHA256SUMS order, which is the write order; files present but not listed come
 * last, files listed but absent are simply not yielded). Contents stream: nothing is held whole.
 *
 * The caller must consume (or skip) each entry's content before asking for the next entry.
 */
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, inflateRawSync } from 'node:zlib';
import type yauzl from 'yauzl';
import { errorText, MailarkError } from '../errors.js';
import { archiveKindOf } from './archive-sink.js';
import { BlockCache } from './block-cache-reader.js';
import { SUMS_FILE } from './export-paths.js';
import { parseSha256SumsLine } from './manifest.js';

export interface ArchiveEntry {
  /** Relative path with "/" separators, without a trailing "/". */
  path: string;
  type: 'file' | 'directory' | 'other';
  size: number;
  mtime: Date;
  /** The bytes (files). Consume it, or call skip(), before the next entry. */
  content(): AsyncIterable<Uint8Array>;
  skip(): Promise<void>;
}

export interface ExportReader {
  readonly kind: 'dir' | 'tar' | 'tgz' | 'zip';
  readonly location: string;
  entries(): AsyncIterable<ArchiveEntry>;
}

/** Opens an export for reading; NOT_FOUND when there is nothing at `path`. */
export async function openExportReader(path: string): Promise<ExportReader> {
  const st = await stat(path).catch((err) => {
    throw new MailarkError('NOT_FOUND', `there is no export at ${path}: ${errorText(err)}`, {
      hint: 'give the path of the archive or directory that "mailark export --out" wrote',
    });
  });
  if (st.isDirectory()) return { kind: 'dir', location: path, entries: () => dirEntries(path) };
  const kind = archiveKindOf(path);
  if (kind === 'zip') return { kind, location: path, entries: () => zipEntries(path) };
  const gz = await isGzip(path);
  return { kind: gz ? 'tgz' : 'tar', location: path, entries: () => tarEntries(path, gz) };
}

async function isGzip(path: string): Promise<boolean> {
  const h = await open(path, 'r');
  try {
    const b = Buffer.alloc(2);
    await h.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await h.close();
  }
}

// The archive libraries load when an export is read, not with every command that loads @mailark/core.
let tarStream: typeof import('tar-stream') | undefined;
let yauzlModule: typeof yauzl | undefined;

async function* tarEntries(path: string, gz: boolean): AsyncGenerator<ArchiveEntry> {
  tarStream ??= createRequire(import.meta.url)('tar-stream') as typeof import('tar-stream');
  const ex = tarStream.extract();
  const stages: NodeJS.ReadWriteStream[] = gz ? [createGunzip()] : [];
  const done = pipeline([createReadStream(path), ...stages, ex as unknown as NodeJS.WritableStream]);
  done.catch(() => {});
  try {
    for await (const e of ex) {
      const h = e.header;
      const type =
        h.type === 'file' || h.type === 'contiguous-file'
          ? 'file'
          : h.type === 'directory'
            ? 'directory'
            : 'other';
      let consumed = false;
      yield {
        path: h.name.replace(/\/+$/, ''),
        type,
        size: h.size ?? 0,
        mtime: h.mtime ?? new Date(0),
        content: () => {
          consumed = true;
          return e as AsyncIterable<Uint8Array>;
        },
        skip: async () => {
          consumed = true;
          e.resume();
        },
      };
      if (!consumed) e.resume();
    }
    await done;
  } catch (err) {
    throw unreadable(path, err);
  }
}

async function* zipEntries(path: string): AsyncGenerator<ArchiveEntry> {
  let zip: yauzl.ZipFile;
  yauzlModule ??= createRequire(import.meta.url)('yauzl') as typeof yauzl;
  const y = yauzlModule;
  let cache: BlockCache | undefined;
  try {
    const file = await open(path, 'r');
    cache = new BlockCache(file, path, (await file.stat()).size);
    const blocks = cache;
    // A yauzl reader served from a few cached blocks (block-cache-reader.ts): one read per header
    // made verify-export of a zip of small files crawl.
    const reader = new (y.RandomAccessReader as unknown as new () => yauzl.RandomAccessReader)();
    Object.assign(reader, {
      _readStreamForRange: (start: number, end: number) => blocks.stream(start, end),
      read: (buf: Buffer, off: number, len: number, pos: number, cb: (err: Error | null) => void) => {
        blocks.read(buf, off, len, pos).then(() => cb(null), cb);
      },
      close: (cb: (err: Error | null) => void) => {
        blocks.close().then(() => cb(null), cb);
      },
    });
    // decodeStrings false: names arrive raw, so yauzl neither rejects nor rewrites a "\" in them.
    zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
      y.fromRandomAccessReader(
        reader,
        blocks.size,
        { lazyEntries: true, decodeStrings: false, autoClose: true },
        (err, z) => (err ? reject(err) : resolve(z)),
      ),
    );
  } catch (err) {
    await cache?.close().catch(() => {});
    throw unreadable(path, err);
  }
  try {
    while (true) {
      const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
        zip.once('entry', resolve);
        zip.once('end', () => resolve(undefined));
        zip.once('error', reject);
        zip.readEntry();
      });
      zip.removeAllListeners('entry').removeAllListeners('end').removeAllListeners('error');
      if (entry === undefined) return;
      const raw = entry.fileName as unknown as Buffer;
      const name = raw.toString((entry.generalPurposeBitFlag & 0x800) !== 0 ? 'utf8' : 'latin1');
      const dir = name.endsWith('/');
      // Small deflated entries inflate here: a zlib stream per entry is a thread-pool round trip.
      const small = entry.compressionMethod === 8 && entry.compressedSize < 64 * 1024;
      const open = () =>
        new Promise<Readable>((resolve, reject) =>
          zip.openReadStream(entry, small ? { decodeFileData: false } : {}, (err, s) =>
            err ? reject(err) : resolve(small ? inflated(s) : s),
          ),
        );
      yield {
        path: name.replace(/\/+$/, ''),
        type: dir ? 'directory' : 'file',
        size: entry.uncompressedSize,
        mtime: zipMtime(entry),
        content: () => streamOf(open),
        skip: async () => {},
      };
    }
  } catch (err) {
    throw unreadable(path, err);
  } finally {
    zip.close();
  }
}

/** The raw deflate stream of a small entry, inflated in one go. */
function inflated(raw: Readable): Readable {
  return Readable.from(
    (async function* () {
      const parts: Buffer[] = [];
      for await (const c of raw) parts.push(c as Buffer);
      yield inflateRawSync(Buffer.concat(parts));
    })(),
    { objectMode: false },
  );
}

/** The extended timestamp (0x5455) when present, else the MS-DOS time read as UTC (as written). */
function zipMtime(entry: yauzl.Entry): Date {
  const ut = entry.extraFields.find((f) => f.id === 0x5455);
  if (ut !== undefined && ut.data.length >= 5 && (ut.data[0] as number) & 1) {
    return new Date(ut.data.readUInt32LE(1) * 1000);
  }
  return entry.getLastModDate({ timezone: 'UTC', forceDosFormat: true });
}

async function* streamOf(open: () => Promise<Readable>): AsyncGenerator<Uint8Array> {
  const s = await open();
  yield* s as AsyncIterable<Uint8Array>;
}

async function* dirEntries(root: string): AsyncGenerator<ArchiveEntry> {
  const sums = await readFile(join(root, SUMS_FILE), 'utf8').catch(() => undefined);
  let yielded = 0;
  const renamed = new Set<string>();
  const renames = new MaildirRenames(root);
  if (sums !== undefined) {
    for (const line of sums.split('\n')) {
      const parsed = parseSha256SumsLine(line);
      if (parsed === undefined || parsed.path === SUMS_FILE) continue;
      let entry = await fileEntry(root, parsed.path);
      if (entry === undefined) {
        // A Maildir message renamed in place (its flags changed, e.g. by a Dovecot serving the
        // export) is read where its old name was, so the checks can name the flags that differ.
        const now = await renames.find(parsed.path);
        if (now !== undefined && !renamed.has(now)) {
          renamed.add(now);
          entry = await fileEntry(root, now);
        }
      }
      if (entry === undefined) continue; // listed but absent: the checks name it missing
      yielded++;
      yield entry;
    }
    const own = await fileEntry(root, SUMS_FILE);
    if (own !== undefined) {
      yielded++;
      yield own;
    }
  }
  // Files not listed in SHA256SUMS: counted first (no memory), collected only when there are some.
  let total = 0;
  for await (const _ of walk(root, '')) total++;
  if (total === yielded) return;
  const listed = new Set<string>([SUMS_FILE]);
  for (const line of (sums ?? '').split('\n')) {
    const parsed = parseSha256SumsLine(line);
    if (parsed !== undefined) listed.add(parsed.path);
  }
  for await (const rel of walk(root, '')) {
    if (listed.has(rel) || renamed.has(rel)) continue;
    const entry = await fileEntry(root, rel);
    if (entry !== undefined) yield entry;
  }
}

/** Finds a Maildir file by its base name (the part before ":2,") in its cur/ directory. */
class MaildirRenames {
  private dir = '';
  private byBase = new Map<string, string>();
  constructor(private readonly root: string) {}

  async find(path: string): Promise<string | undefined> {
    const m = /^(.*\/cur)\/([^/]+?)(:2,[^/]*)?$/.exec(path);
    if (m === null) return undefined;
    const dir = m[1] as string;
    if (dir !== this.dir) {
      this.dir = dir;
      this.byBase = new Map();
      const names = await readdir(join(this.root, dir)).catch(() => [] as string[]);
      for (const n of names) this.byBase.set(n.split(':2,')[0] as string, `${dir}/${n}`);
    }
    return this.byBase.get(m[2] as string);
  }
}

async function fileEntry(root: string, rel: string): Promise<ArchiveEntry | undefined> {
  const full = join(root, rel);
  const st = await stat(full).catch(() => undefined);
  if (st === undefined || !st.isFile()) return undefined;
  return {
    path: rel,
    type: 'file',
    size: st.size,
    mtime: st.mtime,
    content: () => createReadStream(full, { highWaterMark: 256 * 1024 }),
    skip: async () => {},
  };
}

/** Regular files under dir, relative paths, in sorted order. */
async function* walk(root: string, rel: string): AsyncGenerator<string> {
  const list = await readdir(join(root, rel), { withFileTypes: true });
  list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const d of list) {
    const p = rel === '' ? d.name : `${rel}/${d.name}`;
    if (d.isDirectory()) yield* walk(root, p);
    else if (d.isFile()) yield p;
  }
}

function unreadable(path: string, err: unknown): MailarkError {
  if (err instanceof MailarkError) return err;
  return new MailarkError('CORRUPT', `cannot read the export ${path}: ${errorText(err)}`, {
    cause: err,
    hint: 'the archive is truncated or damaged: export again, or check the copy against its SHA-256',
  });
}
