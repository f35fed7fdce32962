// Loaded into a measured command by NODE_OPTIONS=--import (see measure.mjs): at exit, writes the
// process's peak RSS and CPU time to $MAILARK_BENCH_USAGE_OUT. process.resourceUsage().maxRSS is the whole
// process's high-water mark, in KiB; the CPU times count every thread of the process: main, workers
// and the libuv pool. Workers load this hook too; only the main thread writes.
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const out = process.env.MAILARK_BENCH_USAGE_OUT;
if (isMainThread && out !== undefined) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    writeFileSync(
      out,
      JSON.stringify({ maxRssKiB: u.maxRSS, cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000 }),
    );
  });
}
