/**
 * How far V8 lets the heap grow between two full collections, for the mailark processes.
 *
 * After each mark-compact V8 sets the next old-generation limit to the live size times a factor it
 * picks from its GC speed, up to 4x on a fast machine. A backup's live heap is small (~25 MiB on the
 * 2 GB bench) but it promotes much short-lived data (messages in flight, their promises and Buffer
 * handles whose bytes wait outside the heap until the handle is collected), so the default let old
 * space reach ~55-70 MiB and the dead Buffers pile up with it. A factor of 2 (100 % growth) bounds
 * both. 2 GB initial backup, measured in one session, same build: peak RSS 297-306 MiB -> 249-255 MiB
 * (222-226 MiB with the glibc setting bin/mailark.js also makes); 49 mark-compacts instead of 10,
 * +1 s of mark-compact time on a ~40 CPU-second run, with fewer scavenges in exchange. 50 % growth
 * went further (237 MiB) but cost 183 mark-compacts, 6.5 s: not worth it.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 100;

/**
 * Sets V8's heap growth to HEAP_GROWING_PERCENT for this process (all its threads), unless the user
 * chose a value (in the node command line or NODE_OPTIONS): theirs wins. Returns whether it set it.
 * Call once, first thing in an entry point, before any code cache is used: V8 refuses cached code made
 * under other flags, so bin/mailark.js calls it before the bundle is compiled (test/cli-foundation).
 */
export function limitHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): boolean {
  if ([...execArgv, nodeOptions].some((a) => /heap[-_]growing[-_]percent/.test(a))) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
