/**
 * Snapshot references as people type them: `latest` (of a tenant, if given), a full id, or a unique
 * prefix of at least 4 hex characters. An ambiguous prefix is a USAGE error, not a guess.
 */
import { MailarkError } from '../errors.js';
import type { Snapshot } from '../mail/snapshot.js';

export interface SnapshotSource {
  location: string;
  listIds(): Promise<string[]>;
  /** Every snapshot, ascending by time. */
  listAll(): Promise<Array<{ id: string; snapshot: Snapshot }>>;
  load(id: string): Promise<Snapshot>;
}

export async function resolveSnapshotRef(
  ref: string,
  filter: { tenant?: string },
  source: SnapshotSource,
): Promise<{ id: string; snapshot: Snapshot }> {
  const ofTenant = (s: Snapshot) => filter.tenant === undefined || s.tenant === filter.tenant;
  const what = filter.tenant === undefined ? '' : ` of tenant ${filter.tenant}`;
  if (ref === 'latest') {
    const last = (await source.listAll()).filter((s) => ofTenant(s.snapshot)).at(-1);
    if (last === undefined) {
      throw new MailarkError('NOT_FOUND', `no snapshot${what} in ${source.location}`, {
        hint: 'run "mailark backup" first',
      });
    }
    return last;
  }
  const lower = ref.toLowerCase();
  if (!/^[0-9a-f]{4,64}$/.test(lower)) {
    throw new MailarkError('USAGE', `"${ref}" is not a snapshot reference`, {
      hint: 'use "latest", a snapshot id, or at least its first 4 characters',
    });
  }
  const hits: Array<{ id: string; snapshot: Snapshot }> = [];
  for (const id of (await source.listIds()).filter((i) => i.startsWith(lower))) {
    const snapshot = await source.load(id);
    if (ofTenant(snapshot)) hits.push({ id, snapshot });
  }
  const [hit, other] = hits;
  if (hit === undefined) {
    throw new MailarkError('NOT_FOUND', `no snapshot${what} matches "${ref}" in ${source.location}`, {
      hint: 'list them with "mailark snapshots"',
    });
  }
  if (other !== undefined) {
    throw new MailarkError('USAGE', `snapshot prefix "${ref}" is ambiguous (${hits.length} snapshots)`, {
      hint: 'give more characters of the id',
    });
  }
  return hit;
}
