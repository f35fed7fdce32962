import { describe, expect, it } from 'vitest';
import { resolveCacheDir } from './cache-dir.js';

describe('resolveCacheDir', () => {
  const env = { HOME: '/home/ops', XDG_CACHE_HOME: '/var/tmp/xdg', MAILARK_CACHE_DIR: '/srv/cache' };

  it('prefers the flag, then MAILARK_CACHE_DIR', () => {
    expect(resolveCacheDir({ flag: '/opt/c', env, platform: 'linux' })).toBe('/opt/c');
    expect(resolveCacheDir({ env, platform: 'linux' })).toBe('/srv/cache');
    expect(resolveCacheDir({ flag: '', env, platform: 'linux' })).toBe('/srv/cache');
  });

  it('follows XDG on Linux: an absolute XDG_CACHE_HOME, else ~/.cache', () => {
    expect(resolveCacheDir({ env: { ...env, MAILARK_CACHE_DIR: '' }, platform: 'linux' })).toBe(
      '/var/tmp/xdg/mailark',
    );
    expect(
      resolveCacheDir({ env: { HOME: '/home/ops', XDG_CACHE_HOME: 'rel/dir' }, platform: 'linux' }),
    ).toBe('/home/ops/.cache/mailark');
    expect(resolveCacheDir({ env: { HOME: '/home/ops' }, platform: 'linux' })).toBe(
      '/home/ops/.cache/mailark',
    );
  });

  it('uses the platform cache folders of macOS and Windows', () => {
    expect(resolveCacheDir({ env: { HOME: '/Users/ops' }, platform: 'darwin' })).toBe(
      '/Users/ops/Library/Caches/mailark',
    );
    expect(
      resolveCacheDir({ env: { LOCALAPPDATA: 'C:\\Users\\ops\\AppData\\Local' }, platform: 'win32' }),
    ).toBe('C:\\Users\\ops\\AppData\\Local\\mailark');
  });

  it('is off with --no-cache, and when no directory can be determined', () => {
    expect(resolveCacheDir({ enabled: false, flag: '/opt/c', env, platform: 'linux' })).toBeUndefined();
    expect(resolveCacheDir({ env: {}, platform: 'linux' })).toBeUndefined();
    expect(resolveCacheDir({ env: {}, platform: 'win32' })).toBeUndefined();
  });
});
