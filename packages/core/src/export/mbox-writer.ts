/**
 * Writes one mboxrd file per selectable folder, `<tenant>/<user>/mbox/<folder path>.mbox` (rules in
 * mboxrd.ts). A folder's file is spooled to a temporary file while its messages stream, then added
 * with its size known (tar needs it up front); an empty folder gets an empty file, so it still exists.
 */
import { mboxPath } from './export-paths.js';
import type { ExportMessage } from './export-source.js';
import type {
  FolderOpened,
  FolderStart,
  FormatWriter,
  MessageWritten,
  WriterContext,
} from './format-writer.js';
import { mboxFromLine, mboxrdQuote, mboxSender, mboxStatusBlock, mboxTerminator } from './mboxrd.js';
import type { SpoolFile } from './spool-file.js';

export class MboxWriter implements FormatWriter {
  readonly format = 'mbox' as const;
  private user = '';
  private open: { path: string; spool: SpoolFile } | undefined;

  constructor(
    private readonly ctx: WriterContext,
    private readonly opts: { statusHeaders: boolean },
  ) {}

  async beginMailbox(user: string): Promise<void> {
    this.user = user;
  }

  async beginFolder({ folder }: FolderStart): Promise<FolderOpened> {
    if (!folder.selectable) return {};
    const path = mboxPath(this.ctx.tenant, this.user, folder);
    this.open = { path, spool: await this.ctx.archive.spool('mbox') };
    return { path };
  }

  async addMessage({ entry, bytes }: ExportMessage): Promise<MessageWritten> {
    const open = this.open;
    if (open === undefined) throw new Error('MboxWriter.addMessage outside a selectable folder');
    const offset = open.spool.size;
    const spool = open.spool;
    await spool.write(Buffer.from(mboxFromLine(mboxSender(bytes), entry.internalDate), 'latin1'));
    if (this.opts.statusHeaders) await spool.write(mboxStatusBlock(bytes, entry.flags, entry.keywords));
    await spool.write(mboxrdQuote(bytes));
    await spool.write(mboxTerminator(bytes));
    return { path: open.path, offset };
  }

  async endFolder(): Promise<void> {
    const open = this.open;
    this.open = undefined;
    if (open !== undefined) await this.ctx.archive.addSpool(open.path, open.spool, this.ctx.now);
  }

  async endMailbox(): Promise<void> {}

  async dispose(): Promise<void> {
    await this.open?.spool.dispose();
    this.open = undefined;
  }
}
