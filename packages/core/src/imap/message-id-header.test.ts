import { describe, expect, it } from 'vitest';
import { normalizeMessageId, parseMessageIdHeader } from './message-id-header.js';

describe('parseMessageIdHeader', () => {
  it('reads the id without brackets, case-insensitively, folded or not', () => {
    expect(parseMessageIdHeader('Message-ID: <a.b@example.test>\r\n\r\n')).toBe('a.b@example.test');
    expect(parseMessageIdHeader(Buffer.from('message-id:\r\n  <folded@x>\r\n\r\n'))).toBe('folded@x');
    expect(parseMessageIdHeader('MESSAGE-ID: <c@x> (comment)\r\n')).toBe('c@x');
  });

  it('is undefined when the header is missing or empty', () => {
    expect(parseMessageIdHeader('\r\n')).toBeUndefined();
    expect(parseMessageIdHeader('Message-ID: \r\n')).toBeUndefined();
    expect(parseMessageIdHeader('Message-ID: <>\r\n')).toBeUndefined();
  });
});

describe('normalizeMessageId', () => {
  it('accepts ids with or without brackets', () => {
    expect(normalizeMessageId('<x@y>')).toBe('x@y');
    expect(normalizeMessageId(' x@y ')).toBe('x@y');
    expect(normalizeMessageId('')).toBeUndefined();
  });
});
