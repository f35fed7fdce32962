/**
 * Agent time spans such as `26h`, `90min`, `30s`, `2d` or `1d12h` (alert thresholds, grace periods).
 *
 * Deliberately not the retention duration format: there `m` means months (restic), so here minutes are
 * spelled `min` and a bare `m` is refused rather than guessed.
 */
const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, min: 60_000, s: 1000 };

/** Milliseconds, or undefined when the text is not a span. */
export function parseTimeSpan(text: string): number | undefined {
  const t = text.trim();
  const re = /(\d+)(d|h|min|s)/y;
  let pos = 0;
  let total = 0;
  while (pos < t.length) {
    re.lastIndex = pos;
    const m = re.exec(t);
    if (m === null) return undefined;
    total += Number.parseInt(m[1]!, 10) * UNIT_MS[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === 0 ? undefined : total;
}

/** `93784000` → `1d2h3min4s`. */
export function formatTimeSpan(ms: number): string {
  let rest = Math.round(ms / 1000) * 1000;
  const parts: string[] = [];
  for (const [unit, size] of Object.entries(UNIT_MS)) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.length === 0 ? '0s' : parts.join('');
}
