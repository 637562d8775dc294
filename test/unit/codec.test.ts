import { describe, expect, it } from 'vitest';
import { be16, be32, bytes, type Codec, encode, struct, u8, u16, u32, u64 } from '../../bpf/codec.js';

function hex(buf: Buffer): string {
  return buf.toString('hex');
}

describe('struct layout follows C rules', () => {
  it('aligns each field naturally and pads the tail to the largest alignment', () => {
    // struct mixed { __u8 a; __u32 b; __u16 c; };  -> a@0, pad 3, b@4, c@8, pad 2 = 12
    const s = struct<{ a: number; b: number; c: number }>('mixed', { a: u8, b: u32, c: u16 });
    expect(s.fields).toEqual([
      { name: 'a', offset: 0, size: 1, cType: '__u8' },
      { name: 'b', offset: 4, size: 4, cType: '__u32' },
      { name: 'c', offset: 8, size: 2, cType: '__u16' },
    ]);
    expect(s.size).toBe(12);
    expect(s.align).toBe(4);
    expect(s.cType).toBe('struct mixed');
  });

  it('gives a struct with a __u64 alignment 8 and tail padding', () => {
    // struct counter { __u64 packets; __u32 flags; };  -> 8 + 4 + 4 padding = 16
    const s = struct<{ packets: bigint; flags: number }>('counter', { packets: u64, flags: u32 });
    expect(s.fields.map((f) => f.offset)).toEqual([0, 8]);
    expect(s.align).toBe(8);
    expect(s.size).toBe(16);
  });

  it('pads before a __u64 that follows a smaller field', () => {
    // struct k { __u32 a; __u64 b; __u8 c; };  -> a@0, b@8, c@16, size 24
    const s = struct<{ a: number; b: bigint; c: number }>('k', { a: u32, b: u64, c: u8 });
    expect(s.fields.map((f) => f.offset)).toEqual([0, 8, 16]);
    expect(s.size).toBe(24);
    expect(s.align).toBe(8);
  });

  it('packs byte-aligned fields without padding', () => {
    // struct lpm { __u8 prefix; __u8 addr[16]; };  -> 17 bytes, align 1
    const s = struct<{ prefix: number; addr: Uint8Array }>('lpm', { prefix: u8, addr: bytes(16) });
    expect(s.fields).toEqual([
      { name: 'prefix', offset: 0, size: 1, cType: '__u8' },
      { name: 'addr', offset: 1, size: 16, cType: '__u8[16]' },
    ]);
    expect(s.size).toBe(17);
    expect(s.align).toBe(1);
  });

  it('aligns a nested struct by its own alignment', () => {
    const inner = struct<{ port: number; addr: number }>('inner', { port: be16, addr: be32 });
    expect(inner.size).toBe(8);
    expect(inner.align).toBe(4);
    const outer = struct<{ proto: number; inner: { port: number; addr: number } }>('outer', {
      proto: u8,
      inner,
    });
    expect(outer.fields).toEqual([
      { name: 'proto', offset: 0, size: 1, cType: '__u8' },
      { name: 'inner', offset: 4, size: 8, cType: 'struct inner' },
    ]);
    expect(outer.size).toBe(12);
    expect(outer.align).toBe(4);
  });

  it('reports primitive sizes, alignments and C types', () => {
    const table: [Codec<unknown>, string, number][] = [
      [u8, '__u8', 1],
      [u16, '__u16', 2],
      [u32, '__u32', 4],
      [u64, '__u64', 8],
      [be16, '__be16', 2],
      [be32, '__be32', 4],
    ];
    for (const [codec, cType, size] of table) {
      expect({ cType: codec.cType, size: codec.size, align: codec.align }).toEqual({
        cType,
        size,
        align: size,
      });
    }
    expect({ cType: bytes(6).cType, size: bytes(6).size, align: bytes(6).align }).toEqual({
      cType: '__u8[6]',
      size: 6,
      align: 1,
    });
  });
});

describe('primitive byte order', () => {
  it('writes host (little-endian) numbers least significant byte first', () => {
    expect(hex(encode(u8, 0xab))).toBe('ab');
    expect(hex(encode(u16, 0x1234))).toBe('3412');
    expect(hex(encode(u32, 0x12345678))).toBe('78563412');
    expect(hex(encode(u64, 0x0102030405060708n))).toBe('0807060504030201');
  });

  it('writes network-order numbers most significant byte first', () => {
    expect(hex(encode(be16, 0x1234))).toBe('1234');
    expect(hex(encode(be32, 0x12345678))).toBe('12345678');
    // Port 443 and 10.0.0.1 as they appear in a packet.
    expect(hex(encode(be16, 443))).toBe('01bb');
    expect(hex(encode(be32, 0x0a000001))).toBe('0a000001');
  });

  it('decodes the bytes it was given, in the right order', () => {
    expect(u16.decode(Buffer.from('3412', 'hex'), 0)).toBe(0x1234);
    expect(be16.decode(Buffer.from('3412', 'hex'), 0)).toBe(0x3412);
    expect(u32.decode(Buffer.from('78563412', 'hex'), 0)).toBe(0x12345678);
    expect(be32.decode(Buffer.from('78563412', 'hex'), 0)).toBe(0x78563412);
    expect(u64.decode(Buffer.from('0807060504030201', 'hex'), 0)).toBe(0x0102030405060708n);
  });

  it('round trips every primitive at its limits and at an offset', () => {
    const cases: [Codec<number>, number[]][] = [
      [u8, [0, 1, 0x7f, 0xff]],
      [u16, [0, 1, 0x1234, 0xffff]],
      [u32, [0, 1, 0x12345678, 0xffffffff]],
      [be16, [0, 1, 0x1234, 0xffff]],
      [be32, [0, 1, 0x12345678, 0xffffffff]],
    ];
    for (const [codec, values] of cases) {
      for (const value of values) {
        const buf = Buffer.alloc(codec.size + 3, 0xee);
        codec.encode(value, buf, 3);
        expect(buf.subarray(0, 3)).toEqual(Buffer.from([0xee, 0xee, 0xee]));
        expect(codec.decode(buf, 3)).toBe(value);
      }
    }
    for (const value of [0n, 1n, 0x0102030405060708n, 0xffffffffffffffffn]) {
      const buf = Buffer.alloc(11);
      u64.encode(value, buf, 3);
      expect(u64.decode(buf, 3)).toBe(value);
    }
  });

  it('rejects values that do not fit the field', () => {
    expect(() => encode(u8, 256)).toThrow(RangeError);
    expect(() => encode(u16, 0x10000)).toThrow(RangeError);
    expect(() => encode(u32, -1)).toThrow(RangeError);
    expect(() => encode(be16, 0x10000)).toThrow(RangeError);
    expect(() => encode(u64, 1n << 64n)).toThrow(RangeError);
  });
});

