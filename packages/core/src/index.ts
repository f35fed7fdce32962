/**
 * @mailark/core: object stores, the repository format, the IMAP source and the operations
 * (backup, find, restore, export, retention, check). Front ends (cli, agent) hold no business logic.
 */
export * from './errors.js';
export * from './mail/snapshot.js';
export * from './mail/snapshot-tree.js';
export * from './progress.js';
export * from './store/memory-store.js';
export * from './store/object-store.js';
