import { describe, expect, it } from 'vitest';
import { refusedBy } from './imap-restore-target.js';

describe('refusedBy (PERMANENTFLAGS, RFC 3501 §7.1)', () => {
  const wanted = ['\\Seen', '\\Flagged', '$Forwarded', 'Important'];

  it('refuses nothing when the server sent no PERMANENTFLAGS', () => {
    expect(refusedBy(undefined, wanted)).toEqual([]);
  });

  it('allows any keyword with \\*, but only listed system flags', () => {
    expect(refusedBy(new Set(['\\Seen', '\\*']), wanted)).toEqual(['\\Flagged']);
  });

  it('allows only listed keywords without \\*, case-insensitively', () => {
    expect(refusedBy(new Set(['\\Seen', '\\Flagged', '$forwarded']), wanted)).toEqual(['Important']);
    expect(refusedBy(new Set(), wanted)).toEqual(wanted);
  });
});
