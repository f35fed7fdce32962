/**
 * The repository's primitives against published vectors (RFC 4231 HMAC-SHA-256, RFC 7914 scrypt) and
 * their rules: sealed values authenticate only with their key and place (aad), never return damaged
 * bytes, never reuse a nonce; passwords are compared in NFC; scrypt parameters are bounded.
 */
import { describe, expect, it } from 'vitest';
import type { MailarkError } from '../errors.js';
import {
  deriveKek,
  hmacId,
  NONCE_BYTES,
  newMasterKey,
  open,
  SEAL_OVERHEAD,
  seal,
  sha256Hex,
  tryOpen,
  validScrypt,
} from './crypto.js';

const text = (s: string) => Buffer.from(s, 'utf8');

function openError(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): MailarkError {
  try {
    open(key, sealed, 'index/ab12', aad);
  } catch (err) {
    return err as MailarkError;
  }
  throw new Error('open() returned data it should have refused');
}

describe('seal and open (AES-256-GCM)', () => {
  const { encKey } = newMasterKey();
  const aad = text('snapshots');

  it('round-trips any plaintext, empty included, adding exactly nonce and tag', () => {
    for (const plain of [new Uint8Array(0), text('x'), Buffer.alloc(70_000, 0xa5)]) {
      const sealed = seal(encKey, plain, aad);
      expect(sealed.byteLength).toBe(plain.byteLength + SEAL_OVERHEAD);
      expect(Buffer.from(open(encKey, sealed, 'snapshots/1', aad)).equals(Buffer.from(plain))).toBe(true);
    }
  });

  it('never repeats a nonce, also across refills of the nonce pool', () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      nonces.add(Buffer.from(seal(encKey, text('same'), aad).subarray(0, NONCE_BYTES)).toString('hex'));
    }
    expect(nonces.size).toBe(1000);
  });

  it('refuses every flipped bit of nonce, ciphertext and tag as CORRUPT naming the object', () => {
    const sealed = seal(encKey, text('Subject: invoice 4711'), aad);
    for (let i = 0; i < sealed.byteLength; i++) {
      const damaged = Uint8Array.from(sealed);
      damaged[i] = (damaged[i] as number) ^ 0x80;
      const err = openError(encKey, damaged, aad);
      expect(err.code).toBe('CORRUPT');
      expect(err.message).toContain('index/ab12');
      expect(err.details?.object).toBe('index/ab12');
    }
  });

  it('refuses another key, another place (aad), a missing aad and a truncated value', () => {
    const sealed = seal(encKey, text('secret'), aad);
    expect(openError(newMasterKey().encKey, sealed, aad).code).toBe('CORRUPT');
    expect(openError(encKey, sealed, text('index')).code).toBe('CORRUPT');
    expect(openError(encKey, sealed).code).toBe('CORRUPT');
    const short = openError(encKey, sealed.subarray(0, SEAL_OVERHEAD - 1), aad);
    expect(short.message).toContain(`is truncated (${SEAL_OVERHEAD - 1} bytes)`);
    expect(tryOpen(encKey, sealed, text('index'))).toBeUndefined();
    expect(Buffer.from(tryOpen(encKey, sealed, aad) as Uint8Array).toString()).toBe('secret');
  });

  it('leaves no plaintext in the sealed bytes', () => {
    const plain = text('Zanzibar quarterly invoice '.repeat(10));
    expect(Buffer.from(seal(encKey, plain)).includes(text('Zanzibar'))).toBe(false);
  });
});

describe('keyed ids and object names', () => {
  it('HMAC-SHA-256 matches RFC 4231 test case 2, and depends on the key', () => {
    expect(hmacId(text('Jefe'), text('what do ya want for nothing?'))).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
    const body = text('the same message');
    expect(hmacId(newMasterKey().idKey, body)).not.toBe(hmacId(newMasterKey().idKey, body));
    expect(hmacId(newMasterKey().idKey, body)).not.toBe(sha256Hex(body));
  });

  it('names objects by plain SHA-256', () => {
    expect(sha256Hex(text('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('key derivation (scrypt)', () => {
  it('matches RFC 7914 §12 (N=1024, r=8, p=16), first 32 bytes', async () => {
    const key = await deriveKek('password', text('NaCl'), { N: 1024, r: 8, p: 16 });
    expect(Buffer.from(key).toString('hex')).toBe(
      'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162',
    );
  });

  it('derives the same key from composed and decomposed Unicode (NFC), another from another password', async () => {
    const salt = text('salt of the key file');
    const params = { N: 1024, r: 8, p: 1 };
    const composed = await deriveKek('\u00e9t\u00e9 2024', salt, params);
    const decomposed = await deriveKek('e\u0301te\u0301 2024', salt, params);
    expect(Buffer.from(decomposed).equals(Buffer.from(composed))).toBe(true);
    expect(Buffer.from(await deriveKek('ete 2024', salt, params)).equals(Buffer.from(composed))).toBe(false);
  });

  it('accepts only bounded power-of-two parameters, so a damaged key file cannot exhaust memory', () => {
    expect(validScrypt({ N: 2 ** 15, r: 8, p: 1 })).toBe(true);
    expect(validScrypt({ N: 1024, r: 8, p: 1 })).toBe(true);
    for (const bad of [
      { N: 1000, r: 8, p: 1 },
      { N: 2 ** 23, r: 8, p: 1 },
      { N: 1, r: 8, p: 1 },
      { N: 1024, r: 0, p: 1 },
      { N: 1024, r: 33, p: 1 },
      { N: 1024, r: 8, p: 17 },
      { N: 1024.5, r: 8, p: 1 },
      { N: Number.NaN, r: 8, p: 1 },
    ]) {
      expect(validScrypt(bad), JSON.stringify(bad)).toBe(false);
    }
  });
});
