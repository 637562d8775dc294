/** Community text forms: RFC 1997 "asn:value" and well-known names, RFC 8092 "a:b:c". */

/** Well-known communities by name (RFC 1997, 3765, 7999, 8326, 7611, 9494). */
export const WELL_KNOWN_COMMUNITIES: Readonly<Record<string, number>> = {
  'graceful-shutdown': 0xffff0000,
  'accept-own': 0xffff0001,
  'llgr-stale': 0xffff0006,
  'no-llgr': 0xffff0007,
  blackhole: 0xffff029a,
  'no-export': 0xffffff01,
  'no-advertise': 0xffffff02,
  'no-export-subconfed': 0xffffff03,
  'no-peer': 0xffffff04,
};

const nameByValue = new Map(Object.entries(WELL_KNOWN_COMMUNITIES).map(([name, value]) => [value, name]));

export class CommunityError extends Error {
  override name = 'CommunityError';
}

function u16(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffff ? n : undefined;
}

function u32(text: string): number | undefined {
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffffffff ? n : undefined;
}

/** "65000:100" or a name such as "no-export" / "NO_EXPORT" to the 32-bit value. */
export function parseCommunity(text: string): number {
  const name = text.trim().toLowerCase().replaceAll('_', '-');
  const known = WELL_KNOWN_COMMUNITIES[name];
  if (known !== undefined) return known;
  const parts = text.split(':');
  if (parts.length === 2) {
    const high = u16(parts[0]!);
    const low = u16(parts[1]!);
    if (high !== undefined && low !== undefined) return ((high << 16) | low) >>> 0;
  }
  throw new CommunityError(
    `community "${text}" is neither "asn:value" (two numbers 0..65535) nor a well-known name (${Object.keys(WELL_KNOWN_COMMUNITIES).join(', ')})`,
  );
}

export function formatCommunity(value: number): string {
  return nameByValue.get(value) ?? `${value >>> 16}:${value & 0xffff}`;
}

export type LargeCommunity = readonly [number, number, number];

/** "a:b:c", three numbers 0..4294967295 (RFC 8092). */
export function parseLargeCommunity(text: string): LargeCommunity {
  const parts = text.split(':');
  if (parts.length === 3) {
    const [a, b, c] = parts.map(u32);
    if (a !== undefined && b !== undefined && c !== undefined) return [a, b, c];
  }
  throw new CommunityError(`large community "${text}" is not "a:b:c" with three numbers 0..4294967295`);
}

export function formatLargeCommunity(value: LargeCommunity): string {
  return `${value[0]}:${value[1]}:${value[2]}`;
}
