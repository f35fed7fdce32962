import { describe, expect, it } from 'vitest';
import { type ExecAttribute, type ExecHost, type ExecOptions, withInitialResponse } from './imap-connect.js';

/** A stand-in for imapflow's connection: records what goes on the wire. */
class FakeConnection implements ExecHost {
  readonly sent: Array<{ command: string; attributes: ExecAttribute[] }> = [];
  readonly written: string[] = [];
  /** What the server answers with "+" before completing the command. */
  continuations = 0;

  async exec(command: string, attributes: ExecAttribute[] = [], options: ExecOptions = {}): Promise<unknown> {
    this.sent.push({ command, attributes });
    for (let i = 0; i < this.continuations; i++) await options.onPlusTag?.({});
    return { next: () => {} };
  }

  write(chunk: string): void {
    this.written.push(chunk);
  }
}

/** imapflow's PLAIN step as it is: AUTHENTICATE PLAIN, then the response when the server says "+". */
async function plainStep(c: ExecHost, response: string): Promise<string> {
  await c.exec('AUTHENTICATE', [{ type: 'ATOM', value: 'PLAIN' }], {
    onPlusTag: async () => c.write(response),
  });
  return 'user';
}

describe('SASL-IR (RFC 4959)', () => {
  it('sends AUTHENTICATE PLAIN with its response in one command, marked sensitive', async () => {
    const c = new FakeConnection();
    const result = await withInitialResponse(c, () => plainStep(c, 'AHVzZXIAcHc='));
    expect(result).toBe('user');
    expect(c.sent).toEqual([
      {
        command: 'AUTHENTICATE',
        attributes: [
          { type: 'ATOM', value: 'PLAIN' },
          { type: 'ATOM', value: 'AHVzZXIAcHc=', sensitive: true },
        ],
      },
    ]);
    expect(c.written).toEqual([]);
    // exec and write are imapflow's own again.
    expect(Object.hasOwn(c, 'exec')).toBe(false);
    expect(Object.hasOwn(c, 'write')).toBe(false);
  });

  it('cancels with "*" if the server still asks after the initial response', async () => {
    const c = new FakeConnection();
    c.continuations = 1;
    await withInitialResponse(c, () => plainStep(c, 'AHVzZXIAcHc='));
    expect(c.written).toEqual(['*']);
  });

  it('leaves other commands and mechanisms as they are', async () => {
    const c = new FakeConnection();
    c.continuations = 1;
    await withInitialResponse(c, async () => {
      await c.exec('AUTHENTICATE', [{ type: 'ATOM', value: 'LOGIN' }], {
        onPlusTag: async () => c.write('dXNlcg=='),
      });
      await c.exec('ID', [], {});
    });
    expect(c.sent.map((s) => [s.command, s.attributes.length])).toEqual([
      ['AUTHENTICATE', 1],
      ['ID', 0],
    ]);
    expect(c.written).toEqual(['dXNlcg==']);
  });
});
