/**
 * Every map layout shared between C and TypeScript. test/unit/codec-btf.test.ts
 * checks each entry against the BTF that clang emitted for the object, so a
 * field added on one side only fails the build instead of corrupting a map.
 */
import type { Codec, StructCodec } from '../codec.js';
import { PACKET_COUNTERS_MAP, packetCounter, packetCounterKey } from './packet-counters.js';

export interface MapLayout {
  /** The object under bpf/out (without .o). */
  object: string;
  map: string;
  key: Codec<unknown> | StructCodec<object>;
  value: Codec<unknown> | StructCodec<object>;
}

export const MAP_LAYOUTS: readonly MapLayout[] = [
  {
    object: 'counters',
    map: PACKET_COUNTERS_MAP,
    key: packetCounterKey,
    value: packetCounter as StructCodec<object>,
  },
];
