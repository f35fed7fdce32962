import { describe, expect, it } from 'vitest';
import { MemoryStore } from './memory-store.js';

describe('MemoryStore', () => {
  it('never shares memory with callers (Buffer inputs, whole and ranged reads)', async () => {
    const store = new MemoryStore();
    const input = Buffer.from('hello world');
    await store.put('k', input);
    input.fill(0);
    const whole = await store.get('k');
    whole.fill(1);
    const part = await store.get('k', { offset: 6, length: 5 });
    part.fill(2);
    expect(Buffer.from(await store.get('k')).toString()).toBe('hello world');
  });
});
