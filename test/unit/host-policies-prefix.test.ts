/**
 * host-policies/prefix.ts: the fast word-level parser must accept, reject and
 * normalize exactly like the general parser (node:net's rules), and the byte
 * conversions must match the plain byte loops they replace.
 */
import { describe, expect, it } from 'vitest';
import {
  addrOfWords,
  contains,
  fromBytes,
  parsePrefix,
  parsePrefixSlow,
  parsePrefixWords,
  toBytes,
  wordsOf,
} from '../../host-policies/prefix.js';

// ---------------------------------------------------------------------------
// Reference: the general parser (regular expressions and BigInt) the fast path falls back to

const ALL = (1n << 128n) - 1n;

function reference(text: string): string {
  try {
    const p = parsePrefixSlow(text);
    return `${p.addr}/${p.len}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

function actual(text: string): string {
  try {
    const p = parsePrefix(text);
    return `${p.addr}/${p.len}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

function actualWords(text: string): string {
  try {
    const words = new Uint32Array(4);
    const len = parsePrefixWords(text, words);
    return `${addrOfWords(words[0]!, words[1]!, words[2]!, words[3]!)}/${len}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TRICKY = [
  '',
  '/',
  '/8',
  '::',
  '::/0',
  ':::',
  ':',
  ':1',
  '1:',
  ':1::',
  '1:::2',
  '1::2::3',
  '1::',
  '::1',
  '::1/128',
  '::1/129',
  '1:2:3:4:5:6:7:8',
  '1:2:3:4:5:6:7:8/64',
  '1:2:3:4:5:6:7:8:9',
  '1:2:3:4:5:6:7::',
  '::2:3:4:5:6:7:8',
  '1:2:3:4:5:6:7:8::',
  '::1:2:3:4:5:6:7:8',
  '1:2:3:4:5:6:7',
  '12345::',
  'fFfF::AbCd/64',
  'g::',
  'fe80::1%eth0',
  'fe80::1%eth0/64',
  '::ffff:1.2.3.4',
  '::ffff:1.2.3.4/120',
  '::ffff:0:0/96',
  '::ffff:0:0/95',
  '::fffe:0:0/95',
  '64:ff9b::1.2.3.4/128',
  '0.0.0.0/0',
  '0.0.0.0',
  '1.2.3.4',
  '1.2.3.4/32',
  '1.2.3.4/33',
  '1.2.3.4/',
  '1.2.3.4/8/9',
  '1.2.3.4//8',
  '1.2.3.4/08',
  '1.2.3.4/0008',
  '1.2.3.4/00008',
  '1.2.3.4/8.0',
  '1.2.3.4/0x8',
  '1.2.3.4/-1',
  '1.2.3.4/+8',
  '1.2.3.4/ 8',
  '1.2.3.4/8 ',
  ' 1.2.3.4',
  '01.2.3.4',
  '1.2.3.04',
  '1.2.3.256',
  '255.255.255.255/32',
  '255.255.255.255/1',
  '1.2.3',
  '1.2.3.',
  '1.2.3.4.5',
  '1..3.4',
  '1.2.3.4:80',
  '10.0.0.0/8',
  '2001:db8::/32',
  '2001:db8::/129',
  '2001:db8::/-0',
  'fd00:64:1:2::/64',
  'fd00:128::1:2/128',
];

describe('parsePrefix and parsePrefixWords', () => {
  it('agree with the general parser on tricky spellings', () => {
    for (const text of TRICKY) {
      expect([text, actual(text)]).toEqual([text, reference(text)]);
      expect([text, actualWords(text)]).toEqual([text, reference(text)]);
    }
  });

  it('agree with the general parser on random strings and random addresses', () => {
    const random = mulberry32(0x9e3779b9);
    const int = (n: number) => Math.floor(random() * n);
    const pieces = ['0', '1', '9', '25', '255', '256', '00', 'f', 'F', 'ffff', 'abcde', ':', '::', '.', '/'];
    const texts: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      let text = '';
      for (let j = int(8) + 1; j > 0; j--) text += pieces[int(pieces.length)];
      texts.push(text);
    }
    for (let i = 0; i < 10_000; i++) {
      if (random() < 0.5) {
        texts.push(`${int(256)}.${int(256)}.${int(256)}.${int(256)}${random() < 0.7 ? `/${int(34)}` : ''}`);
        continue;
      }
      const groups = Array.from({ length: 8 }, () => (random() < 0.4 ? '0' : int(0x10000).toString(16)));
      let text = groups.join(':');
      if (random() < 0.6) {
        const start = int(8);
        const end = start + int(8 - start);
        text = `${groups.slice(0, start).join(':')}::${groups.slice(end + 1).join(':')}`;
      }
      texts.push(random() < 0.7 ? `${text}/${int(130)}` : text);
    }
    const mismatches = texts.filter((t) => actual(t) !== reference(t) || actualWords(t) !== reference(t));
    expect(mismatches.map((t) => [t, actual(t), reference(t)])).toEqual([]);
  });

  it('clears host bits in every word', () => {
    expect(parsePrefix('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/33')).toEqual({
      addr: 0xffffffff8000n << 80n,
      len: 33,
    });
    expect(parsePrefix('10.255.255.255/9')).toEqual({ addr: (0xffffn << 32n) | 0x0a800000n, len: 105 });
    const words = [1, 2, 3, 4];
    expect(parsePrefixWords('fd00:1:2:3:4:5:6:7/80', words)).toBe(80);
    expect(words).toEqual([0xfd000001, 0x00020003, 0x00040000, 0]);
  });
});

describe('word and byte forms', () => {
  const values = [
    0n,
    1n,
    0xffffn << 32n,
    (0xffffn << 32n) | 0xc0a80101n,
    (1n << 53n) - 1n,
    1n << 53n,
    0xfd00n << 112n,
    ALL,
    0x0123456789abcdef_fedcba9876543210n,
  ];

  it('addrOfWords and wordsOf are inverses', () => {
    for (const v of values) {
      const words = [0, 0, 0, 0];
      wordsOf(v, words);
      expect(addrOfWords(words[0]!, words[1]!, words[2]!, words[3]!)).toBe(v);
    }
  });

  it('toBytes and fromBytes match the byte loops', () => {
    const loopBytes = (addr: bigint) => {
      const out = new Uint8Array(16);
      for (let i = 15; i >= 0; i--) {
        out[i] = Number(addr & 0xffn);
        addr >>= 8n;
      }
      return out;
    };
    for (const v of [...values, -1n, -5n, (1n << 130n) | 7n]) {
      expect(toBytes(v)).toEqual(loopBytes(v));
      expect(toBytes({ addr: v, len: 128 })).toEqual(loopBytes(v));
    }
    for (const v of values) expect(fromBytes(toBytes(v))).toBe(v);
    expect(fromBytes(Uint8Array.from([1, 2, 3]))).toBe(0x010203n);
    const inside = new Uint8Array(20);
    inside.set(toBytes(ALL - 1n), 2);
    expect(fromBytes(inside.subarray(2, 18))).toBe(ALL - 1n);
  });

  it('contains', () => {
    expect(contains(parsePrefix('10.0.0.0/8'), parsePrefix('10.1.2.3'))).toBe(true);
    expect(contains(parsePrefix('10.0.0.0/8'), parsePrefix('11.1.2.3'))).toBe(false);
    expect(contains(parsePrefix('::/0'), parsePrefix('10.1.2.3'))).toBe(true);
    expect(contains(parsePrefix('10.1.2.3'), parsePrefix('10.0.0.0/8'))).toBe(false);
  });
});
