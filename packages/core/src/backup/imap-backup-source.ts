/** TEMPORARY until imap/imap-session.ts lands: replaced by the adapter over MailboxSession. */
import type { ImapEndpoint } from '../imap/imap-endpoint.js';
import type { Reporter } from '../progress.js';
import type { BackupSource } from './backup-source.js';
import type { BackupUser } from './run-backup.js';

export async function openImapBackupSource(
  _endpoint: ImapEndpoint,
  _user: BackupUser,
  _opts: { signal?: AbortSignal | undefined; reporter?: Reporter },
): Promise<BackupSource> {
  throw new Error('IMAP source not wired yet');
}
