/** Codec for bpf/lib/packet_counters.h (map nw_pkt_counters). */
import { struct, u32, u64 } from '../codec.js';

export const PACKET_COUNTERS_MAP = 'nw_pkt_counters';

/** enum nw_counter_slot */
export const CounterSlot = { xdp: 0, tcIngress: 1, tcEgress: 2 } as const;

export const packetCounterKey = u32;

export interface PacketCounter {
  packets: bigint;
  bytes: bigint;
}

export const packetCounter = struct<PacketCounter>('nw_packet_counter', { packets: u64, bytes: u64 });
