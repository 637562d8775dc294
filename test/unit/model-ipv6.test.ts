import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scanIPv6Groups } from '../../model/ipv6.js';

const scan = (text: string, quad?: boolean) => {
  const out = [9, 9, 9, 9, 9, 9, 9, 9];
  const ok = scanIPv6Groups(text, text.length, out, quad ? () => 0x0a000001 : undefined);
  return ok ? out : undefined;
};

describe('scanIPv6Groups', () => {
  it('expands "::" to zero groups wherever it stands', () => {
    expect(scan('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(scan('2001:db8::1')).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    expect(scan('1::')).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(scan('::FFFF:1')).toEqual([0, 0, 0, 0, 0, 0, 0xffff, 1]);
    expect(scan('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('rejects malformed text', () => {
    for (const bad of [
      '',
      ':',
      ':1::',
      '1:',
      '1::2::3',
      '12345::',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8:9',
      'g::',
      '::1%eth0',
    ])
      expect(scan(bad), bad).toBeUndefined();
  });

  it('takes a trailing dotted quad only when given its parser', () => {
    expect(scan('::ffff:10.0.0.1')).toBeUndefined();
    expect(scan('::ffff:10.0.0.1', true)).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0a00, 1]);
    expect(scan('1:2:3:4:5:6:7:10.0.0.1', true)).toBeUndefined();
  });

  it('accepts exactly what node:net calls IPv6, for text without a dotted quad or zone', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.ipV6().filter((t) => !t.includes('.')),
          fc.stringMatching(/^[0-9a-fA-F:]{0,20}$/),
        ),
        (text) => {
          expect(scan(text) !== undefined).toBe(isIPv6(text));
        },
      ),
      { numRuns: 5000 },
    );
  });
});
