import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CLUSTER_READS, Derived, ReconcilePass, slicesMoved } from '../../daemon/reconcile.js';
import { sameProjection } from '../../daemon/sources/kubernetes/same-projection.js';

type Slice = 'a' | 'b' | 'c';
const v = (a: number, b: number, c: number) => ({ a, b, c });

describe('slicesMoved', () => {
  it('is true before the first plan, then only when a slice that is read moved', () => {
    expect(slicesMoved<Slice>(['a'], undefined, v(0, 0, 0))).toBe(true);
    expect(slicesMoved<Slice>(['a', 'b'], v(1, 1, 1), v(1, 1, 9))).toBe(false);
    expect(slicesMoved<Slice>(['a', 'b'], v(1, 1, 1), v(1, 2, 1))).toBe(true);
    expect(slicesMoved<Slice>([], v(1, 1, 1), v(2, 2, 2))).toBe(false);
  });

  it('agrees with comparing the read slices one by one', () => {
    const versions = fc.record({ a: fc.nat(3), b: fc.nat(3), c: fc.nat(3) });
    fc.assert(
      fc.property(fc.subarray<Slice>(['a', 'b', 'c']), versions, versions, (reads, last, now) => {
        expect(slicesMoved(reads, last, now)).toBe(reads.some((s) => last[s] !== now[s]));
      }),
    );
  });
});

describe('ReconcilePass', () => {
  function pass(ready: Record<string, boolean> = {}) {
    const calls: string[] = [];
    const consumer = (name: string, reads: Slice[]) => ({
      name,
      reads,
      replan: () => {
        calls.push(name);
        return ready[name] ?? true;
      },
    });
    const p = new ReconcilePass<Slice>([consumer('first', ['a']), consumer('second', ['a', 'b'])]);
    return { p, calls };
  }

  it('runs every consumer once, in order, then only those whose slices moved', () => {
    const { p, calls } = pass();
    expect(p.run(v(1, 1, 1))).toEqual(['first', 'second']);
    expect(p.run(v(1, 1, 5))).toEqual([]);
    expect(p.run(v(1, 2, 5))).toEqual(['second']);
    expect(p.run(v(2, 2, 5))).toEqual(['first', 'second']);
    expect(calls).toEqual(['first', 'second', 'second', 'first', 'second']);
    expect(p.stats()).toEqual([
      { name: 'first', replans: 2, skips: 2 },
      { name: 'second', replans: 3, skips: 1 },
    ]);
  });

  it('retries a consumer that could not use its input, even when nothing moved', () => {
    const ready = { second: false };
    const { p, calls } = pass(ready);
    p.run(v(1, 1, 1));
    p.run(v(1, 1, 1));
    ready.second = true;
    p.run(v(1, 1, 1));
    p.run(v(1, 1, 1));
    expect(calls).toEqual(['first', 'second', 'second', 'second']);
  });

  it('does not record a consumer that threw: the next pass plans it again', () => {
    let fail = true;
    const p = new ReconcilePass<Slice>([
      {
        name: 'x',
        reads: ['a'],
        replan: () => {
          if (fail) throw new Error('boom');
          return true;
        },
      },
    ]);
    expect(() => p.run(v(1, 1, 1))).toThrow('boom');
    fail = false;
    expect(p.run(v(1, 1, 1))).toEqual(['x']);
    expect(p.run(v(1, 1, 1))).toEqual([]);
  });
});

describe('CLUSTER_READS', () => {
  it('keeps heartbeat renewals away from every planner, and pod changes to the firewall', () => {
    for (const reads of Object.values(CLUSTER_READS)) {
      expect(reads).not.toContain('heartbeats');
      expect(new Set(reads).size).toBe(reads.length);
    }
    expect(Object.keys(CLUSTER_READS)).toEqual(['services', 'bgp', 'firewall', 'l2']);
    const readers = (slice: string) =>
      Object.entries(CLUSTER_READS)
        .filter(([, reads]) => (reads as readonly string[]).includes(slice))
        .map(([name]) => name);
    expect(readers('pods')).toEqual(['firewall']);
    expect(readers('hostPolicies')).toEqual(['firewall']);
    expect(readers('live')).toEqual(['l2']);
    expect(readers('config')).toEqual(['services', 'bgp', 'firewall', 'l2']);
  });
});

describe('Derived', () => {
  it('recomputes only when a slice it reads moved', () => {
    let computed = 0;
    const d = new Derived<number, Slice>(['a'], () => ++computed);
    expect(d.get(v(1, 1, 1))).toBe(1);
    expect(d.get(v(1, 7, 7))).toBe(1);
    expect(d.get(v(2, 7, 7))).toBe(2);
  });
});

describe('sameProjection', () => {
  it('compares plain data by value', () => {
    expect(sameProjection({ a: [1, { b: 'x' }], c: undefined }, { a: [1, { b: 'x' }], c: undefined })).toBe(
      true,
    );
    expect(sameProjection({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(sameProjection({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(sameProjection(new Map([['k', [1]]]), new Map([['k', [1]]]))).toBe(true);
    expect(sameProjection(new Map([['k', [1]]]), new Map([['k', [2]]]))).toBe(false);
    expect(sameProjection(new Set(['x']), new Set(['x']))).toBe(true);
    expect(sameProjection(new Set(['x']), new Set(['y']))).toBe(false);
    expect(sameProjection([1], { 0: 1, length: 1 })).toBe(false);
    expect(sameProjection(undefined, {})).toBe(false);
    expect(sameProjection(Number.NaN, Number.NaN)).toBe(true);
  });

  it('counts anything but plain data as changed unless it is the same object', () => {
    class Box {
      constructor(readonly x: number) {}
    }
    const box = new Box(1);
    expect(sameProjection(box, box)).toBe(true);
    expect(sameProjection(new Box(1), new Box(1))).toBe(false);
  });

  it('holds a copy the same, and is symmetric', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        expect(sameProjection(a, structuredClone(a))).toBe(true);
        expect(sameProjection(a, b)).toBe(sameProjection(b, a));
      }),
    );
  });
});
