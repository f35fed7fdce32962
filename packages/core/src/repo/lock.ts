/**
 * Repository locks, as restic's: locks/<id> holds a sealed record {mode, owner, host, pid, time}.
 *
 * - shared locks (backup, check, restore) coexist; an exclusive lock (prune) excludes every other lock.
 * - acquire = look for conflicting locks, write ours, then look again: two processes that race both
 *   see each other on the second look and back off, so a conflict can cause a spurious LOCKED but
 *   never two writers that must not meet.
 * - a held lock refreshes itself every 5 minutes (a new record, then the old one is deleted: nothing
 *   is rewritten in place); a lock is stale when its time is older than 30 minutes, or when it was
 *   taken on this host by a process that no longer exists. Stale locks never block anyone (a crashed
 *   agent must not stop the next night's backup); `mailark unlock` removes them.
 * - "the process no longer exists" is judged by pid AND identity: a pid is reused after a reboot, and
 *   an agent restarted in a container is pid 1 again on the same host name. On Linux the record holds
 *   `started` (boot id and the process's start time, from /proc): a live pid whose identity differs is
 *   another process, and the lock is stale. Records without it (other systems, older versions) fall
 *   back to the pid alone.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isMailarkError, MailarkError } from '../errors.js';
import type { Reporter } from '../progress.js';

export type LockMode = 'shared' | 'exclusive';

export interface LockRecord {
  mode: LockMode;
  owner: string;
  host: string;
  pid: number;
  /** ISO 8601 time of the last refresh. */
  time: string;
  /** Identity of the process `pid` (see processIdentity), when the system tells it. */
  started?: string;
}

export interface LockInfo extends LockRecord {
  id: string;
  stale: boolean;
}

/** A held lock. `id` changes when the lock refreshes (a refresh writes a new object). */
export interface RepoLock {
  readonly id: string;
  release(): Promise<void>;
}

export const STALE_AFTER_MS = 30 * 60 * 1000;
export const REFRESH_EVERY_MS = 5 * 60 * 1000;

/** Where this process runs; injectable so tests can play other hosts, dead pids and the future. */
export interface LockEnv {
  host: string;
  pid: number;
  /** This process's identity (written into its locks), when the system tells it. */
  started?: string | undefined;
  now(): number;
  /**
   * Is the process that wrote a lock still running? `started` is the identity the lock recorded:
   * when given and the live pid's identity differs, the pid was reused by another process.
   */
  isAlive(pid: number, started?: string): boolean;
}

/**
 * A process's identity on Linux: `<boot id>/<start time>`, the start time in clock ticks since boot
 * (/proc/<pid>/stat field 22, counted after the parenthesised command name, which may hold spaces).
 * The boot id is `-` where /proc/sys is hidden (systemd's ProcSubset=pid); undefined where /proc does
 * not tell at all (other systems). Compare identities with sameProcess.
 */
export function processIdentity(pid: number): string | undefined {
  let start: string | undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields from the 3rd (state) on: the start time, the 22nd field, is index 19 here.
    start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
  if (start === undefined || !/^\d+$/.test(start)) return undefined;
  let boot = '-';
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || '-';
  } catch {}
  return `${boot}/${start}`;
}

/**
 * Pure: may two identities be the same process? The start times must match; the boot ids too, unless
 * one side could not read it (a sandboxed agent and an admin's shell see the same process).
 */
export function sameProcess(a: string, b: string): boolean {
  const [bootA, startA] = a.split('/');
  const [bootB, startB] = b.split('/');
  if (startA !== startB) return false;
  return bootA === '-' || bootB === '-' || bootA === bootB;
}

let ownIdentity: { value: string | undefined } | undefined;

export const processLockEnv: LockEnv = {
  host: hostname(),
  pid: process.pid,
  // Read from /proc when a lock is first taken or judged, not when this module loads (every command).
  get started() {
    ownIdentity ??= { value: processIdentity(process.pid) };
    return ownIdentity.value;
  },
  now: () => Date.now(),
  isAlive(pid, started) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      // EPERM: the process exists but belongs to someone else.
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
    }
    if (started === undefined) return true;
    const now = processIdentity(pid);
    return now === undefined || sameProcess(now, started);
  },
};

/** Pure: is this lock stale as seen from `env`? */
export function isStale(lock: LockRecord, env: LockEnv): boolean {
  const t = Date.parse(lock.time);
  if (!Number.isFinite(t) || env.now() - t > STALE_AFTER_MS) return true;
  if (lock.host !== env.host) return false;
  if (lock.pid === env.pid) {
    // Our own pid: our lock, unless an earlier process had this pid (a restarted container's pid 1).
    return lock.started !== undefined && env.started !== undefined && !sameProcess(lock.started, env.started);
  }
  return !env.isAlive(lock.pid, lock.started);
}

/** Pure: may a lock of `mode` be taken while `other` is held? */
export function conflicts(mode: LockMode, other: LockRecord): boolean {
  return mode === 'exclusive' || other.mode === 'exclusive';
}

/** What the lock code needs of a repository. */
export interface LockStore {
  readonly location: string;
  saveLockRecord(record: LockRecord): Promise<string>;
  /** The record, or undefined when the object vanished meanwhile; throws CORRUPT when unreadable. */
  loadLockRecord(id: string): Promise<LockRecord | undefined>;
  listLockIds(): Promise<string[]>;
  deleteLockRecord(id: string): Promise<void>;
}

