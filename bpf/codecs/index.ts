/**
 * Every map layout shared between C and TypeScript. test/unit/codec-btf.test.ts
 * checks each entry against the BTF that clang emitted for the object, so a
 * field added on one side only fails the tests instead of corrupting a map.
 */
import { type FieldLayout, u64 } from '../codec.js';
import * as dsr from './dsr.js';
import * as fw from './firewall.js';
import { L2_MAPS, l2Entry, l2Key, l2Stats } from './l2.js';
import { PACKET_COUNTERS_MAP, packetCounter, packetCounterKey } from './packet-counters.js';

/** What the layout check needs of a codec. */
export interface LayoutCodec {
  size: number;
  cType: string;
  fields?: readonly FieldLayout[];
}

export interface MapLayout {
  /** The object under bpf/out (without .o). */
  object: string;
  map: string;
  key: LayoutCodec;
  value: LayoutCodec;
}

/** Maps whose key and value types BTF names directly (__type). */
export const MAP_LAYOUTS: readonly MapLayout[] = [
  { object: 'counters', map: PACKET_COUNTERS_MAP, key: packetCounterKey, value: packetCounter },
  { object: 'firewall', map: fw.FIREWALL_MAPS.active, key: packetCounterKey, value: fw.activeSlot },
  { object: 'firewall', map: fw.FIREWALL_MAPS.conntrack, key: fw.ctKey, value: fw.ctValue },
  { object: 'firewall', map: fw.FIREWALL_MAPS.settings, key: packetCounterKey, value: fw.fwSettings },
  { object: 'firewall', map: fw.FIREWALL_MAPS.eventRate, key: packetCounterKey, value: fw.rateWindow },
  { object: 'l2_responder', map: L2_MAPS.owned, key: l2Key, value: l2Entry },
  { object: 'l2_responder', map: L2_MAPS.stats, key: l2Key, value: l2Stats },
  // nw_dsr_xdp runs the responder too: same maps, pinned by name, shared by both objects.
  { object: 'dsr', map: L2_MAPS.owned, key: l2Key, value: l2Entry },
  { object: 'dsr', map: L2_MAPS.stats, key: l2Key, value: l2Stats },
  { object: 'dsr', map: dsr.DSR_MAPS.vips, key: dsr.dsrVipKey, value: dsr.dsrVip },
  { object: 'dsr', map: dsr.DSR_MAPS.flows, key: u64, value: dsr.dsrFlow },
  { object: 'dsr', map: dsr.DSR_MAPS.backends, key: dsr.dsrBackend, value: dsr.dsrNexthop },
  { object: 'dsr', map: dsr.DSR_MAPS.lbNodes, key: dsr.dsrBackend, value: packetCounterKey },
  { object: 'dsr', map: dsr.DSR_MAPS.localVips, key: dsr.dsrBackend, value: packetCounterKey },
  { object: 'firewall', map: fw.FIREWALL_MAPS.identLengths, key: packetCounterKey, value: fw.identLengths },
];

/** Structs used by inner maps and ring buffers, which BTF knows by name only. */
export const STRUCT_LAYOUTS: readonly { object: string; codec: LayoutCodec }[] = [
  fw.identKey,
  fw.identValue,
  fw.inlineRule,
  fw.policyKey,
  fw.policyValue,
  fw.ruleStats,
  fw.hostAddrKey,
  fw.fwEvent,
].map((codec) => ({ object: 'firewall', codec }));
