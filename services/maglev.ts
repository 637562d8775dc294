/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of a
 * prime size M in which every backend owns about M/N slots, and removing one
 * backend moves little more than that backend's own slots.
 */
import { createHash } from 'node:crypto';

/** The datapath's table size (NW_MAGLEV_SIZE): a prime, ≥ 100 × the backends we expect per service. */
export const MAGLEV_SIZE = 16381;

export interface MaglevTable {
  /** The distinct backends, sorted: table values index into this. */
  backends: string[];
  /** size entries, each an index into `backends`; empty when there are no backends. */
  table: Uint16Array;
}

function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Two independent 32-bit hashes of a backend's name. */
function hashes(name: string): [number, number] {
  const digest = createHash('sha256').update(name).digest();
  return [digest.readUInt32BE(0), digest.readUInt32BE(4)];
}

/**
 * Builds the table. The result depends only on the set of backends, not on
 * their order or duplicates, so every load-balancer node computes the same one.
 */
export function maglevTable(backends: readonly string[], size = MAGLEV_SIZE): MaglevTable {
  if (!isPrime(size)) throw new RangeError(`Maglev table size ${size} must be a prime`);
  const names = [...new Set(backends)].sort();
  if (names.length > size) throw new RangeError(`${names.length} backends do not fit a table of ${size}`);
  if (names.length > 0xffff) throw new RangeError(`${names.length} backends: at most 65535`);
  const table = new Uint16Array(names.length === 0 ? 0 : size);
  if (names.length === 0) return { backends: names, table };
  const n = names.length;
  const offset = new Uint32Array(n);
  const skip = new Uint32Array(n);
  names.forEach((name, i) => {
    const [h1, h2] = hashes(name);
    offset[i] = h1 % size;
    skip[i] = (h2 % (size - 1)) + 1;
  });
  const next = new Uint32Array(n);
  const taken = new Uint8Array(size);
  let filled = 0;
  // Backends take turns claiming their next preferred free slot until the table is full.
  for (;;) {
    for (let i = 0; i < n; i++) {
      let slot = (offset[i]! + next[i]! * skip[i]!) % size;
      while (taken[slot]) {
        next[i]!++;
        slot = (offset[i]! + next[i]! * skip[i]!) % size;
      }
      taken[slot] = 1;
      table[slot] = i;
      next[i]!++;
      if (++filled === size) return { backends: names, table };
    }
  }
}
