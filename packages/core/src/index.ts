/**
 * @mailark/core: object stores, the repository format, the IMAP source and the operations
 * (backup, find, restore, export, retention, check). Front ends (cli, agent) hold no business logic.
 */
export { type Checkpoint, type CheckpointMailbox, loadPreviousState } from './backup/backup-checkpoint.js';
export type { BackupSource, SourceFolder, SourceMessage } from './backup/backup-source.js';
export { Chunker, type ChunkerParams } from './backup/chunker.js';
export { HeaderScanner, summarizeMessage } from './backup/header-summary.js';
export { type MessageRecord, MessageRecordWriter, storeMessage } from './backup/message-record.js';
export * from './backup/run-backup.js';
export { parseUsersFile, readUsersFile, type UsersFileEntry } from './backup/users-file.js';
export * from './check/check.js';
export * from './errors.js';
export * from './export/archive-sink.js';
export { planMultipart } from './export/byte-output.js';
export * from './export/export-paths.js';
export type * from './export/export-source.js';
export * from './export/export-tenant.js';
export * from './export/imap-export-source.js';
export type * from './export/manifest.js';
export * from './export/snapshot-export-source.js';
export * from './export/verify-export.js';
export * from './find/find-messages.js';
export * from './find/message-query.js';
export * from './find/message-ref.js';
export * from './find/resolve-message-ref.js';
export { preloadImap } from './imap/imap-connect.js';
export * from './imap/imap-endpoint.js';
export { type ImapErrorContext, imapError, isTransientImapError } from './imap/imap-errors.js';
export { type RetryOptions, withRetry } from './imap/imap-retry.js';
export * from './imap/imap-session.js';
export * from './mail/diff-snapshots.js';
export * from './mail/snapshot.js';
export * from './mail/snapshot-tree.js';
export * from './progress.js';
export type { IndexEntry } from './repo/blob-index.js';
export { DEFAULT_KDF, type ScryptParams } from './repo/crypto.js';
export type { KeyInfo } from './repo/key-file.js';
export * from './repo/lock.js';
export type { BlobType, PackEntry } from './repo/pack.js';
export * from './repo/repair-index.js';
export { DEFAULT_CHUNKER, DEFAULT_PACK_SIZE } from './repo/repo-config.js';
export * from './repo/repository.js';
export * from './repo/stats.js';
export * from './repo/test-repository.js';
export { type EmlOutcome, emlFileName, writeEmlFile } from './restore/eml-files.js';
export {
  type ImapRestoreOptions,
  imapRestoreConnector,
  sessionTarget,
} from './restore/imap-restore-target.js';
export * from './restore/restore-messages.js';
export type * from './restore/restore-target.js';
export * from './retention/forget.js';
export * from './retention/policy.js';
export * from './retention/prune.js';
export * from './retention/prune-plan.js';
export * from './retention/retention-duration.js';
export * from './retention/zoned-calendar.js';
export * from './store/cache-dir.js';
export * from './store/cached-store.js';
export * from './store/faulty-store.js';
export * from './store/local-dir-store.js';
export * from './store/memory-store.js';
export * from './store/object-store.js';
export * from './store/open-store.js';
export * from './store/probe.js';
export * from './store/retrying-store.js';
export * from './store/s3-errors.js';
export * from './store/s3-store.js';
