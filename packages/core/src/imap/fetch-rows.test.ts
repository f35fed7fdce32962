import type { ImapFlow } from 'imapflow';
import { describe, expect, it } from 'vitest';
import { fetchRows, readRow } from './fetch-rows.js';

const atom = (value: string) => ({ type: 'ATOM', value });
const body = Buffer.from('Subject: x\r\n\r\nhello\r\n');

/** A row as imapflow's parser gives it: `* 7 FETCH (UID 42 FLAGS (...) ... BODY[] {n})`. */
const parsedRow = [
  atom('FETCH'),
  [
    atom('UID'),
    atom('42'),
    atom('FLAGS'),
    [atom('\\Seen'), atom('$Label1')],
    atom('INTERNALDATE'),
    { type: 'STRING', value: '04-Jun-2024 10:00:00 +0200' },
    atom('RFC822.SIZE'),
    atom(String(body.length)),
    atom('MODSEQ'),
    [atom('00123')],
    { type: 'ATOM', value: 'BODY', section: [] },
    { type: 'LITERAL', value: body },
  ],
];

describe('readRow', () => {
  it('reads UID, flags, date, size, modseq and the body literal', () => {
    expect(readRow(parsedRow)).toEqual({
      uid: 42,
      flags: ['\\Seen', '$Label1'],
      internalDate: new Date('2024-06-04T08:00:00.000Z'),
      size: body.length,
      modseq: '123',
      body,
    });
  });

  it('ignores other sections and rows without a usable UID', () => {
    const header = [
      atom('FETCH'),
      [atom('UID'), atom('5'), { ...atom('BODY'), section: [atom('HEADER')] }, atom('x')],
    ];
    expect(readRow(header)).toEqual({ uid: 5 });
    expect(readRow([atom('FETCH'), [atom('FLAGS'), [atom('\\Seen')]]])).toBeUndefined();
    expect(readRow([atom('FETCH'), [atom('UID'), atom('99999999999')]])).toBeUndefined();
    expect(readRow([atom('FETCH'), [atom('UID'), atom('1e3')]])).toBeUndefined();
    expect(readRow(undefined)).toBeUndefined();
  });
});

describe('fetchRows', () => {
  it("sends imapflow's UID FETCH through exec, with MODSEQ as imapflow would ask it", async () => {
    const sent: unknown[][] = [];
    const client = {
      enabled: new Set(['CONDSTORE']),
      mailbox: { path: 'INBOX', noModseq: false },
      async exec(
        command: string,
        attributes: unknown[],
        options: { untagged: Record<string, (r: unknown) => Promise<void>> },
      ) {
        sent.push([command, attributes]);
        await options.untagged.FETCH?.({ attributes: parsedRow });
        await options.untagged.FETCH?.({ attributes: [atom('FETCH'), [atom('FLAGS'), []]] });
        return { next() {} };
      },
    } as unknown as ImapFlow;
    const rows = await fetchRows(client, '40:45', {
      flags: true,
      size: true,
      body: { start: 0, length: 100 },
    });
    expect(rows.map((r) => r.uid)).toEqual([42]);
    expect(sent).toEqual([
      [
        'UID FETCH',
        [
          { type: 'SEQUENCE', value: '40:45' },
          [
            atom('UID'),
            atom('FLAGS'),
            atom('RFC822.SIZE'),
            { type: 'ATOM', value: 'BODY.PEEK', section: [], partial: [0, 100] },
            atom('MODSEQ'),
          ],
        ],
      ],
    ]);
  });

  it("falls back to imapflow's fetch() where exec is missing", async () => {
    const client = {
      async *fetch(range: string, query: Record<string, unknown>, opts: Record<string, unknown>) {
        expect([range, query, opts]).toEqual([
          '7',
          { uid: true, flags: false, internalDate: true, size: true, source: true },
          { uid: true },
        ]);
        yield { seq: 1, uid: 7, size: 3, internalDate: new Date(0), modseq: 9n, source: Buffer.from('abc') };
        yield { seq: 2, flags: new Set(['\\Seen']) };
      },
    } as unknown as ImapFlow;
    expect(await fetchRows(client, '7', { internalDate: true, size: true, body: true })).toEqual([
      { uid: 7, size: 3, internalDate: new Date(0), modseq: '9', body: Buffer.from('abc') },
    ]);
  });
});
