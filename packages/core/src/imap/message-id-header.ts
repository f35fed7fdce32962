/**
 * The Message-ID (RFC 5322 §3.6.4) out of a BODY[HEADER.FIELDS (MESSAGE-ID)] answer. Pure.
 * Returned without angle brackets (as HeaderSummary.messageId); undefined when absent or empty.
 */

export function parseMessageIdHeader(header: Uint8Array | string): string | undefined {
  const text = typeof header === 'string' ? header : Buffer.from(header).toString('latin1');
  // Unfold (RFC 5322 §2.2.3), then find the field; names are case-insensitive.
  const unfolded = text.replace(/\r?\n[ \t]+/g, ' ');
  const m = /^message-id[ \t]*:(.*)$/im.exec(unfolded);
  if (!m) return undefined;
  return normalizeMessageId(m[1] ?? '');
}

/** "<a@b>" / " a@b " / "<a@b> (comment)" → "a@b"; undefined when empty. */
export function normalizeMessageId(value: string): string | undefined {
  const v = value.trim();
  const bracketed = /<([^<>]*)>/.exec(v);
  const id = (bracketed ? bracketed[1] : v.split(/\s/)[0])?.trim() ?? '';
  return id === '' ? undefined : id;
}
