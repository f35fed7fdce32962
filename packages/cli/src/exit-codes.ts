/**
 * The exit codes, as operators' scripts know them from restic, and the epilogue that ends every
 * command's --help. The mapping from error to code is core's exitCodeFor; this file only documents it.
 */
import { EXIT } from '@mailark/core';

/** Code → description; null removes a code from the defaults for a command where it cannot occur. */
export type ExitCodeDocs = Readonly<Record<number, string | null>>;

/** What most commands that open a repository can return. */
export const DEFAULT_EXIT_CODES: ExitCodeDocs = {
  [EXIT.OK]: 'success',
  [EXIT.FAILURE]: 'failure (the message says what and why)',
  [EXIT.USAGE]: 'usage error: unknown command or option, bad value, missing repository or password',
  [EXIT.NO_REPOSITORY]: 'no repository at that location',
  [EXIT.LOCKED]: 'the repository is locked by another process',
  [EXIT.WRONG_PASSWORD]: 'wrong password',
  [EXIT.INTERRUPTED]: 'interrupted (SIGINT or SIGTERM)',
};

/** The epilogue text: the default codes with the command's changes, ascending. */
export function exitCodeEpilogue(changes: ExitCodeDocs = {}): string {
  const merged = new Map<number, string>();
  for (const [code, text] of Object.entries({ ...DEFAULT_EXIT_CODES, ...changes })) {
    if (text !== null) merged.set(Number(code), text);
  }
  const lines = [...merged.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([c, t]) => `  ${String(c).padEnd(4)} ${t}`);
  return ['Exit codes:', ...lines].join('\n');
}
