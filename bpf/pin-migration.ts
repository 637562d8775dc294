/**
 * Upgrades across a change of a pinned map's layout. libbpf refuses to reuse a
 * pin whose type, key size, value size or size differs from the object's map,
 * so the load would fail. Instead the old pin is set aside before the load (the
 * programs still attached keep using the old map: nothing stops answering), the
 * load pins a new map, entries are carried over where the caller knows how, and
 * the old pin is removed. The old map lives on until the new programs replace
 * the old ones in their links.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { openPinnedMap } from './map.js';
import { BpfError } from './native/errors.js';
import { bpf } from './native/ffi.js';

export interface MapLayout {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

/** A pinned map set aside because its layout differs from the object's. */
export interface ReplacedPin {
  name: string;
  pinPath: string;
  previous: MapLayout;
  /** Entries copied into the new map; 0 when the map's contents are rebuilt instead. */
  carried: number;
}

/** Turns an old entry into a new one (undefined: drop it). */
export type EntryConverter = (key: Buffer, value: Buffer) => { key: Buffer; value: Buffer } | undefined;

/** For layouts that only appended fields whose zero means "unset": keys kept, values zero-extended. */
export const zeroExtendValues =
  (valueSize: number): EntryConverter =>
  (key, value) =>
    value.length > valueSize
      ? undefined
      : { key, value: Buffer.concat([value, Buffer.alloc(valueSize - value.length)]) };

// bpffs refuses names with a dot.
const asidePath = (pinPath: string) => `${pinPath}_replaced`;

const sameLayout = (a: MapLayout, b: MapLayout) =>
  a.type === b.type &&
  a.keySize === b.keySize &&
  a.valueSize === b.valueSize &&
  a.maxEntries === b.maxEntries;

/** Moves `pinPath` aside when the map pinned there does not have `wanted`'s layout. */
export function setAsideIfIncompatible(
  name: string,
  pinPath: string,
  wanted: MapLayout,
): ReplacedPin | undefined {
  if (!existsSync(pinPath)) return undefined;
  const pinned = openPinnedMap(pinPath);
  pinned.close();
  if (sameLayout(pinned, wanted)) return undefined;
  // A crash between set-aside and removal leaves the aside pin: it is older still.
  rmSync(asidePath(pinPath), { force: true });
  renameSync(pinPath, asidePath(pinPath));
  const { type, keySize, valueSize, maxEntries } = pinned;
  return { name, pinPath, previous: { type, keySize, valueSize, maxEntries }, carried: 0 };
}

/** The load failed: the old pin goes back where it was. */
export function restore(replaced: ReplacedPin): void {
  if (existsSync(asidePath(replaced.pinPath)) && !existsSync(replaced.pinPath))
    renameSync(asidePath(replaced.pinPath), replaced.pinPath);
}

/** Copies the set-aside map's entries through `convert` into `to`, then removes the old pin. */
export function carryOver(
  replaced: ReplacedPin,
  to: { fd: number; keySize: number },
  convert?: EntryConverter,
): ReplacedPin {
  const path = asidePath(replaced.pinPath);
  let carried = 0;
  if (convert) {
    const old = openPinnedMap(path);
    try {
      const key = Buffer.alloc(old.keySize);
      const value = Buffer.alloc(old.valueSize);
      let prev: Buffer | null = null;
      while (bpf.mapGetNextKey(old.fd, prev, key) === 0) {
        prev = Buffer.from(key);
        if (bpf.mapLookupElem(old.fd, key, value) !== 0) continue; // deleted meanwhile
        const entry = convert(Buffer.from(key), Buffer.from(value));
        if (!entry || entry.key.length !== to.keySize) continue;
        const result = bpf.mapUpdateElem(to.fd, entry.key, entry.value, 0n);
        if (result < 0) throw new BpfError('carry over map entry', replaced.name, -result);
        carried++;
      }
    } finally {
      old.close();
    }
  }
  rmSync(path, { force: true });
  return { ...replaced, carried };
}
