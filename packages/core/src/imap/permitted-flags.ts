/**
 * Which flags an APPEND may carry into a folder. Pure.
 *
 * Which of `flags` the folder stores (RFC 3501 §7.1: PERMANENTFLAGS; "\*" = any keyword may be
 * created). \Recent can never be set by a client. No PERMANENTFLAGS at all: send everything.
 */
export function permittedFlags(
  flags: readonly string[],
  permanent: ReadonlySet<string> | undefined,
): { allowed: string[]; refused: string[] } {
  const allowed: string[] = [];
  const refused: string[] = [];
  const perm = permanent === undefined ? undefined : new Set([...permanent].map((f) => f.toLowerCase()));
  for (const f of new Set(flags)) {
    const lower = f.toLowerCase();
    if (lower === '\\recent') continue;
    const ok = perm === undefined || perm.has(lower) || (!f.startsWith('\\') && perm.has('\\*'));
    (ok ? allowed : refused).push(f);
  }
  return { allowed, refused };
}
