/**
 * Test support: runs the CLI in-process with captured stdout/stderr (not a test file itself).
 */
import type { MailarkCommand } from '../command.js';
import { runCli } from '../main.js';
import type { Env } from '../password.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Env;
  signal?: AbortSignal;
  commands?: readonly MailarkCommand[];
  tty?: boolean;
  interruptGraceMs?: number;
}

export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s), isTTY: opts.tty ?? false, columns: 80 },
    env: opts.env ?? {},
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    ...(opts.commands === undefined ? {} : { commands: opts.commands }),
    ...(opts.interruptGraceMs === undefined ? {} : { interruptGraceMs: opts.interruptGraceMs }),
  });
  return { code, stdout, stderr };
}
