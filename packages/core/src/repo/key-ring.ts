/**
 * The key ring: the key files of a repository, one per password, all wrapping the same master key.
 * Opening tries each key file with the password; removing refuses the key in use and the last key,
 * so a repository can never be left without a way in.
 */
import { isMailarkError, MailarkError } from '../errors.js';
import type { ObjectStore } from '../store/object-store.js';
import type { MasterKey, ScryptParams } from './crypto.js';
import { createKeyFile, type KeyFile, type KeyInfo, parseKeyFile, unwrapKeyFile } from './key-file.js';
import { idOfKey, objectKey } from './layout.js';

/** Adds a key file for `password`; returns its id. */
export async function addKey(
  store: ObjectStore,
  master: MasterKey,
  password: string,
  kdf: ScryptParams,
): Promise<string> {
  const key = await createKeyFile(master, password, kdf);
  await store.put(objectKey('keys', key.id), key.bytes);
  return key.id;
}

/** Every key, oldest first; `current` marks the one this session opened with. */
export async function listKeys(
  store: ObjectStore,
  currentId: string,
): Promise<Array<KeyInfo & { current: boolean }>> {
  const out: Array<KeyInfo & { current: boolean }> = [];
  for await (const { key } of store.list('keys/')) {
    const id = idOfKey(key);
    if (id === undefined) continue;
    const file: KeyFile = parseKeyFile(id, await store.get(key));
    out.push({ id, created: file.created, host: file.host, user: file.user, current: id === currentId });
  }
  return out.sort((a, b) => a.created.localeCompare(b.created));
}

export async function removeKey(store: ObjectStore, id: string, currentId: string): Promise<void> {
  if (id === currentId) {
    throw new MailarkError('USAGE', `key ${id} is the one in use`, {
      hint: 'open the repository with another password to remove this key',
    });
  }
  const ids = (await listKeys(store, currentId)).map((k) => k.id);
  if (!ids.includes(id)) {
    throw new MailarkError('NOT_FOUND', `no key ${id} in ${store.location}`, {
      hint: 'list keys with "mailark key list"',
    });
  }
  if (ids.length <= 1)
    throw new MailarkError('USAGE', 'refusing to remove the last key', { hint: 'add another key first' });
  await store.delete(objectKey('keys', id));
}

/** Tries every key file with the password; WRONG_PASSWORD when none opens. */
export async function findKey(
  store: ObjectStore,
  password: string,
  onKeyDerivation?: () => void,
): Promise<{ id: string; master: MasterKey }> {
  const damaged: MailarkError[] = [];
  let unsupported: MailarkError | undefined;
  let count = 0;
  let readable = 0;
  for await (const { key } of store.list('keys/')) {
    const id = idOfKey(key);
    if (id === undefined) continue;
    count++;
    let file: KeyFile;
    try {
      file = parseKeyFile(id, await store.get(key));
    } catch (err) {
      if (isMailarkError(err, 'CORRUPT')) damaged.push(err);
      else if (isMailarkError(err, 'FORMAT_UNSUPPORTED')) unsupported = err;
      else throw err;
      continue;
    }
    readable++;
    const unwrapping = unwrapKeyFile(file, password); // scrypt is on the thread pool once this returns
    if (readable === 1) onKeyDerivation?.();
    const master = await unwrapping;
    if (master !== undefined) return { id, master };
  }
  // Only newer-format keys (and maybe damaged ones): this mailark is too old, not the password wrong.
  if (unsupported !== undefined && readable === 0) throw unsupported;
  if (count > 0 && damaged.length === count) {
    // Not "run mailark check" (open()'s generic hint): check cannot open the repository either.
    const first = damaged[0] as MailarkError;
    throw new MailarkError('CORRUPT', first.message, {
      hint:
        `every key file is damaged (${damaged.map((d) => d.details?.object).join(', ')}), so no command ` +
        'can open the repository: restore keys/ from a copy of the repository (a replica, a backup of ' +
        'the bucket, or S3 object versioning)',
      cause: first,
      ...(first.details === undefined ? {} : { details: first.details }),
    });
  }
  const note =
    damaged.length > 0 ? ` (damaged key files: ${damaged.map((d) => d.details?.object).join(', ')})` : '';
  throw new MailarkError(
    'WRONG_PASSWORD',
    `no key in ${store.location} opens with the given password${note}`,
    {
      hint: 'check the password (MAILARK_PASSWORD, MAILARK_PASSWORD_FILE or --password-file)',
    },
  );
}
