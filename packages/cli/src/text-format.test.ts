import { describe, expect, it } from 'vitest';
import { clip, formatBytes, formatCount, formatTable, formatTime } from './text-format.js';

describe('text formatting', () => {
  it('prints sizes in binary units, counts with separators, times in UTC', () => {
    expect([0, 1023, 1024, 1536, 10 * 1024 * 1024, 123.4 * 1024 ** 3].map(formatBytes)).toEqual([
      '0 B',
      '1023 B',
      '1.00 KiB',
      '1.50 KiB',
      '10.0 MiB',
      '123 GiB',
    ]);
    expect(formatCount(1234567)).toBe('1,234,567');
    expect([0, 999, 1000, -1234567].map(formatCount)).toEqual(['0', '999', '1,000', '-1,234,567']);
    expect(formatTime('2024-05-01T02:00:03.123Z')).toBe('2024-05-01 02:00:03');
    expect(formatTime('not a date')).toBe('not a date');
  });

  it('aligns table columns by characters, non-ASCII included', () => {
    expect(
      formatTable(
        [{ header: 'Folder' }, { header: 'Messages', align: 'right' }],
        [
          ['Projets/Été', '3'],
          ['INBOX', '1,024'],
        ],
      ),
    ).toEqual([
      'Folder       Messages',
      '-----------  --------',
      'Projets/Été         3',
      'INBOX           1,024',
    ]);
  });

  it('clips header text to one line', () => {
    expect(clip('Re:  a\r\n\tfolded subject', 40)).toBe('Re: a folded subject');
    expect(clip('abcdefghij', 5)).toBe('abcd…');
  });
});
