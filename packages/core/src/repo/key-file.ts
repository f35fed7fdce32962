/**
 * Key files (keys/<sha256 of the file>): one per password, each wrapping the same master key.
 *
 * A key file is the only object stored as plain JSON, because it must be read before any key is known:
 *   { v: 1, kdf: { name: "scrypt", N, r, p, salt }, created, host, user, data }
 * `data` is base64 of seal(scrypt(password, salt), encKey ‖ idKey) with the rest of the file
 * (canonical JSON, without `data`) as associated data, so no field can be altered unnoticed. The file is
 * named by its SHA-256, so a damaged file is told apart from a wrong password.
 */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { MailarkError } from '../errors.js';
import { canonicalJson } from '../mail/snapshot.js';
import {
  corrupt,
  deriveKek,
  KEY_BYTES,
  type MasterKey,
  type ScryptParams,
  seal,
  sha256Hex,
  tryOpen,
  validScrypt,
} from './crypto.js';

export const KEY_FILE_VERSION = 1;

export interface KeyFile {
  v: number;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  created: string;
  host: string;
  user: string;
  data: string;
}

/** What `mailark key list` shows of a key (never secrets). */
export interface KeyInfo {
  id: string;
  created: string;
  host: string;
  user: string;
}

export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    // userInfo() throws in containers without a passwd entry for the uid.
    return String(process.getuid?.() ?? 'unknown');
  }
}

/** A new key file wrapping `master` under `password`; returns its stored bytes and id. */
export async function createKeyFile(
  master: MasterKey,
  password: string,
  params: ScryptParams,
): Promise<{ id: string; bytes: Uint8Array }> {
  const salt = randomBytes(32);
  const head = {
    v: KEY_FILE_VERSION,
    kdf: { name: 'scrypt' as const, N: params.N, r: params.r, p: params.p, salt: salt.toString('base64') },
    created: new Date().toISOString(),
    host: hostname(),
    user: currentUser(),
  };
  const kek = await deriveKek(password, salt, params);
  const sealed = seal(kek, Buffer.concat([master.encKey, master.idKey]), Buffer.from(canonicalJson(head)));
  const file: KeyFile = { ...head, data: Buffer.from(sealed).toString('base64') };
  const bytes = Buffer.from(`${JSON.stringify(file, null, 2)}\n`);
  return { id: sha256Hex(bytes), bytes };
}

/** Parses and checks a key file's bytes against its id; throws CORRUPT or FORMAT_UNSUPPORTED. */
export function parseKeyFile(id: string, bytes: Uint8Array): KeyFile {
  const what = `keys/${id}`;
  if (sha256Hex(bytes) !== id) throw corrupt(what, 'does not match its id (damaged)');
  let file: KeyFile;
  try {
    file = JSON.parse(Buffer.from(bytes).toString('utf8')) as KeyFile;
  } catch (err) {
    throw corrupt(what, 'is not valid JSON', err);
  }
  if (typeof file !== 'object' || file === null || typeof file.v !== 'number')
    throw corrupt(what, 'is not a key file');
  if (file.v !== KEY_FILE_VERSION) {
    throw new MailarkError(
      'FORMAT_UNSUPPORTED',
      `key ${what} has format version ${file.v}; this mailark reads version ${KEY_FILE_VERSION}`,
      {
        hint: 'upgrade mailark to a version that supports this repository',
      },
    );
  }
  const k = file.kdf;
  if (
    k?.name !== 'scrypt' ||
    !validScrypt(k) ||
    typeof k.salt !== 'string' ||
    typeof file.data !== 'string'
  ) {
    throw corrupt(what, 'has invalid key-derivation parameters');
  }
  return file;
}

/** The master key if `password` opens this key file, undefined if it does not. */
export async function unwrapKeyFile(file: KeyFile, password: string): Promise<MasterKey | undefined> {
  const { data, ...head } = file;
  const kek = await deriveKek(password, Buffer.from(file.kdf.salt, 'base64'), file.kdf);
  const plain = tryOpen(kek, Buffer.from(data, 'base64'), Buffer.from(canonicalJson(head)));
  if (plain === undefined || plain.byteLength !== 2 * KEY_BYTES) return undefined;
  return { encKey: plain.subarray(0, KEY_BYTES), idKey: plain.subarray(KEY_BYTES) };
}
