/**
 * Where each repository object lives in the store. Every object but `config` is named by an id of
 * 64 hex characters: the SHA-256 of its stored bytes (packs, index, snapshots, keys, checkpoints,
 * locks), which is what lets a reader tell a damaged object from a wrong key.
 *
 *   config                 sealed RepoConfig
 *   keys/<id>              key files (plain JSON wrapping the master key)
 *   data/<2 hex>/<id>      packs (blobs; fanned out so no directory grows past a few thousand files)
 *   index/<id>             index objects
 *   snapshots/<id>         sealed Snapshot JSON
 *   locks/<id>             sealed lock records
 *   checkpoints/<id>       sealed backup checkpoints
 */

export const CONFIG_KEY = 'config';

/** Kinds of sealed JSON objects the repository stores under `<kind>/<id>`. */
export type JsonKind = 'snapshots' | 'checkpoints' | 'locks';

export function packKey(packId: string): string {
  return `data/${packId.slice(0, 2)}/${packId}`;
}

export function objectKey(kind: JsonKind | 'keys' | 'index', id: string): string {
  return `${kind}/${id}`;
}

/** The id at the end of a key, if it is a well-formed one (64 lowercase hex). */
export function idOfKey(key: string): string | undefined {
  const id = key.slice(key.lastIndexOf('/') + 1);
  return /^[0-9a-f]{64}$/.test(id) ? id : undefined;
}
