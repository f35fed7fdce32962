/**
 * The repository's cryptography, in one place.
 *
 * - seal/open: AES-256-GCM with a random 96-bit nonce per message; sealed = nonce ‖ ciphertext ‖ tag.
 *   Random nonces are safe for AES-GCM up to ~2^32 messages per key (NIST SP 800-38D §8.3), far above
 *   what one tenant's repository ever seals. An `aad` binds a sealed value to where it belongs (its kind,
 *   or a blob's id), so a valid ciphertext moved to another place does not authenticate there.
 * - blob ids: HMAC-SHA-256 of the plaintext under the repository's id key, so ids reveal nothing about
 *   content (no confirmation-of-file attack) without the key.
 * - the key-encryption key: scrypt(password, salt, N, r, p) (RFC 7914).
 *
 * Rule: open() never returns unauthenticated bytes; any failure is a CORRUPT error naming the object.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, scrypt } from 'node:crypto';
import { MailarkError } from '../errors.js';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Bytes a sealed value adds to its plaintext. */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/** The repository's secret: one key to encrypt, one to compute blob ids. Never stored unwrapped. */
export interface MasterKey {
  encKey: Uint8Array;
  idKey: Uint8Array;
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** Production default: scrypt N=2^15, r=8, p=1 (~32 MiB, ~100 ms), as restic's current default. */
export const DEFAULT_KDF: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };

export function newMasterKey(): MasterKey {
  return { encKey: randomBytes(KEY_BYTES), idKey: randomBytes(KEY_BYTES) };
}

/** Nonces come from a pool of random bytes: one randomBytes() call per 341 seals instead of each. */
let noncePool = Buffer.alloc(0);
let noncePos = 0;
function nextNonce(): Buffer {
  if (noncePos + NONCE_BYTES > noncePool.byteLength) {
    noncePool = randomBytes(NONCE_BYTES * 341);
    noncePos = 0;
  }
  const nonce = noncePool.subarray(noncePos, noncePos + NONCE_BYTES);
  noncePos += NONCE_BYTES;
  return nonce;
}

export function seal(key: Uint8Array, plain: Uint8Array, aad?: Uint8Array): Uint8Array {
  const nonce = nextNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  if (aad !== undefined) cipher.setAAD(aad);
  const body = cipher.update(plain);
  const last = cipher.final();
  const tag = cipher.getAuthTag();
  return Buffer.concat([nonce, body, last, tag]);
}

/**
 * Authenticates and decrypts; `what` names the object for the error (e.g. `index/ab12…`).
 * Throws CORRUPT when the value is too short or does not authenticate.
 */
export function open(key: Uint8Array, sealed: Uint8Array, what: string, aad?: Uint8Array): Uint8Array {
  if (sealed.byteLength < SEAL_OVERHEAD) {
    throw corrupt(what, `is truncated (${sealed.byteLength} bytes)`);
  }
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.byteLength - TAG_BYTES);
  const body = sealed.subarray(NONCE_BYTES, sealed.byteLength - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    if (aad !== undefined) decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    const out = decipher.update(body);
    const last = decipher.final();
    return last.byteLength === 0 ? out : Buffer.concat([out, last]);
  } catch (err) {
    throw corrupt(what, 'does not authenticate (damaged, or not written with this repository key)', err);
  }
}

/** Like open(), but returns undefined instead of throwing: for trying a password against a key. */
export function tryOpen(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array | undefined {
  try {
    return open(key, sealed, '', aad);
  } catch {
    return undefined;
  }
}

/** The keyed blob id (hex). */
export function hmacId(idKey: Uint8Array, plain: Uint8Array): string {
  return createHmac('sha256', idKey).update(plain).digest('hex');
}

/** SHA-256 hex: the name of a stored object (its id is the hash of its stored bytes). */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function randomId(): string {
  return randomBytes(32).toString('hex');
}

/** Refuses parameters no mailark writes, so a damaged key file cannot make scrypt eat the machine. */
export function validScrypt(p: ScryptParams): boolean {
  return (
    Number.isInteger(p.N) &&
    Number.isInteger(p.r) &&
    Number.isInteger(p.p) &&
    p.N >= 2 &&
    p.N <= 2 ** 22 &&
    (p.N & (p.N - 1)) === 0 &&
    p.r >= 1 &&
    p.r <= 32 &&
    p.p >= 1 &&
    p.p <= 16
  );
}

export function deriveKek(password: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  // scrypt needs 128·N·r bytes; Node's default maxmem (32 MiB) is exactly the production default.
  const maxmem = 128 * params.N * params.r * 2 + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_BYTES, { ...params, maxmem }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

export function corrupt(what: string, problem: string, cause?: unknown): MailarkError {
  return new MailarkError('CORRUPT', `repository object ${what} ${problem}`, {
    hint: 'run "mailark check" to see what else is damaged; "mailark repair index" rebuilds a damaged index',
    // `what` may add context after the key ("data/ab/… (blob …)"): the key is its first word.
    details: { object: what.split(' ')[0] },
    ...(cause === undefined ? {} : { cause }),
  });
}
