/**
 * How far V8 lets the heap grow between two full collections, for the mailark processes.
 *
 * After each mark-compact V8 sets the next old-generation limit to the live size times a factor it
 * picks from its GC speed, up to 4x on a fast machine. A backup's live heap is small (~25 MiB on the
 * 2 GB bench) but it promotes much short-lived data (messages in flight, their promises and Buffer
 * handles whose bytes wait outside the heap until the handle is collected), so the default let old
 * space reach ~55-70 MiB and the dead Buffers pile up with it. A growth of 150 % bounds both.
 * 2 GB initial backup, alternating runs of one session (with bin/mailark.js's glibc setting):
 *   growth   peak RSS          user CPU
 *   default  296-301 MiB       37.6-39.8 s
 *   200 %    250-259 MiB       37.5-38.4 s
 *   150 %    232-236 MiB       38.0-40.4 s
 *   100 %    220-229 MiB       39.7-42.7 s  (49 mark-compacts instead of 10; +8 % CPU at 500 MB)
 *    50 %    237 MiB           183 mark-compacts, 6.5 s of them
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 150;

/**
 * Sets V8's heap growth to HEAP_GROWING_PERCENT for this process (all its threads), unless the node
 * command line chose one (`node --heap-growing-percent=N bin/mailark.js`: theirs wins; Node refuses V8
 * flags in NODE_OPTIONS). Returns whether it set it. Call once, first thing in an entry point, before
 * any code cache is used: V8 refuses cached code made under other flags, so the bins (bin/mailark.js,
 * bin/mailark-agent.js) call it before their code loads (test/cli-foundation).
 */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
