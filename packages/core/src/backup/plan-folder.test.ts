import { describe, expect, it } from 'vitest';
import type { FolderNode, MessageEntry } from '../mail/snapshot.js';
import {
  ContentIndex,
  contentKey,
  type FolderStatus,
  type MessageMeta,
  matchUnknown,
  planFolder,
  planListing,
} from './plan-folder.js';

function node(over: Partial<FolderNode> = {}): FolderNode {
  return {
    path: 'INBOX',
    rawPath: 'INBOX',
    delimiter: '/',
    flags: [],
    subscribed: true,
    selectable: true,
    uidValidity: '1700000000',
    uidNext: 11,
    highestModseq: '100',
    messages: 3,
    bytes: 300,
    pages: ['p1'],
    ...over,
  };
}

const status = (over: Partial<FolderStatus> = {}): FolderStatus => ({
  uidValidity: '1700000000',
  uidNext: 11,
  messages: 3,
  highestModseq: '100',
  ...over,
});

function entry(uid: number, over: Partial<MessageEntry> = {}): MessageEntry {
  return {
    uid,
    size: 100 + uid,
    sha256: `sha-${uid}`,
    internalDate: `2024-06-0${(uid % 9) + 1}T10:00:00.000Z`,
    flags: ['\\Seen'],
    keywords: [],
    content: [`h${uid}`, `b${uid}`],
    h: { messageId: `m${uid}@example.com`, subject: `s${uid}` },
    ...over,
  };
}

const cond = { condstore: true };

describe('planListing', () => {
  it('carries a folder whose UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and count did not move', () => {
    expect(planListing(node(), status(), cond)).toEqual({ kind: 'carry' });
  });

  it('asks for changes since the last HIGHESTMODSEQ when anything moved', () => {
    expect(planListing(node(), status({ highestModseq: '105' }), cond)).toEqual({
      kind: 'changes',
      changedSince: '100',
    });
    expect(planListing(node(), status({ uidNext: 12 }), cond)).toEqual({
      kind: 'changes',
      changedSince: '100',
    });
    // An expunge on a server that did not bump HIGHESTMODSEQ still shows in the count.
    expect(planListing(node(), status({ messages: 2 }), cond)).toEqual({
      kind: 'changes',
      changedSince: '100',
    });
  });

  it('compares 63-bit modseqs exactly', () => {
    const big = node({ highestModseq: '9007199254740993' });
    expect(planListing(big, status({ highestModseq: '9007199254740993' }), cond)).toEqual({ kind: 'carry' });
    expect(planListing(big, status({ highestModseq: '9007199254740992' }), cond)).toEqual({
      kind: 'remap',
      reason: 'modseq-backwards',
    });
    expect(planListing(big, status({ highestModseq: '9007199254740994' }), cond).kind).toBe('changes');
  });

  it('re-maps on a new folder, a changed UIDVALIDITY or a HIGHESTMODSEQ going backwards', () => {
    expect(planListing(undefined, status(), cond)).toEqual({ kind: 'remap', reason: 'new-folder' });
    expect(planListing(node({ selectable: false }), status(), cond)).toEqual({
      kind: 'remap',
      reason: 'new-folder',
    });
    expect(planListing(node(), status({ uidValidity: '1700000001' }), cond)).toEqual({
      kind: 'remap',
      reason: 'uidvalidity-changed',
    });
    expect(planListing(node(), status({ highestModseq: '99' }), cond)).toEqual({
      kind: 'remap',
      reason: 'modseq-backwards',
    });
  });

  it('lists everything (UID+FLAGS diff) without CONDSTORE or without a previous modseq', () => {
    const plain = { condstore: false };
    const noModseq = status();
    delete noModseq.highestModseq;
    expect(planListing(node({ highestModseq: undefined }), noModseq, plain)).toEqual({ kind: 'full' });
    // Without modseqs nothing proves flags unchanged, even with the same UIDNEXT and count.
    expect(planListing(node({ highestModseq: undefined }), noModseq, cond)).toEqual({ kind: 'full' });
    expect(planListing(node(), noModseq, cond)).toEqual({ kind: 'full' });
    // A checkpointed, half-done folder is stored without a modseq: it gets a full diff, not a carry.
    expect(planListing(node({ highestModseq: undefined }), status(), cond)).toEqual({ kind: 'full' });
    expect(planListing(node(), status({ highestModseq: '101' }), plain)).toEqual({ kind: 'full' });
  });
});

