/**
 * How values print for people: sizes, times, counts, short ids, and aligned tables. Pure functions;
 * --json output never goes through here (it carries the raw values).
 */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB"; binary units as restic prints them. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${value} B`;
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

/** ISO 8601 → "2024-05-01 02:00:03" (UTC, stated once in the table header or docs). */
export function formatTime(iso: string | undefined): string {
  if (iso === undefined || iso === '') return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * 12345 → "12,345" (fixed, so output does not depend on the machine's locale). Not toLocaleString:
 * its first call loads ICU locale data, ~150 ms of CPU at the end of every backup.
 */
/** A duration for an ETA: `42s`, `3m05s`, `2h10m`. */
export function formatDuration(secs: number): string {
  const s = Math.round(secs);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatCount(n: number): string {
  if (!Number.isSafeInteger(n)) return String(n);
  return String(n).replace(/\B(?=(\d{3})+$)/g, ',');
}

/** The first 8 hex digits of an id, as restic shows snapshot ids. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** One line of at most `max` characters (header text for tables; --json carries it whole). */
export function clip(s: string, max: number): string {
  const oneLine = s.replace(/\s+/g, ' ').trim();
  const cps = [...oneLine];
  return cps.length <= max ? oneLine : `${cps.slice(0, max - 1).join('')}…`;
}

export interface Column {
  header: string;
  align?: 'left' | 'right';
}

/**
 * Lines of an aligned text table: header, a rule, the rows. Widths count code points, so non-ASCII
 * folder names align as long as they are not double-width.
 */
export function formatTable(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = columns.map((c, i) => Math.max(width(c.header), ...rows.map((r) => width(r[i] ?? ''))));
  const render = (cells: readonly string[]) =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? '';
        const pad = ' '.repeat((widths[i] ?? 0) - width(cell));
        return c.align === 'right' ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [render(columns.map((c) => c.header)), rule, ...rows.map(render)];
}

function width(s: string): number {
  return [...s].length;
}