describe('bytes(n)', () => {
  it('round trips exactly n bytes', () => {
    const mac = bytes(6);
    const value = Uint8Array.from([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
    const buf = encode(mac, value);
    expect(hex(buf)).toBe('02005e100001');
    expect(mac.decode(buf, 0)).toEqual(value);
  });

  it('rejects a value of the wrong length', () => {
    const mac = bytes(6);
    expect(() => encode(mac, new Uint8Array(5))).toThrow(new RangeError('expected 6 bytes, got 5'));
    expect(() => encode(mac, new Uint8Array(7))).toThrow(new RangeError('expected 6 bytes, got 7'));
    expect(() => encode(bytes(16), new Uint8Array(0))).toThrow(new RangeError('expected 16 bytes, got 0'));
  });

  it('decodes a copy that later writes to the buffer do not change', () => {
    const buf = Buffer.from('0102030405', 'hex');
    const decoded = bytes(4).decode(buf, 1);
    buf.fill(0);
    expect(Array.from(decoded)).toEqual([2, 3, 4, 5]);
  });
});

describe('struct encode/decode', () => {
  interface Mixed {
    a: number;
    b: number;
    c: number;
  }
  const mixed = struct<Mixed>('mixed', { a: u8, b: u32, c: u16 });

  it('round trips a struct of every kind of field', () => {
    interface All {
      a: number;
      b: number;
      c: number;
      d: bigint;
      e: number;
      f: number;
      g: Uint8Array;
    }
    const all = struct<All>('all', { a: u8, b: u16, c: u32, d: u64, e: be16, f: be32, g: bytes(3) });
    const value: All = {
      a: 0xfe,
      b: 0xbeef,
      c: 0xdeadbeef,
      d: 0xfedcba9876543210n,
      e: 8080,
      f: 0xc0a80001,
      g: Uint8Array.from([1, 2, 3]),
    };
    const buf = encode(all, value);
    expect(buf.length).toBe(all.size);
    expect(all.decode(buf, 0)).toEqual(value);
  });

  it('places each field at its offset with its own byte order', () => {
    const s = struct<{ port: number; proto: number; addr: number }>('k', {
      port: be16,
      proto: u8,
      addr: u32,
    });
    // port@0 (be16), proto@2, pad@3, addr@4 (le32)
    expect(hex(encode(s, { port: 0x0050, proto: 6, addr: 0x0a000001 }))).toBe('00500600' + '0100000a');
  });

  it('zeroes padding even when the buffer held garbage', () => {
    const buf = Buffer.alloc(2 + mixed.size + 2, 0xff);
    mixed.encode({ a: 0x11, b: 0x22334455, c: 0x6677 }, buf, 2);
    // Bytes outside the struct are untouched.
    expect(hex(buf.subarray(0, 2))).toBe('ffff');
    expect(hex(buf.subarray(2 + mixed.size))).toBe('ffff');
    // a, 3 zero padding bytes, b (LE), c (LE), 2 zero tail padding bytes.
    expect(hex(buf.subarray(2, 2 + mixed.size))).toBe('11000000' + '55443322' + '7766' + '0000');
    expect(mixed.decode(buf, 2)).toEqual({ a: 0x11, b: 0x22334455, c: 0x6677 });
  });

  it('zeroes padding inside nested structs too', () => {
    const outer = struct<{ proto: number; inner: Mixed }>('outer', { proto: u8, inner: mixed });
    expect(outer.size).toBe(16);
    const buf = Buffer.alloc(outer.size, 0xaa);
    outer.encode({ proto: 1, inner: { a: 2, b: 3, c: 4 } }, buf, 0);
    expect(hex(buf)).toBe('01000000' + '02000000' + '03000000' + '04000000');
  });

  it('encode() returns a fresh buffer of exactly the codec size', () => {
    const a = encode(mixed, { a: 1, b: 2, c: 3 });
    const b = encode(mixed, { a: 1, b: 2, c: 3 });
    expect(a.length).toBe(12);
    expect(a).not.toBe(b);
    expect(a.equals(b)).toBe(true);
  });
});
