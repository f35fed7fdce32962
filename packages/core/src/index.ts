/**
 * @mailark/core: object stores, the repository format, the IMAP source and the operations
 * (backup, find, restore, export, retention, check). Front ends (cli, agent) hold no business logic.
 */
export * from './errors.js';
export * from './find/find-messages.js';
export * from './find/message-query.js';
export * from './find/message-ref.js';
export * from './find/resolve-message-ref.js';
export * from './imap/imap-endpoint.js';
export { type ImapErrorContext, imapError, isTransientImapError } from './imap/imap-errors.js';
export { type RetryOptions, withRetry } from './imap/imap-retry.js';
export * from './imap/imap-session.js';
export * from './mail/diff-snapshots.js';
export * from './mail/snapshot.js';
export * from './mail/snapshot-tree.js';
export * from './progress.js';
export * from './store/memory-store.js';
export * from './store/object-store.js';
export * from './retention/policy.js';
export * from './retention/prune-plan.js';
export * from './retention/retention-duration.js';
export * from './retention/zoned-calendar.js';
export type { IndexEntry } from './repo/blob-index.js';
export { DEFAULT_KDF, type ScryptParams } from './repo/crypto.js';
export type { KeyInfo } from './repo/key-file.js';
export * from './repo/lock.js';
export type { BlobType, PackEntry } from './repo/pack.js';
export { DEFAULT_CHUNKER, DEFAULT_PACK_SIZE } from './repo/repo-config.js';
export * from './repo/repository.js';
export * from './repo/test-repository.js';
export { type EmlOutcome, emlFileName, writeEmlFile } from './restore/eml-files.js';
export * from './restore/restore-messages.js';
export { type ImapRestoreOptions, imapRestoreConnector } from './restore/imap-restore-target.js';
export type * from './restore/restore-target.js';
export * from './check/check.js';
export * from './repo/repair-index.js';
export * from './repo/stats.js';
