/**
 * The IPv6 group scanner shared by the BGP codec and the host policies: both
 * parse many addresses per config load or UPDATE, so it walks the string
 * once, without splitting or allocating per group.
 */

const COLON = 58;
const DOT = 46;

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/**
 * Scans the address in text[0, end) (hex groups, at most one "::", no zone)
 * into its eight 16-bit groups in `out`, the groups after "::" moved to the
 * end and the ones between set to zero. A trailing dotted quad is accepted
 * only when `dottedQuad` is given: it parses text[start, end) into a 32-bit
 * value, or returns -1. Returns whether the text was a well-formed address.
 */
export function scanIPv6Groups(
  text: string,
  end: number,
  out: number[] | Uint16Array,
  dottedQuad?: (start: number) => number,
): boolean {
  let count = 0;
  let gap = -1; // how many groups stand before the "::"
  let i = 0;
  if (text.charCodeAt(0) === COLON) {
    if (end < 2 || text.charCodeAt(1) !== COLON) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    const start = i;
    let value = 0;
    let digits = 0;
    for (; i < end; i++) {
      const h = hexDigit(text.charCodeAt(i));
      if (h < 0) break;
      value = value * 16 + h;
      if (++digits > 4) return false;
    }
    if (dottedQuad && i < end && text.charCodeAt(i) === DOT) {
      const v4 = count <= 6 ? dottedQuad(start) : -1;
      if (v4 < 0) return false;
      out[count++] = v4 >>> 16;
      out[count++] = v4 & 0xffff;
      break;
    }
    if (digits === 0 || count === 8) return false;
    out[count++] = value;
    if (i === end) break;
    if (text.charCodeAt(i) !== COLON) return false;
    i++;
    if (i === end) return false; // one trailing colon
    if (text.charCodeAt(i) === COLON) {
      if (gap >= 0) return false;
      gap = count;
      i++;
    }
  }
  if (gap < 0 ? count !== 8 : count > 7) return false;
  if (gap >= 0) {
    const missing = 8 - count;
    for (let g = count - 1; g >= gap; g--) out[g + missing] = out[g]!;
    for (let g = gap; g < gap + missing; g++) out[g] = 0;
  }
  return true;
}

/**
 * RFC 5952 text of eight 16-bit groups: lower case, no leading zeros, the first
 * longest run of two or more zero groups as `::`. Shared by the host-policy CIDRs
 * and the BGP codec.
 */
export function formatIPv6Groups(groups: ArrayLike<number>): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, k) => groups[from + k]!.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}
