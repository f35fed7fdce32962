import { describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import type { MessageEntry } from '../mail/snapshot.js';
import {
  isEmptyQuery,
  matchesEntry,
  matchesFolder,
  matchesUser,
  parseDateBound,
  parseMessageQuery,
  parseSize,
  stripMessageIdBrackets,
} from './message-query.js';

// A fixed "now": Saturday 21 November 2026, 15:30 local time.
const NOW = new Date(2026, 10, 21, 15, 30, 0);

function entry(over: Partial<MessageEntry> & { h?: MessageEntry['h'] } = {}): MessageEntry {
  return {
    uid: 7,
    size: 2048,
    sha256: 'a'.repeat(64),
    internalDate: new Date(2026, 10, 21, 9, 15).toISOString(),
    flags: ['\\Seen'],
    keywords: [],
    content: [],
    h: {
      messageId: 'Invoice-42@bob.example',
      from: 'Bob Martin <bob@bob.example>',
      to: 'Alice <alice@example.com>',
      cc: 'Compta <compta@example.com>',
      subject: 'Facture n° 42 — Été',
      attachments: ['facture-42.pdf', 'Logo.PNG'],
    },
    ...over,
  };
}

function usage(fn: () => unknown): MailarkError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MailarkError);
    expect((err as MailarkError).code).toBe('USAGE');
    return err as MailarkError;
  }
  throw new Error('expected a USAGE error');
}

describe('parseDateBound', () => {
  it('reads today and yesterday as whole local days', () => {
    expect(parseDateBound('--since', 'today', NOW)).toEqual({
      start: new Date(2026, 10, 21).getTime(),
      end: new Date(2026, 10, 22).getTime(),
    });
    expect(parseDateBound('--since', 'Yesterday', NOW)).toEqual({
      start: new Date(2026, 10, 20).getTime(),
      end: new Date(2026, 10, 21).getTime(),
    });
  });

  it('reads yesterday across a month boundary', () => {
    const first = new Date(2026, 2, 1, 8, 0);
    expect(parseDateBound('--since', 'yesterday', first).start).toBe(new Date(2026, 1, 28).getTime());
  });

  it('reads an ISO date as a local day and rejects impossible ones', () => {
    expect(parseDateBound('--until', '2026-02-28', NOW)).toEqual({
      start: new Date(2026, 1, 28).getTime(),
      end: new Date(2026, 2, 1).getTime(),
    });
    const err = usage(() => parseDateBound('--until', '2026-02-30', NOW));
    expect(err.message).toContain('--until');
    expect(err.hint).toContain('yesterday');
  });

  it('reads local times to the minute or second and instants with a zone', () => {
    expect(parseDateBound('--since', '2026-11-21T10:30', NOW)).toEqual({
      start: new Date(2026, 10, 21, 10, 30).getTime(),
      end: new Date(2026, 10, 21, 10, 31).getTime(),
    });
    expect(parseDateBound('--since', '2026-11-21T10:30:05', NOW).end).toBe(
      new Date(2026, 10, 21, 10, 30, 6).getTime(),
    );
    expect(parseDateBound('--since', '2026-11-21T09:30:00Z', NOW).start).toBe(Date.UTC(2026, 10, 21, 9, 30));
    expect(parseDateBound('--since', '2026-11-21T10:30:00+01:00', NOW).start).toBe(
      Date.UTC(2026, 10, 21, 9, 30),
    );
  });

  it('reads ages before now', () => {
    expect(parseDateBound('--since', '3d', NOW).start).toBe(NOW.getTime() - 3 * 86_400_000);
    expect(parseDateBound('--since', '12h', NOW).start).toBe(NOW.getTime() - 12 * 3_600_000);
    expect(parseDateBound('--since', '90m', NOW).start).toBe(NOW.getTime() - 90 * 60_000);
    expect(parseDateBound('--since', '2w', NOW).start).toBe(NOW.getTime() - 14 * 86_400_000);
  });

  it('rejects what it cannot read', () => {
    for (const bad of ['last week', '21/11/2026', '2026-11', '3y', '', 'T10:00'])
      usage(() => parseDateBound('--since', bad, NOW));
  });
});

describe('parseSize', () => {
  it('reads bytes and binary multiples', () => {
    expect(parseSize('--larger', '300')).toBe(300);
    expect(parseSize('--larger', '500k')).toBe(512_000);
    expect(parseSize('--larger', '10M')).toBe(10 * 1024 * 1024);
    expect(parseSize('--larger', '1.5m')).toBe(1_572_864);
    expect(parseSize('--larger', '2MiB')).toBe(2 * 1024 * 1024);
    expect(parseSize('--larger', '1G')).toBe(1024 ** 3);
    expect(parseSize('--larger', '64b')).toBe(64);
  });
  it('rejects other text', () => {
    for (const bad of ['ten', '10X', '-5', 'M', '10 MB extra']) usage(() => parseSize('--larger', bad));
  });
});

