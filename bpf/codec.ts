/**
 * Fixed-layout codecs between JS values and the bytes of BPF map keys and values.
 * A struct codec lays its fields out the way a C compiler does (natural
 * alignment, tail padding), and publishes that layout so that a test can check
 * it against the BTF the C compiler emitted.
 */

export interface Codec<T> {
  readonly size: number;
  readonly align: number;
  /** The C type name, used to match against BTF. */
  readonly cType: string;
  encode(value: T, buf: Buffer, offset: number): void;
  decode(buf: Buffer, offset: number): T;
}

function primitive<T>(
  cType: string,
  size: number,
  encode: (value: T, buf: Buffer, offset: number) => void,
  decode: (buf: Buffer, offset: number) => T,
): Codec<T> {
  return { cType, size, align: size, encode, decode };
}

// Host byte order: BPF maps store numbers as the CPU does. Every target we ship
// (amd64, arm64) is little-endian.
export const u8 = primitive<number>(
  '__u8',
  1,
  (v, b, o) => b.writeUInt8(v, o),
  (b, o) => b.readUInt8(o),
);
export const u16 = primitive<number>(
  '__u16',
  2,
  (v, b, o) => b.writeUInt16LE(v, o),
  (b, o) => b.readUInt16LE(o),
);
export const u32 = primitive<number>(
  '__u32',
  4,
  (v, b, o) => b.writeUInt32LE(v, o),
  (b, o) => b.readUInt32LE(o),
);
export const u64 = primitive<bigint>(
  '__u64',
  8,
  (v, b, o) => b.writeBigUInt64LE(v, o),
  (b, o) => b.readBigUInt64LE(o),
);
/** Network byte order, as packet fields are stored. */
export const be16 = primitive<number>(
  '__be16',
  2,
  (v, b, o) => b.writeUInt16BE(v, o),
  (b, o) => b.readUInt16BE(o),
);
export const be32 = primitive<number>(
  '__be32',
  4,
  (v, b, o) => b.writeUInt32BE(v, o),
  (b, o) => b.readUInt32BE(o),
);

/** A fixed-size byte array, such as an IPv6 address or a MAC (`__u8 x[n]`). */
export function bytes(length: number): Codec<Uint8Array> {
  return {
    cType: `__u8[${length}]`,
    size: length,
    align: 1,
    encode(value, buf, offset) {
      if (value.length !== length) throw new RangeError(`expected ${length} bytes, got ${value.length}`);
      buf.set(value, offset);
    },
    decode: (buf, offset) => Uint8Array.from(buf.subarray(offset, offset + length)),
  };
}

export interface FieldLayout {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly cType: string;
}

export interface StructCodec<T> extends Codec<T> {
  readonly fields: readonly FieldLayout[];
}

type FieldCodecs<T> = { [K in keyof T]: Codec<T[K]> };

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** A C struct. Field order is declaration order, as in C. */
export function struct<T extends object>(cType: string, fieldCodecs: FieldCodecs<T>): StructCodec<T> {
  const entries = Object.entries(fieldCodecs) as [keyof T & string, Codec<unknown>][];
  let offset = 0;
  let align = 1;
  const fields: FieldLayout[] = [];
  for (const [name, codec] of entries) {
    offset = alignUp(offset, codec.align);
    fields.push({ name, offset, size: codec.size, cType: codec.cType });
    offset += codec.size;
    align = Math.max(align, codec.align);
  }
  const size = alignUp(offset, align);
  // Flat per-field tables: encode and decode run once per map entry.
  const names = entries.map(([name]) => name);
  const codecs = entries.map(([, codec]) => codec);
  const offsets = fields.map((f) => f.offset);
  return {
    cType: `struct ${cType}`,
    size,
    align,
    fields,
    encode(value, buf, base) {
      // Padding must be zero: the kernel hashes whole keys, padding included.
      buf.fill(0, base, base + size);
      for (let i = 0; i < names.length; i++) codecs[i]!.encode(value[names[i]!], buf, base + offsets[i]!);
    },
    decode(buf, base) {
      const out = {} as T;
      for (let i = 0; i < names.length; i++) {
        const name = names[i]!;
        out[name] = codecs[i]!.decode(buf, base + offsets[i]!) as T[typeof name];
      }
      return out;
    },
  };
}

/** Encodes one value into a fresh buffer of the codec's size. */
export function encode<T>(codec: Codec<T>, value: T): Buffer {
  const buf = Buffer.alloc(codec.size);
  codec.encode(value, buf, 0);
  return buf;
}
