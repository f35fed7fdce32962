// Runs a Node script and records its peak RSS: node rss-wrapper.mjs OUT.json script.js args...
// (process.resourceUsage().maxRSS is the whole process's high-water mark, in KiB; the CPU times count
// every thread of the process: main, workers and the libuv pool.)
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [out, script, ...rest] = process.argv.slice(2);
process.argv = [process.argv[0], script, ...rest];
process.on('exit', () => {
  const u = process.resourceUsage();
  writeFileSync(
    out,
    JSON.stringify({ maxRssKiB: u.maxRSS, cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000 }),
  );
});
await import(pathToFileURL(script).href);
