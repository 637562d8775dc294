/**
 * Addresses for the compiler's tests, written independently of
 * host-policies/prefix.ts, so that a bug there cannot hide in the oracle.
 */
export interface Net {
  family: 4 | 6;
  value: bigint;
  len: number;
}

const cache = new Map<string, Net>();

/** "10.0.0.0/8", "fd00::1" (no zones, no embedded dotted quads). Cached: tests parse the same texts often. */
export function parseNet(text: string): Net {
  let net = cache.get(text);
  if (!net) {
    net = parseNetUncached(text);
    cache.set(text, net);
  }
  return net;
}

function parseNetUncached(text: string): Net {
  const [addr, lenText] = text.split('/') as [string, string | undefined];
  if (addr.includes(':')) {
    const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
    const left = head ? head.split(':') : [];
    const right = tail ? tail.split(':') : [];
    const groups =
      tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
    const value = groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
    return { family: 6, value, len: lenText === undefined ? 128 : Number(lenText) };
  }
  const value = addr.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  return { family: 4, value, len: lenText === undefined ? 32 : Number(lenText) };
}

/** Text of an address or prefix; `compress` writes the longest zero run as "::" (the compiler reads both). */
export function formatNet(family: 4 | 6, value: bigint, len?: number, compress = false): string {
  let text: string;
  if (family === 4) text = [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  else {
    const groups: string[] = [];
    for (let i = 7; i >= 0; i--) groups.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
    text = groups.join(':');
    if (compress) text = `:${text}:`.replace(/(:0)+:/, '::').replace(/^:(?!:)|(?<!:):$/g, '');
  }
  return len === undefined ? text : `${text}/${len}`;
}

export function maskNet(family: 4 | 6, value: bigint, len: number): bigint {
  const shift = BigInt((family === 4 ? 32 : 128) - len);
  return (value >> shift) << shift;
}
