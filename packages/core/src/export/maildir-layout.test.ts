import { describe, expect, it } from 'vitest';
import {
  dovecotKeywordsFile,
  dovecotUidlistHeader,
  dovecotUidlistLine,
  keywordLetters,
  maildirBaseName,
  maildirFileName,
  maildirFolderDir,
  parseDovecotKeywords,
  parseMaildirFileName,
  parseMaildirInfo,
  subscriptionName,
  subscriptionsFile,
  unescapeMaildirLevel,
} from './maildir-layout.js';

describe('Maildir++ folder directories', () => {
  // Each expectation is what Dovecot 2.3.19 itself created on disk for that IMAP name (with the
  // listescape plugin for the escaped ones), observed while writing this module.
  it.each([
    ['INBOX', '/', ''],
    ['Projets', '/', '.Projets'],
    ['Projets/Été 2024', '/', '.Projets.&AMk-t&AOk- 2024'],
    ['x&y', '/', '.x&-y'],
    ['p%q', '/', '.p%q'],
    ['a.b', '/', '.a\\2eb'],
    ['a.b/c.d', '/', '.a\\2eb.c\\2ed'],
    ['back\\slash', '/', '.back\\5cslash'],
    ['~home', '/', '.\\7ehome'],
    ['x/~y', '/', '.x.\\7ey'],
    ['..', '/', '.\\2e\\2e'],
    ['INBOX/Sub', '/', '.INBOX.Sub'],
    ['Archives.2024', '.', '.Archives.2024'],
    ['a/b.c', '.', '.a\\2fb.c'],
    ['flat.name', '', '.flat\\2ename'],
  ])('%j (delimiter %j) → %j', (path, delimiter, dir) => {
    expect(maildirFolderDir(path, delimiter)).toBe(dir);
  });

  it('unescapes levels back to the names', () => {
    expect(unescapeMaildirLevel('a\\2eb')).toBe('a.b');
    expect(unescapeMaildirLevel('\\7ehome\\5cx')).toBe('~home\\x');
  });

  it('writes subscriptions as Dovecot does (version 2, levels joined by a tab)', () => {
    const names = [subscriptionName('a.b/c.d', '/'), subscriptionName('Projets/Été 2024', '/'), 'INBOX'];
    expect(subscriptionsFile(names)).toBe('V\t2\n\na\\2eb\tc\\2ed\nProjets\t&AMk-t&AOk- 2024\nINBOX\n');
  });
});

describe('Maildir message names', () => {
  const letters = keywordLetters(['$Forwarded', 'Important']).letters;
  const byLetter = parseDovecotKeywords(dovecotKeywordsFile(letters));

  it('maps flags to letters in ASCII order, P for $Forwarded, keywords a..z', () => {
    const name = maildirFileName(
      {
        uid: 7,
        internalDate: '2020-01-02T03:04:05.000Z',
        size: 18,
        flags: ['\\Answered', '\\Seen'],
        keywords: ['$Forwarded', 'Important'],
      },
      letters,
    );
    expect(name).toBe('1577934245.U7.mailark,S=18:2,PRSab');
    expect(
      maildirFileName(
        {
          uid: 1,
          internalDate: '1970-01-01T00:00:00Z',
          size: 0,
          flags: ['\\Deleted', '\\Draft', '\\Flagged', '\\Seen', '\\Answered'],
          keywords: [],
        },
        letters,
      ),
    ).toBe('0.U1.mailark,S=0:2,DFRST');
  });

  it('parses names back (its own and Dovecot-written ones)', () => {
    const p = parseMaildirFileName('1577934245.U7.mailark,S=18:2,PRSab');
    expect(p).toEqual({
      base: '1577934245.U7.mailark,S=18',
      seconds: 1577934245,
      uid: 7,
      size: 18,
      info: 'PRSab',
    });
    expect(parseMaildirInfo(p.info, byLetter)).toEqual({
      flags: ['\\Answered', '\\Seen'],
      keywords: ['$Forwarded', 'Important'],
      passed: true,
      unknown: [],
    });
    const d = parseMaildirFileName('1795242908.M92552P30044.vm,S=18,W=21:2,RSab');
    expect(d.size).toBe(18);
    expect(d.uid).toBeUndefined();
    expect(parseMaildirInfo('Sz', byLetter).unknown).toEqual(['z']);
  });

  it('gives letters to the first 26 keywords and reports the rest', () => {
    const many = Array.from({ length: 30 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    const { letters: l, overflow } = keywordLetters(many);
    expect(l.get('k00')).toBe('a');
    expect(l.get('k25')).toBe('z');
    expect(overflow).toEqual(['k26', 'k27', 'k28', 'k29']);
    const file = dovecotKeywordsFile(l);
    expect(file.startsWith('0 k00\n1 k01\n')).toBe(true);
    expect(parseDovecotKeywords(file)).toEqual(new Map([...l].map(([k, v]) => [v, k])));
  });

  it('writes dovecot-uidlist version 3 records', () => {
    expect(dovecotUidlistHeader('1700000000', 43)).toBe('3 V1700000000 N43\n');
    expect(dovecotUidlistLine(42, maildirBaseName(42, '2024-03-01T10:00:00Z', 99))).toBe(
      '42 :1709287200.U42.mailark,S=99\n',
    );
  });
});
