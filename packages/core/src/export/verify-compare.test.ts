import { describe, expect, it } from 'vitest';
import type { FolderNode, MessageEntry } from '../mail/snapshot.js';
import {
  compareFile,
  compareFolderLine,
  compareMaildir,
  compareManifestLine,
  compareMbox,
} from './verify-compare.js';
import type { PlannedFolder } from './verify-plan.js';

const node: FolderNode = {
  path: 'Été',
  rawPath: '&AMk-t&AOk-',
  delimiter: '/',
  flags: [],
  subscribed: true,
  selectable: true,
  uidValidity: '7',
  uidNext: 4,
  messages: 1,
  bytes: 10,
  pages: [],
};
const folder: PlannedFolder = {
  user: 'u@x',
  userIndex: 0,
  folderIndex: 0,
  node,
  maildirDir: 'x/u@x/Maildir/.&AMk-t&AOk-',
  emlDir: 'x/u@x/eml/Été',
  mboxFile: 'x/u@x/mbox/Été.mbox',
};
const entry: MessageEntry = {
  uid: 3,
  size: 10,
  sha256: 'a'.repeat(64),
  internalDate: '2024-01-02T03:04:05.000Z',
  flags: ['\\Seen'],
  keywords: ['$Forwarded', 'Work'],
  content: [],
  h: {},
};
const e = {
  folder,
  entry,
  letters: new Map([
    ['$Forwarded', 'a'],
    ['Work', 'b'],
  ]),
};
const mtime = new Date('2024-01-02T03:04:05.900Z');
const seen = { path: 'p', sha256: entry.sha256, size: 10, mtime };

describe('verify-export comparisons', () => {
  it('accept an exact file and name each way a file can differ', () => {
    expect(compareFile('eml', e, seen)).toEqual([]);
    expect(compareFile('eml', e, { ...seen, size: 11 }).map((d) => d.kind)).toEqual(['content']);
    expect(
      compareFile('eml', e, { ...seen, mtime: new Date('2024-01-02T03:04:07Z') }).map((d) => d.kind),
    ).toEqual(['date']);
  });

  it("read Maildir flags through the export's own keyword letters", () => {
    const byLetter = new Map([
      ['a', '$Forwarded'],
      ['b', 'Work'],
    ]);
    expect(compareMaildir(e, { ...seen, nameSize: 10, info: 'PSab', byLetter })).toEqual([]);
    const noP = compareMaildir(e, { ...seen, nameSize: 10, info: 'Sab', byLetter });
    expect(noP.map((d) => d.kind)).toEqual(['flags']);
    expect(noP[0]?.message).toContain('("PSab")');
    expect(compareMaildir(e, { ...seen, nameSize: 9, info: 'PSab', byLetter }).map((d) => d.kind)).toEqual([
      'content',
    ]);
  });

  it('accept either mbox candidate of the right size, and check the status lines', () => {
    const m = {
      path: 'f.mbox',
      index: 0,
      offset: 0,
      fromLine: 'From x Tue Jan  2 03:04:05 2024',
      date: mtime,
    };
    const ok = { ...m, candidates: [{ size: 10, sha256: entry.sha256 }] };
    expect(compareMbox(e, ok, false)).toEqual([]);
    expect(
      compareMbox(e, { ...ok, candidates: [{ size: 11, sha256: entry.sha256 }] }, false).map((d) => d.kind),
    ).toEqual(['content']);
    const status = { seen: true, xstatus: '', keywords: ['$Forwarded', 'Work'] };
    expect(compareMbox(e, { ...ok, status }, true)).toEqual([]);
    expect(compareMbox(e, { ...ok, status: { ...status, seen: false } }, true).map((d) => d.kind)).toEqual([
      'flags',
    ]);
  });

  it('compare manifest and folders lines field by field', () => {
    const line = {
      user: 'u@x',
      folder: 'Été',
      folderRaw: '&AMk-t&AOk-',
      delimiter: '/',
      uid: 3,
      uidValidity: '7',
      flags: ['\\Seen'],
      keywords: ['$Forwarded', 'Work'],
      internalDate: '2024-01-02T04:04:05+01:00',
      size: 10,
      sha256: entry.sha256,
      paths: { eml: 'x/u@x/eml/Été/3.eml' },
    };
    expect(compareManifestLine(e, line, ['eml'])).toEqual([]);
    expect(compareManifestLine(e, { ...line, keywords: ['Work'] }, ['eml'])[0]?.message).toContain(
      'keywords',
    );
    expect(compareManifestLine(e, line, ['eml', 'mbox'])[0]?.message).toContain('paths.mbox');
    const fl = {
      user: 'u@x',
      folder: 'Été',
      folderRaw: '&AMk-t&AOk-',
      delimiter: '/',
      flags: [],
      subscribed: true,
      selectable: true,
      uidValidity: '7',
      uidNext: 4,
      messages: 1,
      bytes: 10,
      paths: {},
    };
    expect(compareFolderLine(folder, fl)).toEqual([]);
    expect(compareFolderLine(folder, { ...fl, messages: 2 })[0]?.message).toContain('messages');
  });
});
