/**
 * Where the local cache lives (restic's rules): an explicit directory (--cache-dir, then
 * MAILARK_CACHE_DIR), else the platform's cache directory: $XDG_CACHE_HOME/mailark or
 * ~/.cache/mailark (XDG Base Directory spec), ~/Library/Caches/mailark on macOS, %LOCALAPPDATA%\mailark
 * on Windows. Each repository caches under `<dir>/<repository id>/` (Repository.open adds the id).
 *
 * The rule it keeps: pure, and decided only from what it is given (never os.homedir()), so an
 * environment without HOME gets no cache rather than one in a surprising place.
 */
import * as path from 'node:path';

export interface CacheDirSettings {
  /** --cache-dir, if given. */
  flag?: string | undefined;
  /** false for --no-cache. */
  enabled?: boolean;
  env: Record<string, string | undefined>;
  /** Default process.platform. */
  platform?: NodeJS.Platform;
}

/** The base cache directory, or undefined when the cache is off or no directory can be determined. */
export function resolveCacheDir(s: CacheDirSettings): string | undefined {
  if (s.enabled === false) return undefined;
  const explicit = nonEmpty(s.flag) ?? nonEmpty(s.env.MAILARK_CACHE_DIR);
  if (explicit !== undefined) return explicit;
  const env = s.env;
  const platform = s.platform ?? process.platform;
  if (platform === 'win32') {
    const local = nonEmpty(env.LOCALAPPDATA);
    return local === undefined ? undefined : path.win32.join(local, 'mailark');
  }
  const home = nonEmpty(env.HOME);
  if (platform === 'darwin')
    return home === undefined ? undefined : path.join(home, 'Library', 'Caches', 'mailark');
  // XDG: "If an implementation encounters a relative path in any of these variables it should
  // consider the path invalid and ignore it."
  const xdg = nonEmpty(env.XDG_CACHE_HOME);
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, 'mailark');
  return home === undefined ? undefined : path.join(home, '.cache', 'mailark');
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}
