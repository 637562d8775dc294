import { describe, expect, it } from 'vitest';
import { MAGLEV_SIZE, maglevTable } from '../../services/maglev.js';

const nodes = (n: number) => Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 255}`);

/** Backend name per slot. */
const owners = (t: ReturnType<typeof maglevTable>) => Array.from(t.table, (i) => t.backends[i]!);

describe('maglevTable', () => {
  it('uses a prime size of at least 16381 and refuses a size that is not prime', () => {
    expect(MAGLEV_SIZE).toBeGreaterThanOrEqual(16381);
    expect(maglevTable(nodes(3)).table).toHaveLength(MAGLEV_SIZE);
    expect(() => maglevTable(nodes(3), 16384)).toThrow(/must be a prime/);
  });

  it('gives every backend an almost equal share of the slots', () => {
    for (const n of [1, 2, 3, 7, 50]) {
      const counts = new Map<string, number>();
      for (const owner of owners(maglevTable(nodes(n)))) counts.set(owner, (counts.get(owner) ?? 0) + 1);
      expect(counts.size).toBe(n);
      const values = [...counts.values()];
      // Round-robin filling: shares differ by at most one slot.
      expect(Math.max(...values) - Math.min(...values)).toBeLessThanOrEqual(1);
    }
  });

  it('does not depend on the order or duplicates of its input', () => {
    const a = maglevTable(['10.0.0.3', '10.0.0.1', '10.0.0.2']);
    const b = maglevTable(['10.0.0.2', '10.0.0.3', '10.0.0.1', '10.0.0.2']);
    expect(owners(a)).toEqual(owners(b));
  });

  it('moves only the removed backend’s slots, plus a few, when a backend goes', () => {
    for (const n of [2, 5, 10, 40]) {
      const before = owners(maglevTable(nodes(n)));
      const removed = nodes(n)[Math.floor(n / 2)]!;
      const after = owners(maglevTable(nodes(n).filter((b) => b !== removed)));
      let moved = 0;
      let movedOfOthers = 0;
      for (let slot = 0; slot < MAGLEV_SIZE; slot++) {
        if (before[slot] === after[slot]) continue;
        moved++;
        if (before[slot] !== removed) movedOfOthers++;
      }
      expect(after).not.toContain(removed);
      const share = MAGLEV_SIZE / n;
      // Every slot of the removed backend moves; of the others' slots only a small fraction does.
      expect(moved - movedOfOthers).toBeGreaterThanOrEqual(Math.floor(share));
      expect(movedOfOthers / (MAGLEV_SIZE - share)).toBeLessThan(0.06);
    }
  });

  it('changes few slots when a backend is added', () => {
    const before = owners(maglevTable(nodes(10)));
    const after = owners(maglevTable(nodes(11)));
    const added = nodes(11)[10]!;
    let movedToOthers = 0;
    for (let slot = 0; slot < MAGLEV_SIZE; slot++)
      if (before[slot] !== after[slot] && after[slot] !== added) movedToOthers++;
    expect(movedToOthers / MAGLEV_SIZE).toBeLessThan(0.06);
  });

  it('is empty without backends', () => {
    expect(maglevTable([])).toEqual({ backends: [], table: new Uint16Array(0) });
  });
});
