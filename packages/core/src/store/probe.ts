/**
 * Capability probing: does this store refuse an overwrite atomically (a "conditional write")?
 *
 * The repository probes once at init and records the answer in its config, so every later run knows
 * whether put() may rely on the backend to refuse an existing key (S3 `If-None-Match: *`, answered 412)
 * or must check first. A store that knows better than the generic probe exposes
 * `probeCapabilities()` itself (S3Store must: its check-then-put path would pass the generic probe
 * without any atomic guarantee); this function dispatches to it. applyCapabilities() hands the
 * recorded answer back to the store when a repository is opened.
 */
import { randomBytes } from 'node:crypto';
import { isMailarkError } from '../errors.js';
import type { ObjectStore } from './object-store.js';

export interface StoreCapabilities {
  /** put() refuses an existing key atomically, even against a concurrent writer. */
  conditionalWrites: boolean;
}

interface ProbingStore {
  probeCapabilities(): Promise<StoreCapabilities>;
}

interface ConfigurableStore {
  applyCapabilities(caps: StoreCapabilities): void;
}

function canProbe(store: ObjectStore): store is ObjectStore & ProbingStore {
  return typeof (store as Partial<ProbingStore>).probeCapabilities === 'function';
}

/** A fresh random probe key; probes never collide with repository objects or with each other. */
export function probeKey(): string {
  return `probe/${randomBytes(16).toString('hex')}`;
}

export async function probeCapabilities(store: ObjectStore): Promise<StoreCapabilities> {
  if (canProbe(store)) return store.probeCapabilities();
  // Generic probe, for stores whose put() is atomic by construction (memory): write a key twice and
  // see the second refused. Different bytes, so an overwrite would not go unnoticed on a re-read.
  const key = probeKey();
  await store.put(key, new TextEncoder().encode('first'));
  try {
    await store.put(key, new TextEncoder().encode('second'));
    return { conditionalWrites: false };
  } catch (err) {
    if (isMailarkError(err, 'OBJECT_EXISTS')) return { conditionalWrites: true };
    throw err;
  } finally {
    await store.delete(key);
  }
}

/**
 * Tells a store what the repository config records about it (the probe's answer at init), so S3
 * uses If-None-Match: * instead of HEAD-then-PUT. Stores that need no telling ignore it; decorators
 * pass it on. Call after init's probe and after open reads the config.
 */
export function applyCapabilities(store: ObjectStore, caps: StoreCapabilities): void {
  const s = store as Partial<ConfigurableStore>;
  if (typeof s.applyCapabilities === 'function') s.applyCapabilities(caps);
}
