/**
 * Modified UTF-7 (RFC 3501 §5.1.3): how IMAP servers, and Dovecot and Courier on disk, spell mailbox
 * names. Printable US-ASCII (0x20-0x7e) stands for itself except "&", which is written "&-"; any other
 * run of characters is "&" + modified base64 (RFC 2045 alphabet with "," instead of "/", no padding)
 * of its UTF-16BE code units + "-".
 *
 * The rule kept: decode(encode(s)) === s for every string, surrogate pairs included.
 */
import { MailarkError } from '../errors.js';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

/** Unicode → modified UTF-7. */
export function encodeModifiedUtf7(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x26) {
      out += '&-';
      i++;
    } else if (c >= 0x20 && c <= 0x7e) {
      out += text[i];
      i++;
    } else {
      // A run of characters outside printable ASCII, as UTF-16BE code units.
      const units: number[] = [];
      while (i < text.length) {
        const u = text.charCodeAt(i);
        if (u >= 0x20 && u <= 0x7e) break;
        units.push(u >> 8, u & 0xff);
        i++;
      }
      out += `&${base64(units)}-`;
    }
  }
  return out;
}

/** Modified UTF-7 → Unicode; USAGE error for text that is not valid modified UTF-7. */
export function decodeModifiedUtf7(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch !== '&') {
      out += ch;
      i++;
      continue;
    }
    const end = text.indexOf('-', i + 1);
    if (end < 0) throw invalid(text, 'an "&" run without its closing "-"');
    if (end === i + 1) {
      out += '&';
    } else {
      const bytes = unbase64(text.slice(i + 1, end), text);
      if (bytes.length % 2 !== 0) throw invalid(text, 'an odd number of UTF-16 bytes');
      for (let k = 0; k < bytes.length; k += 2) {
        out += String.fromCharCode(((bytes[k] as number) << 8) | (bytes[k + 1] as number));
      }
    }
    i = end + 1;
  }
  return out;
}

function base64(bytes: number[]): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += B64[(acc >> bits) & 0x3f];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += B64[(acc << (6 - bits)) & 0x3f];
  return out;
}

function unbase64(s: string, whole: string): number[] {
  const out: number[] = [];
  let bits = 0;
  let acc = 0;
  for (const ch of s) {
    const v = B64.indexOf(ch);
    if (v < 0) throw invalid(whole, `"${ch}" inside a base64 run`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

function invalid(text: string, why: string): MailarkError {
  return new MailarkError('USAGE', `${JSON.stringify(text)} is not modified UTF-7: ${why}`, {
    hint: 'mailbox names on the wire and on disk use modified UTF-7 (RFC 3501 §5.1.3)',
  });
}
