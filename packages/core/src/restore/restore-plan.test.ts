import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { MessageEntry } from '../mail/snapshot.js';
import {
  candidateSizes,
  compareCopy,
  findPresent,
  fingerprint,
  folderLevels,
  foldersToCreate,
  joinLevels,
  normalizeLineEnds,
  planRestore,
  type RestoreSource,
} from './restore-plan.js';

const sha = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex');

function source(user: string, path: string, delimiter = '/'): RestoreSource {
  return { ref: `r/${user}/${path}`, user, folder: { path, delimiter }, entry: { uid: 1 } as MessageEntry };
}

describe('planRestore', () => {
  it('sends each message to its own user and folder, grouped by user', () => {
    const plan = planRestore([
      source('alice', 'Clients/Été'),
      source('bob', 'INBOX'),
      source('alice', 'INBOX'),
    ]);
    expect([...plan.keys()]).toEqual(['alice', 'bob']);
    expect(plan.get('alice')?.map((p) => p.levels)).toEqual([['Clients', 'Été'], ['INBOX']]);
    expect(plan.get('bob')?.map((p) => [p.user, p.levels])).toEqual([['bob', ['INBOX']]]);
  });

  it('honours --to-user and --to-folder (written with "/")', () => {
    const plan = planRestore([source('alice', 'INBOX.Sub', '.'), source('bob', 'INBOX')], {
      toUser: 'carol',
      toFolder: 'Restored 2026-11-21/From backup',
    });
    expect([...plan.keys()]).toEqual(['carol']);
    expect(plan.get('carol')?.map((p) => p.levels)).toEqual([
      ['Restored 2026-11-21', 'From backup'],
      ['Restored 2026-11-21', 'From backup'],
    ]);
    expect(plan.get('carol')?.[0]?.source.user).toBe('alice');
  });
});

describe('folders', () => {
  it('splits and re-joins levels across delimiters', () => {
    expect(folderLevels('INBOX.Clients.Été', '.')).toEqual(['INBOX', 'Clients', 'Été']);
    expect(folderLevels('Flat name/with slash', '')).toEqual(['Flat name/with slash']);
    expect(joinLevels(['inbox', 'Clients'], '.')).toBe('INBOX.Clients');
    expect(joinLevels(['Clients', 'Été'], '/')).toBe('Clients/Été');
  });

  it('creates missing parents first and never INBOX', () => {
    expect(foldersToCreate(['Clients', 'Été', '2024'], '/', ['INBOX', 'Sent'])).toEqual([
      'Clients',
      'Clients/Été',
      'Clients/Été/2024',
    ]);
    expect(foldersToCreate(['Clients', 'Été'], '/', ['Clients'])).toEqual(['Clients/Été']);
    expect(foldersToCreate(['Clients', 'Été'], '/', ['Clients', 'Clients/Été'])).toEqual([]);
    expect(foldersToCreate(['INBOX'], '/', [])).toEqual([]);
    expect(foldersToCreate(['INBOX', 'Sub'], '.', ['inbox'])).toEqual(['INBOX.Sub']);
  });
});

describe('copy comparison', () => {
  const crlf = Buffer.from('Subject: a\r\n\r\nline\r\n');
  const lf = Buffer.from('Subject: a\n\nline\r\nmixed\n');

  it('normalises bare LF only', () => {
    expect(Buffer.from(normalizeLineEnds(lf)).toString()).toBe('Subject: a\r\n\r\nline\r\nmixed\r\n');
    expect(normalizeLineEnds(crlf)).toBe(crlf); // unchanged: same object, no copy
    expect(Buffer.from(normalizeLineEnds(Buffer.from('\nx'))).toString()).toBe('\r\nx');
  });

  it('tells identical, normalised and different copies apart', () => {
    const fp = fingerprint(lf);
    expect(fp.normalizedSize).toBe(lf.length + 3);
    expect(candidateSizes(fp)).toEqual([lf.length, lf.length + 3]);
    expect(compareCopy(fp, sha(lf))).toBe('identical');
    expect(compareCopy(fp, sha(normalizeLineEnds(lf)))).toBe('normalized');
    expect(compareCopy(fp, sha('other'))).toBe('different');
    const plain = fingerprint(crlf);
    expect(plain.normalizedSha256).toBeUndefined();
    expect(candidateSizes(plain)).toEqual([crlf.length]);
    expect(compareCopy(plain, sha(crlf))).toBe('identical');
  });

  it('finds a present copy among candidates', () => {
    const fp = fingerprint(lf);
    const cands = [
      { uid: 4, sha256: sha('x') },
      { uid: 9, sha256: sha(normalizeLineEnds(lf)) },
    ];
    expect(findPresent(fp, cands)?.uid).toBe(9);
    expect(findPresent(fp, cands.slice(0, 1))).toBeUndefined();
  });
});
