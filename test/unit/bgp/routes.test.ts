import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatPrefix, parsePrefix } from '../../../announcers/bgp/codec/prefix.js';
import { prepareRoutes } from '../../../announcers/bgp/routes.js';

/** What prepareRoutes must produce for one prefix, from the general parser. */
function expected(text: string): { key: string; length: number; ipv4: number } | 'error' {
  try {
    const p = parsePrefix(text);
    const a = p.addr;
    const ipv4 =
      p.family === 'ipv4-unicast' ? ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0 : 0;
    return { key: formatPrefix(p), length: p.length, ipv4 };
  } catch {
    return 'error';
  }
}

describe('prepareRoutes', { timeout: 60_000 }, () => {
  it('its allocation-free IPv4 scanner agrees with parsePrefix on any input', () => {
    const alphabet = fc.constantFrom(...'0123456789./'.split(''));
    const octet = fc.oneof(
      fc.integer({ min: 0, max: 255 }).map(String),
      fc.constantFrom('00', '01', '256', '999', ''),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: alphabet, maxLength: 20 }),
          fc
            .tuple(
              fc.array(octet, { minLength: 3, maxLength: 5 }),
              fc.option(
                fc.oneof(fc.integer({ min: 0, max: 40 }).map(String), fc.constantFrom('', '08', '/')),
              ),
            )
            .map(([parts, length]) => parts.join('.') + (length === null ? '' : `/${length}`)),
        ),
        (text) => {
          const want = expected(text);
          if (want === 'error') {
            expect(() => prepareRoutes([{ prefix: text }])).toThrow(/routes\[0\]\.prefix/);
          } else {
            expect(prepareRoutes([{ prefix: text }])).toMatchObject([{ family: 'ipv4-unicast', ...want }]);
          }
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('keeps the last entry of a prefix listed twice and shares attribute sets', () => {
    const routes = prepareRoutes([
      { prefix: '10.0.0.1', communities: ['1:1'] },
      { prefix: '10.0.0.1/32', communities: ['no-export'] },
      { prefix: '2001:DB8::1', communities: ['no-export'] },
    ]);
    expect(routes.map((r) => [r.key, r.communities])).toEqual([
      ['10.0.0.1/32', [0xffffff01]],
      ['2001:db8::1/128', [0xffffff01]],
    ]);
    expect(routes[0]!.communities).toBe(routes[1]!.communities);
    expect(routes[0]!.groupKey).not.toBe(routes[1]!.groupKey);
  });
});
