/**
 * An export written as a plain directory tree. Everything goes into `.<name>.partial-<random>` beside
 * the target, which finish() renames to the target: a failed export never leaves a directory that
 * looks complete. Files get mode 0600 (directories 0700) since they hold private mail, and their
 * mtime from the entry (for Maildir files: the internal date, which Dovecot reads back).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, rmdir, stat, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArchiveSink, EntryOptions, SinkResult } from './archive-sink.js';
import { fileError } from './byte-output.js';

export class DirSink implements ArchiveSink {
  readonly kind = 'dir' as const;
  readonly location: string;
  private readonly temp: string;
  private readonly made = new Set<string>();
  private bytes = 0;

  private constructor(path: string, temp: string) {
    this.location = path;
    this.temp = temp;
  }

  /** Creates the temporary directory beside `path` (whose parent must exist). */
  static async open(path: string): Promise<DirSink> {
    const temp = join(dirname(path), `.${basename(path)}.partial-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(temp, { mode: 0o700 });
    } catch (err) {
      throw fileError(path, err);
    }
    return new DirSink(path, temp);
  }

  async addDirectory(path: string): Promise<void> {
    await this.dir(join(this.temp, path));
  }

  async addFile(path: string, data: Uint8Array, opts: EntryOptions): Promise<void> {
    const file = join(this.temp, path);
    try {
      await this.dir(dirname(file));
      await writeFile(file, data, { flag: 'wx', mode: 0o600 });
      await utimes(file, opts.mtime, opts.mtime);
    } catch (err) {
      throw fileError(this.location, err);
    }
    this.bytes += data.byteLength;
  }

  async addStream(
    path: string,
    size: number,
    data: AsyncIterable<Uint8Array>,
    opts: EntryOptions,
  ): Promise<void> {
    const file = join(this.temp, path);
    try {
      await this.dir(dirname(file));
      await pipeline(Readable.from(data), createWriteStream(file, { flags: 'wx', mode: 0o600 }));
      await utimes(file, opts.mtime, opts.mtime);
    } catch (err) {
      throw fileError(this.location, err);
    }
    this.bytes += size;
  }

  async finish(): Promise<SinkResult> {
    try {
      // An empty directory at the target (allowed by openArchiveSink) is replaced.
      if ((await stat(this.location).catch(() => undefined))?.isDirectory()) await rmdir(this.location);
      await rename(this.temp, this.location);
    } catch (err) {
      throw fileError(this.location, err);
    }
    return { location: this.location, bytes: this.bytes };
  }

  async abort(): Promise<void> {
    await rm(this.temp, { recursive: true, force: true }).catch(() => {});
  }

  private async dir(path: string): Promise<void> {
    if (this.made.has(path)) return;
    await mkdir(path, { recursive: true, mode: 0o700 });
    this.made.add(path);
  }
}