describe('parseMessageQuery', () => {
  it('parses every criterion', () => {
    const q = parseMessageQuery(
      {
        user: 'alice@example.com',
        folder: 'Clients/Été',
        from: 'bob',
        to: 'compta',
        subject: 'facture',
        messageId: '<Invoice-42@bob.example>',
        since: 'yesterday',
        until: 'today',
        larger: '1k',
        hasAttachment: 'pdf',
      },
      NOW,
    );
    expect(q).toEqual({
      user: 'alice@example.com',
      folder: 'Clients/Été',
      from: 'bob',
      to: 'compta',
      subject: 'facture',
      messageId: 'Invoice-42@bob.example',
      since: new Date(2026, 10, 20).getTime(),
      before: new Date(2026, 10, 22).getTime(),
      larger: 1024,
      hasAttachment: 'pdf',
    });
    expect(isEmptyQuery(q)).toBe(false);
    expect(isEmptyQuery(parseMessageQuery({}, NOW))).toBe(true);
  });

  it('rejects an empty text criterion and a since after until', () => {
    expect(usage(() => parseMessageQuery({ from: '  ' }, NOW)).message).toContain('--from');
    usage(() => parseMessageQuery({ since: 'today', until: 'yesterday' }, NOW));
  });

  it('normalises Message-IDs', () => {
    expect(stripMessageIdBrackets(' <abc@x> ')).toBe('abc@x');
    expect(stripMessageIdBrackets('abc@x')).toBe('abc@x');
  });
});

describe('matchesEntry', () => {
  const q = (raw: Parameters<typeof parseMessageQuery>[0]) => parseMessageQuery(raw, NOW);

  it('matches decoded header text case-insensitively', () => {
    expect(matchesEntry(q({ from: 'BOB MARTIN' }), entry())).toBe(true);
    expect(matchesEntry(q({ subject: 'ÉTÉ' }), entry())).toBe(true);
    expect(matchesEntry(q({ subject: 'ete' }), entry())).toBe(false);
    expect(matchesEntry(q({ from: 'carol' }), entry())).toBe(false);
  });

  it('compares Unicode in NFC form', () => {
    const decomposed = 'E\u0301te\u0301'; // "Été" with combining accents
    expect(matchesEntry(q({ subject: decomposed }), entry())).toBe(true);
  });

  it('matches --to against To and Cc', () => {
    expect(matchesEntry(q({ to: 'alice@' }), entry())).toBe(true);
    expect(matchesEntry(q({ to: 'compta' }), entry())).toBe(true);
    expect(matchesEntry(q({ to: 'bob' }), entry())).toBe(false);
  });

  it('matches the Message-ID exactly, brackets optional, case-insensitive', () => {
    expect(matchesEntry(q({ messageId: '<invoice-42@BOB.example>' }), entry())).toBe(true);
    expect(matchesEntry(q({ messageId: 'Invoice-4@bob.example' }), entry())).toBe(false);
    expect(matchesEntry(q({ messageId: 'x@y' }), entry({ h: {} }))).toBe(false);
  });

  it('bounds the internal date, since inclusive, until through the end of its day', () => {
    const at = (d: Date) => entry({ internalDate: d.toISOString() });
    const crit = q({ since: '2026-11-20', until: '2026-11-20' });
    expect(matchesEntry(crit, at(new Date(2026, 10, 20, 0, 0)))).toBe(true);
    expect(matchesEntry(crit, at(new Date(2026, 10, 20, 23, 59, 59)))).toBe(true);
    expect(matchesEntry(crit, at(new Date(2026, 10, 21, 0, 0)))).toBe(false);
    expect(matchesEntry(crit, at(new Date(2026, 10, 19, 23, 59)))).toBe(false);
  });

  it('tests larger strictly, as IMAP SEARCH LARGER', () => {
    expect(matchesEntry(q({ larger: '2048' }), entry())).toBe(false);
    expect(matchesEntry(q({ larger: '2047' }), entry())).toBe(true);
  });

  it('matches attachment names by substring; empty means any attachment', () => {
    expect(matchesEntry(q({ hasAttachment: 'PDF' }), entry())).toBe(true);
    expect(matchesEntry(q({ hasAttachment: 'logo.png' }), entry())).toBe(true);
    expect(matchesEntry(q({ hasAttachment: 'zip' }), entry())).toBe(false);
    expect(matchesEntry(q({ hasAttachment: '' }), entry())).toBe(true);
    expect(matchesEntry(q({ hasAttachment: '' }), entry({ h: { subject: 'x' } }))).toBe(false);
  });

  it('needs every criterion (AND)', () => {
    expect(matchesEntry(q({ from: 'bob', subject: 'facture' }), entry())).toBe(true);
    expect(matchesEntry(q({ from: 'bob', subject: 'devis' }), entry())).toBe(false);
  });
});

describe('matchesUser and matchesFolder', () => {
  const q = (raw: Parameters<typeof parseMessageQuery>[0]) => parseMessageQuery(raw, NOW);

  it('matches the user exactly, case-insensitively', () => {
    expect(matchesUser(q({ user: 'Alice@Example.com' }), 'alice@example.com')).toBe(true);
    expect(matchesUser(q({ user: 'alice' }), 'alice@example.com')).toBe(false);
    expect(matchesUser(q({}), 'anyone')).toBe(true);
  });

  it('matches folders exactly, with a trailing * as prefix, INBOX in any case', () => {
    expect(matchesFolder(q({ folder: 'Clients/Été' }), { path: 'Clients/Été' })).toBe(true);
    expect(matchesFolder(q({ folder: 'Clients/Été' }), { path: 'Clients' })).toBe(false);
    expect(matchesFolder(q({ folder: 'Clients*' }), { path: 'Clients/Été' })).toBe(true);
    expect(matchesFolder(q({ folder: 'Clients*' }), { path: 'Archive/Clients' })).toBe(false);
    expect(matchesFolder(q({ folder: 'inbox' }), { path: 'INBOX' })).toBe(true);
    expect(matchesFolder(q({ folder: 'Inbox/Sub' }), { path: 'INBOX/Sub' })).toBe(true);
    expect(matchesFolder(q({ folder: 'inboxes' }), { path: 'Inboxes' })).toBe(false);
    expect(matchesFolder(q({ folder: 'E\u0301te\u0301' }), { path: 'Été' })).toBe(true);
  });
});