describe('planFolder', () => {
  const prev = [entry(1), entry(2), entry(5, { flags: [], keywords: ['$Label1'] }), entry(7)];

  it('CHANGEDSINCE + VANISHED: updates changed flags, keeps the rest, expunges vanished, names new UIDs', () => {
    const plan = planFolder(
      prev,
      { kind: 'changes', changedSince: '100' },
      {
        messages: [
          { uid: 2, flags: ['\\Seen', '\\Flagged'], modseq: '104' },
          { uid: 5, flags: ['$Label1', '\\Recent'], modseq: '103' }, // only \Recent differs: no change
          { uid: 11, flags: ['\\Seen'], modseq: '105' },
          { uid: 12, flags: [], modseq: '106' },
        ],
        vanished: [7, 9],
      },
    );
    expect(plan.mode).toBe('changes');
    expect(plan.keep.map((e) => e.uid)).toEqual([1, 2, 5]);
    expect(plan.keep[1]).toMatchObject({
      uid: 2,
      flags: ['\\Flagged', '\\Seen'],
      modseq: '104',
      sha256: 'sha-2',
    });
    expect(plan.keep[2]).toMatchObject({ uid: 5, flags: [], keywords: ['$Label1'], modseq: '103' });
    expect(plan.keep[0]).toBe(prev[0]); // untouched entries are carried as the same object
    expect(plan.flagChanges).toBe(1);
    expect(plan.expunged).toEqual([7]);
    expect(plan.unknown.map((m) => m.uid)).toEqual([11, 12]);
  });

  it('CHANGEDSINCE without QRESYNC: expunges from the UID SEARCH ALL list', () => {
    const plan = planFolder(
      prev,
      { kind: 'changes', changedSince: '100' },
      { messages: [{ uid: 1, flags: [], modseq: '101' }], allUids: [1, 2, 7] },
    );
    expect(plan.keep.map((e) => e.uid)).toEqual([1, 2, 7]);
    expect(plan.keep[0]?.flags).toEqual([]);
    expect(plan.flagChanges).toBe(1);
    expect(plan.expunged).toEqual([5]);
  });

  it('refuses a CHANGEDSINCE listing that cannot tell expunges', () => {
    expect(() => planFolder(prev, { kind: 'changes', changedSince: '1' }, { messages: [] })).toThrow(
      TypeError,
    );
  });

  it('full UID+FLAGS diff: keyword changes count, missing UIDs are expunged, duplicates collapse', () => {
    const plan = planFolder(
      prev,
      { kind: 'full' },
      {
        messages: [
          { uid: 1, flags: ['\\Seen'] },
          { uid: 5, flags: ['$Label1', 'Important'] },
          { uid: 5, flags: ['$Label1', 'Important', 'Later'] },
          { uid: 8, flags: ['\\Draft'] },
        ],
      },
    );
    expect(plan.mode).toBe('full');
    expect(plan.keep.map((e) => e.uid)).toEqual([1, 5]);
    expect(plan.keep[1]?.keywords).toEqual(['$Label1', 'Important', 'Later']);
    expect(plan.flagChanges).toBe(1);
    expect(plan.expunged).toEqual([2, 7]);
    expect(plan.unknown).toEqual([{ uid: 8, flags: ['\\Draft'] }]);
  });

  it('an empty folder expunges everything', () => {
    const plan = planFolder(prev, { kind: 'full' }, { messages: [] });
    expect(plan.keep).toEqual([]);
    expect(plan.expunged).toEqual([1, 2, 5, 7]);
  });

  it('remap: no previous UID is trusted', () => {
    const plan = planFolder(
      prev,
      { kind: 'remap', reason: 'uidvalidity-changed' },
      {
        messages: [
          { uid: 2, flags: [] },
          { uid: 1, flags: ['\\Seen'] },
        ],
      },
    );
    expect(plan).toMatchObject({ mode: 'remap', reason: 'uidvalidity-changed', keep: [], flagChanges: 0 });
    expect(plan.unknown.map((m) => m.uid)).toEqual([1, 2]);
    expect(plan.expunged).toEqual([1, 2, 5, 7]);
  });
});