/** Every lock in the repository; unreadable ones are reported as non-stale exclusive 'unknown' locks. */
export async function listLocks(store: LockStore, env: LockEnv = processLockEnv): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for (const id of await store.listLockIds()) {
    let rec: LockRecord | undefined;
    try {
      rec = await store.loadLockRecord(id);
    } catch (err) {
      if (!isMailarkError(err, 'CORRUPT')) throw err;
      rec = {
        mode: 'exclusive',
        owner: 'unreadable lock',
        host: 'unknown',
        pid: 0,
        time: new Date(env.now()).toISOString(),
      };
      out.push({ id, ...rec, stale: false });
      continue;
    }
    if (rec !== undefined) out.push({ id, ...rec, stale: isStale(rec, env) });
  }
  return out;
}

/** Removes stale locks; returns their ids. */
export async function removeStaleLocks(store: LockStore, env: LockEnv = processLockEnv): Promise<string[]> {
  const stale = (await listLocks(store, env)).filter((l) => l.stale);
  for (const l of stale) await store.deleteLockRecord(l.id);
  return stale.map((l) => l.id);
}

/** Removes every lock, held or not (`mailark unlock --remove-all`); returns their ids. */
export async function removeAllLocks(store: LockStore): Promise<string[]> {
  const ids = await store.listLockIds();
  for (const id of ids) await store.deleteLockRecord(id);
  return ids;
}

function lockedError(store: LockStore, holder: LockInfo): MailarkError {
  const how = holder.mode === 'exclusive' ? 'exclusively' : 'shared';
  return new MailarkError(
    'LOCKED',
    `repository ${store.location} is locked (${how}) by ${holder.owner} on ${holder.host} (pid ${holder.pid}) since ${holder.time}`,
    {
      hint:
        holder.owner === 'unreadable lock'
          ? `lock ${holder.id} cannot be read: if no mailark is running, run "mailark unlock --remove-all"`
          : 'if that process is gone, run "mailark unlock"',
      details: {
        holder: {
          id: holder.id,
          mode: holder.mode,
          owner: holder.owner,
          host: holder.host,
          pid: holder.pid,
          since: holder.time,
        },
      },
    },
  );
}

/** Takes a lock; LOCKED names the holder. The lock refreshes itself until released. */
export async function acquireLock(
  store: LockStore,
  mode: LockMode,
  owner: string,
  opts: { env?: LockEnv; reporter?: Reporter } = {},
): Promise<HeldLock> {
  const env = opts.env ?? processLockEnv;
  const blocking = async (self?: string) => {
    const all = await listLocks(store, env);
    for (const l of all) {
      if (l.id === self) continue;
      if (l.stale) {
        opts.reporter?.log(
          'warn',
          `ignoring stale lock ${l.id} of ${l.owner} on ${l.host} (pid ${l.pid}) since ${l.time}`,
        );
        continue;
      }
      if (conflicts(mode, l)) return l;
    }
    return undefined;
  };
  const before = await blocking();
  if (before !== undefined) throw lockedError(store, before);
  const record = (): LockRecord => ({
    mode,
    owner,
    host: env.host,
    pid: env.pid,
    time: new Date(env.now()).toISOString(),
    ...(env.started === undefined ? {} : { started: env.started }),
  });
  const id = await store.saveLockRecord(record());
  const after = await blocking(id);
  if (after !== undefined) {
    await store.deleteLockRecord(id);
    throw lockedError(store, after);
  }
  return new HeldLock(store, id, record, env, opts.reporter);
}

export class HeldLock implements RepoLock {
  private current: string;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();

  private refreshedAt: number;

  constructor(
    private readonly store: LockStore,
    id: string,
    private readonly record: () => LockRecord,
    private readonly env: LockEnv,
    private readonly reporter?: Reporter,
  ) {
    this.current = id;
    this.refreshedAt = env.now();
    this.timer = setInterval(() => {
      this.refreshing = this.refresh().catch((err: unknown) => {
        this.reporter?.log('warn', `could not refresh lock ${this.current}: ${String(err)}`);
      });
    }, REFRESH_EVERY_MS);
    // A lock must never keep the process alive on its own.
    this.timer.unref();
  }

  get id(): string {
    return this.current;
  }

  get released(): boolean {
    return this.timer === undefined;
  }

  /** Writes a fresh record, then deletes the old one (never a moment without a lock). */
  async refresh(): Promise<void> {
    if (this.timer === undefined) return;
    const old = this.current;
    const record = this.record();
    this.current = await this.store.saveLockRecord(record);
    this.refreshedAt = Date.parse(record.time);
    await this.store.deleteLockRecord(old);
  }

  /**
   * Throws LOCKED when the lock went unrefreshed so long that others now see it as stale (the process
   * was suspended, or the store unreachable): another process may have taken an exclusive lock since,
   * so writing on would be unsafe. Checked before index and snapshot writes.
   */
  assertValid(): void {
    if (this.timer !== undefined && this.env.now() - this.refreshedAt > STALE_AFTER_MS) {
      throw new MailarkError(
        'LOCKED',
        `the lock on ${this.store.location} was last refreshed at ${new Date(this.refreshedAt).toISOString()} and may have been taken over`,
        { hint: 'run the operation again; it resumes from what is already stored' },
      );
    }
  }

  async release(): Promise<void> {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.refreshing;
    await this.store.deleteLockRecord(this.current);
  }
}
