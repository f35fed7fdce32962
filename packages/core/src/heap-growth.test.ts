import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, limitHeapGrowth } from './heap-growth.js';

/**
 * Full collections a child node makes while it keeps ~8 MiB live and churns through ~1.6 GiB of
 * objects that live long enough to be promoted (so only mark-compacts free them).
 */
function markCompacts(setup: string): number {
  const program = `${setup}
    const live = [];
    for (let i = 0; i < 2000; i++) live.push(new Array(512).fill(i));
    let ring = new Array(4096);
    for (let i = 0; i < 400000; i++) ring[i % 4096] = new Array(512).fill(i);`;
  const out = execFileSync(process.execPath, ['--trace-gc', '-e', program], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes('Mark-Compact')).length;
}

describe('limitHeapGrowth', () => {
  it("leaves a heap growth chosen on node's command line alone", () => {
    expect(limitHeapGrowth(['--heap-growing-percent=300'])).toBe(false);
    expect(limitHeapGrowth(['--max-old-space-size=512', '--heap_growing_percent=50'])).toBe(false);
  });

  it('makes V8 collect the old generation more often than its default growth does, set at run time', () => {
    // What limitHeapGrowth does, in a child: the flag works after V8 started (no node argument).
    const setup = `require('node:v8').setFlagsFromString('--heap-growing-percent=${HEAP_GROWING_PERCENT}');`;
    const limited = markCompacts(setup);
    const byDefault = markCompacts('');
    // The same allocations: a third more full collections at least once growth is bounded (measured
    // 23 against 12-13).
    expect(limited).toBeGreaterThanOrEqual(Math.ceil(byDefault * 1.33));
    expect(limitHeapGrowth(['--max-old-space-size=512'])).toBe(true);
  });
});
