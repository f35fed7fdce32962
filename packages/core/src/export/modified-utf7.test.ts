import { describe, expect, it } from 'vitest';
import { decodeModifiedUtf7, encodeModifiedUtf7 } from './modified-utf7.js';

describe('modified UTF-7 (RFC 3501 §5.1.3)', () => {
  it.each([
    ['INBOX', 'INBOX'],
    ['Été 2024', '&AMk-t&AOk- 2024'],
    ['Projets/Été 2024', 'Projets/&AMk-t&AOk- 2024'],
    ['x&y', 'x&-y'],
    ['&', '&-'],
    ['日本語', '&ZeVnLIqe-'],
    ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'],
    ['tab\there', 'tab&AAk-here'],
  ])('%j ↔ %j', (unicode, wire) => {
    expect(encodeModifiedUtf7(unicode)).toBe(wire);
    expect(decodeModifiedUtf7(wire)).toBe(unicode);
  });

  it('round-trips astral characters (surrogate pairs) and mixed runs', () => {
    for (const s of ['📧 Boîte', 'a😀b&c😀', '𝄞', 'ünï/cödé&ß', '\u007f', 'end é']) {
      expect(decodeModifiedUtf7(encodeModifiedUtf7(s))).toBe(s);
    }
    expect(encodeModifiedUtf7('😀')).toBe('&2D3eAA-');
  });

  it('rejects malformed input', () => {
    expect(() => decodeModifiedUtf7('&AMk')).toThrow(/closing/);
    expect(() => decodeModifiedUtf7('&A/k-')).toThrow(/not modified UTF-7/);
    expect(() => decodeModifiedUtf7('&AM-')).toThrow(/odd number/);
  });
});
