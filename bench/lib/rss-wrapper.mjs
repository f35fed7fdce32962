// Runs a Node script and records its peak RSS: node rss-wrapper.mjs OUT.json script.js args...
// (process.resourceUsage().maxRSS is the whole process's high-water mark, in KiB.)
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [out, script, ...rest] = process.argv.slice(2);
process.argv = [process.argv[0], script, ...rest];
process.on('exit', () => writeFileSync(out, JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS })));
await import(pathToFileURL(script).href);
