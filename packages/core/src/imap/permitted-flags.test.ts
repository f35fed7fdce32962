import { describe, expect, it } from 'vitest';
import { permittedFlags } from './permitted-flags.js';

describe('permittedFlags', () => {
  it('allows every keyword when PERMANENTFLAGS has \\*', () => {
    const perm = new Set(['\\Seen', '\\Flagged', '\\*']);
    expect(permittedFlags(['\\Seen', '$Forwarded', 'Important'], perm)).toEqual({
      allowed: ['\\Seen', '$Forwarded', 'Important'],
      refused: [],
    });
  });

  it('refuses what the folder does not store, case-insensitively, and drops \\Recent', () => {
    const perm = new Set(['\\Seen', '\\Answered', '$Label1']);
    expect(permittedFlags(['\\seen', '\\Draft', '$label1', 'Other', '\\Recent'], perm)).toEqual({
      allowed: ['\\seen', '$label1'],
      refused: ['\\Draft', 'Other'],
    });
  });

  it('sends everything when the server names no PERMANENTFLAGS', () => {
    expect(permittedFlags(['\\Seen', 'X'], undefined)).toEqual({ allowed: ['\\Seen', 'X'], refused: [] });
  });
});
