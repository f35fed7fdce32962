import { describe, expect, it } from 'vitest';
import { canonicalJson, type MessageEntry, type MessagePage } from '../mail/snapshot.js';
import { matchesEntry, parseMessageQuery } from './message-query.js';
import { pagePrefilter } from './page-prefilter.js';

function entry(uid: number, messageId: string | undefined, subject = 'hello'): MessageEntry {
  return {
    uid,
    size: 10,
    sha256: 'a'.repeat(64),
    internalDate: '2026-11-20T08:00:00.000Z',
    flags: [],
    keywords: [],
    content: ['b'.repeat(64)],
    h: messageId === undefined ? { subject } : { messageId, subject },
  };
}

const pageOf = (...entries: MessageEntry[]): Uint8Array =>
  Buffer.from(canonicalJson({ v: 1, entries } satisfies MessagePage));

describe('pagePrefilter', () => {
  it('applies only to Message-ID queries of printable ASCII without quote or backslash', () => {
    expect(pagePrefilter(parseMessageQuery({ subject: 'x' }))).toBeUndefined();
    for (const id of ['été@ex', 'a"b@ex', 'a\\b@ex', 'tab\there@ex']) {
      expect(pagePrefilter(parseMessageQuery({ messageId: id }))).toBeUndefined();
    }
    expect(pagePrefilter(parseMessageQuery({ messageId: '<abc@ex>' }))).toBeTypeOf('function');
  });

  it('never rejects a page holding a match, and rejects pages that cannot', () => {
    const stored = [
      'Abc.Def@Example.COM',
      'abc.def@example.com',
      '\u212aey@ex', // KELVIN SIGN: folds to "key@ex"
      'semi\u037ecolon@ex', // GREEK QUESTION MARK: folds to ";"
      'back\u1fefquote@ex', // GREEK VARIA: folds to "`"
      'a+b*c?(d)[e]{f}|g^h$@ex',
      'prefix-abc.def@example.com',
      'x@ex',
      'été@ex',
    ];
    const queries = [
      'abc.def@example.com',
      'ABC.DEF@EXAMPLE.COM',
      'key@ex',
      'KEY@EX',
      'semi;colon@ex',
      'back`quote@ex',
      'a+b*c?(d)[e]{f}|g^h$@ex',
      'abcxdef@example.com',
      'x@ex',
      'nothing@ex',
    ];
    for (const qid of queries) {
      const q = parseMessageQuery({ messageId: qid });
      const mayHold = pagePrefilter(q) as (page: Uint8Array) => boolean;
      for (const sid of stored) {
        const e = entry(1, sid);
        const page = pageOf(entry(2, 'other@ex', sid), e, entry(3, undefined));
        if (matchesEntry(q, e)) expect(mayHold(page), `${qid} vs ${sid}`).toBe(true);
      }
      // A page of other ids (the query's text in a subject does not count as quoted-equal).
      const other = pageOf(entry(1, 'zzz@ex', `re: ${qid}.`), entry(2, `${qid}.extra`));
      expect(mayHold(other), qid).toBe(false);
    }
  });
});
