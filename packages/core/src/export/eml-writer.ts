/**
 * Writes `<tenant>/<user>/eml/<folder path>/<uid>.eml`: each message's exact bytes, mtime = internal
 * date. Every selectable folder gets its directory, even when empty.
 */
import { emlFolderPath } from './export-paths.js';
import type { ExportMessage } from './export-source.js';
import type {
  FolderOpened,
  FolderStart,
  FormatWriter,
  MessageWritten,
  WriterContext,
} from './format-writer.js';

export class EmlWriter implements FormatWriter {
  readonly format = 'eml' as const;
  private user = '';
  private dir: string | undefined;

  constructor(private readonly ctx: WriterContext) {}

  async beginMailbox(user: string): Promise<void> {
    this.user = user;
  }

  async beginFolder({ folder }: FolderStart): Promise<FolderOpened> {
    if (!folder.selectable) return {};
    this.dir = emlFolderPath(this.ctx.tenant, this.user, folder);
    await this.ctx.archive.addDirectory(this.dir, this.ctx.now);
    return { path: this.dir };
  }

  async addMessage({ entry, bytes }: ExportMessage): Promise<MessageWritten> {
    if (this.dir === undefined) throw new Error('EmlWriter.addMessage outside a selectable folder');
    const path = `${this.dir}/${entry.uid}.eml`;
    await this.ctx.archive.addFile(path, bytes, new Date(entry.internalDate), entry.sha256);
    return { path };
  }

  async endFolder(): Promise<void> {
    this.dir = undefined;
  }

  async endMailbox(): Promise<void> {}

  async dispose(): Promise<void> {}
}
