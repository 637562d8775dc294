/** Raw message builders for tests that need bytes the encoder would never produce. */

export function header(length: number, type: number): number[] {
  return [...new Array<number>(16).fill(0xff), length >> 8, length & 0xff, type];
}

export function message(type: number, body: number[]): Buffer {
  return Buffer.from([...header(19 + body.length, type), ...body]);
}

export function attr(flags: number, type: number, value: number[]): number[] {
  return flags & 0x10
    ? [flags, type, value.length >> 8, value.length & 0xff, ...value]
    : [flags, type, value.length, ...value];
}

/** An UPDATE from raw withdrawn, attribute and NLRI bytes. */
export function rawUpdate(o: { withdrawn?: number[]; attributes?: number[]; nlri?: number[] }): Buffer {
  const w = o.withdrawn ?? [];
  const a = o.attributes ?? [];
  return message(2, [
    w.length >> 8,
    w.length & 0xff,
    ...w,
    a.length >> 8,
    a.length & 0xff,
    ...a,
    ...(o.nlri ?? []),
  ]);
}

export const ORIGIN_IGP = attr(0x40, 1, [0]);
export const AS_PATH_65001 = attr(0x40, 2, [2, 1, 0, 0, 0xfd, 0xe9]);
export const NEXT_HOP_192_0_2_1 = attr(0x40, 3, [192, 0, 2, 1]);
export const VALID_ATTRIBUTES = [...ORIGIN_IGP, ...AS_PATH_65001, ...NEXT_HOP_192_0_2_1];
/** NLRI 198.51.100.0/24. */
export const NLRI_198_51_100 = [24, 198, 51, 100];

export function open(
  o: { version?: number; as?: number; hold?: number; id?: number[]; params?: number[] } = {},
): Buffer {
  const as = o.as ?? 65001;
  const hold = o.hold ?? 90;
  const params = o.params ?? [];
  return message(1, [
    o.version ?? 4,
    as >> 8,
    as & 0xff,
    hold >> 8,
    hold & 0xff,
    ...(o.id ?? [10, 0, 0, 9]),
    params.length,
    ...params,
  ]);
}