describe('matchUnknown', () => {
  const index = new ContentIndex().add([
    entry(1),
    entry(2),
    entry(3, { h: {} }), // no Message-ID: never matched
  ]);

  const meta = (uid: number, over: Partial<MessageMeta> = {}): MessageMeta => ({
    uid,
    size: 101,
    internalDate: '2024-06-02T10:00:00.000Z',
    messageId: 'm1@example.com',
    flags: ['\\Answered', '$Forwarded'],
    ...over,
  });

  it('reuses stored content under the new UID with the current flags', () => {
    const r = matchUnknown([meta(40, { modseq: '7' })], index);
    expect(r.fetch).toEqual([]);
    expect(r.matched).toEqual([
      {
        ...entry(1),
        uid: 40,
        flags: ['\\Answered'],
        keywords: ['$Forwarded'],
        modseq: '7',
      },
    ]);
  });

  it('matches dates given in any ISO form, and drops a stale modseq when the server gives none', () => {
    const withModseq = new ContentIndex().add([entry(1, { modseq: '55' })]);
    const r = matchUnknown([meta(41, { internalDate: '2024-06-02T12:00:00+02:00' })], withModseq);
    expect(r.matched[0]?.uid).toBe(41);
    expect(r.matched[0]?.modseq).toBeUndefined();
  });

  it('fetches what does not match exactly: other size, other date, other or no Message-ID', () => {
    const r = matchUnknown(
      [
        meta(50, { size: 102 }),
        meta(51, { internalDate: '2024-06-02T10:00:01.000Z' }),
        meta(52, { messageId: 'other@example.com' }),
        meta(53, { messageId: undefined, size: 103, internalDate: '2024-06-04T10:00:00.000Z' }),
        meta(54, { messageId: 'm2@example.com', size: 102, internalDate: '2024-06-03T10:00:00.000Z' }),
      ],
      index,
    );
    expect(r.fetch.map((m) => m.uid)).toEqual([50, 51, 52, 53]);
    expect(r.matched.map((e) => [e.uid, e.sha256])).toEqual([[54, 'sha-2']]);
    expect(index.size).toBe(2);
    // Content is known by SHA-256 even without a key (a re-download of it is counted as such).
    expect(index.hasContent('sha-3')).toBe(true);
    expect(index.hasContent('sha-9')).toBe(false);
  });

  it('may match only sizes that a keyed entry has (or an unknown size)', () => {
    expect(index.mayMatch(101)).toBe(true);
    expect(index.mayMatch(102)).toBe(true);
    expect(index.mayMatch(103)).toBe(false); // entry 3 has no Message-ID, hence no key
    expect(index.mayMatch(104)).toBe(false);
    expect(index.mayMatch(undefined)).toBe(true);
  });

  it('has no key without a Message-ID', () => {
    expect(contentKey({ size: 1, internalDate: '2024-01-01T00:00:00Z' })).toBeUndefined();
    expect(contentKey({ messageId: 'a@b', size: 1, internalDate: '2024-01-01T00:00:00Z' })).toBe(
      'a@b\u00001\u00002024-01-01T00:00:00.000Z',
    );
  });
});
