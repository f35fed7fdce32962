/**
 * The export's view of its sink: adds files and directories, and records the SHA-256 of every file it
 * adds as a SHA256SUMS line (in a spool, so a tenant of millions of files costs disk, not memory).
 * SHA256SUMS lists the files in the order they were written, which is the order verify-export reads
 * them back in.
 */
import { createHash } from 'node:crypto';
import type { ArchiveSink } from './archive-sink.js';
import { sha256SumsLine } from './manifest.js';
import { SpoolFile } from './spool-file.js';

export class ExportArchive {
  /** Files added (SHA256SUMS lines written). */
  files = 0;
  /** Bytes of all files added. */
  bytes = 0;
  private readonly spools = new Set<SpoolFile>();

  private constructor(
    readonly sink: ArchiveSink,
    private readonly sums: SpoolFile,
    readonly tmpDir: string,
  ) {}

  static async create(sink: ArchiveSink, tmpDir: string): Promise<ExportArchive> {
    return new ExportArchive(sink, await SpoolFile.create(tmpDir, 'sums'), tmpDir);
  }

  /** A temporary file the caller fills, then adds with addSpool (removed by dispose at the latest). */
  async spool(label: string): Promise<SpoolFile> {
    const s = await SpoolFile.create(this.tmpDir, label);
    this.spools.add(s);
    return s;
  }

  addDirectory(path: string, mtime: Date): Promise<void> {
    return this.sink.addDirectory(path, { mtime });
  }

  /** Adds a file; `sha256` may be given when already known (a message's bytes, checked by the source). */
  async addFile(path: string, data: Uint8Array | string, mtime: Date, sha256?: string): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const sha = sha256 ?? createHash('sha256').update(bytes).digest('hex');
    await this.sink.addFile(path, bytes, { mtime });
    await this.record(sha, path, bytes.byteLength);
  }

  /** Adds a spool's content (after `prefix`, if any) as one file, then removes the spool. */
  async addSpool(path: string, spool: SpoolFile, mtime: Date, prefix?: string): Promise<void> {
    const { size } = await spool.close();
    const head = prefix === undefined ? Buffer.alloc(0) : Buffer.from(prefix, 'utf8');
    const hash = createHash('sha256');
    async function* content(): AsyncGenerator<Uint8Array> {
      if (head.length > 0) {
        hash.update(head);
        yield head;
      }
      for await (const chunk of spool.read()) {
        hash.update(chunk);
        yield chunk;
      }
    }
    await this.sink.addStream(path, head.length + size, content(), { mtime });
    await this.record(hash.digest('hex'), path, head.length + size);
    await spool.dispose();
    this.spools.delete(spool);
  }

  /** Adds SHA256SUMS itself (the last file; not listed in itself) and returns its SHA-256. */
  async addSums(path: string, mtime: Date): Promise<string> {
    const { size } = await this.sums.close();
    const hash = createHash('sha256');
    const sums = this.sums;
    async function* content(): AsyncGenerator<Uint8Array> {
      for await (const chunk of sums.read()) {
        hash.update(chunk);
        yield chunk;
      }
    }
    await this.sink.addStream(path, size, content(), { mtime });
    return hash.digest('hex');
  }

  /** Removes every temporary file (after success or failure). */
  async dispose(): Promise<void> {
    for (const s of this.spools) await s.dispose();
    this.spools.clear();
    await this.sums.dispose();
  }

  private async record(sha: string, path: string, size: number): Promise<void> {
    this.files++;
    this.bytes += size;
    await this.sums.write(sha256SumsLine(sha, path));
  }
}
