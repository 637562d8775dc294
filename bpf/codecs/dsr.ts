/** Codecs for DSR's maps: bpf/lib/dsr.h. */
import { be16, bytes, struct, u8, u16, u32, u64 } from '../codec.js';

export const DSR_MAPS = {
  vips: 'nw_dsr_vips',
  maglev: 'nw_dsr_maglev',
  flows: 'nw_dsr_flows64',
  backends: 'nw_dsr_backends',
  lbNodes: 'nw_dsr_lb_nodes',
  localVips: 'nw_dsr_local_vips',
  stats: 'nw_dsr_stats',
} as const;

/** Must equal NW_MAGLEV_SIZE and the other limits in dsr.h. */
export const MAGLEV_TABLE_SIZE = 16381;
export const DSR_SERVICES_MAX = 1024;

/** enum nw_dsr_stat: each forwarded packet counts once, as picked (Maglev) or flowHit. */
export const DsrStat = {
  picked: 0,
  flowHit: 1,
  noBackend: 2,
  fibFailed: 3,
  local: 4,
  decapsulated: 5,
  arpDropped: 6,
  tooBig: 7,
} as const;

export interface DsrVipKey {
  addr: Uint8Array;
  port: number;
  proto: number;
  pad: number;
}
export const dsrVipKey = struct<DsrVipKey>('nw_dsr_vip_key', {
  addr: bytes(16),
  port: be16,
  proto: u8,
  pad: u8,
});

export interface DsrVip {
  service: number;
  backends: number;
}
export const dsrVip = struct<DsrVip>('nw_dsr_vip', { service: u32, backends: u32 });

export const dsrBackend = struct<{ addr: Uint8Array }>('nw_dsr_backend', { addr: bytes(16) });

export interface DsrFlowKey {
  saddr: Uint8Array;
  daddr: Uint8Array;
  sport: number;
  dport: number;
  proto: number;
  pad: Uint8Array;
}
export const dsrFlowKey = struct<DsrFlowKey>('nw_dsr_flow_key', {
  saddr: bytes(16),
  daddr: bytes(16),
  sport: be16,
  dport: be16,
  proto: u8,
  pad: bytes(3),
});

/** A flow table entry: the flow's full tuple (checked on every hit) and its backend. */
export const dsrFlow = struct<{ tuple: DsrFlowKey; backend: { addr: Uint8Array } }>('nw_dsr_flow', {
  tuple: dsrFlowKey,
  backend: dsrBackend,
});

const FLOW_KEY_MULTIPLIER = 0x9e3779b97f4a7c15n;
const U64 = (1n << 64n) - 1n;

/** nw_flow_key64 in dsr.c: the flow table's key for a tuple (tests plant entries with it). */
export function flowKey64(tuple: DsrFlowKey): bigint {
  const bytes = Buffer.alloc(dsrFlowKey.size);
  dsrFlowKey.encode(tuple, bytes, 0);
  let h = 0x4e57n;
  for (let off = 0; off < bytes.length; off += 8) {
    h ^= bytes.readBigUInt64LE(off);
    h = (h * FLOW_KEY_MULTIPLIER) & U64;
    h ^= h >> 29n;
  }
  return h;
}

/** A backend's cached next hop (the value of nw_dsr_backends); all zero is "expired". */
export interface DsrNexthop {
  expiresNs: bigint;
  ifindex: number;
  mtu: number;
  smac: Uint8Array;
  dmac: Uint8Array;
  src: Uint8Array;
  pad: Uint8Array;
}
export const dsrNexthop = struct<DsrNexthop>('nw_dsr_nexthop', {
  expiresNs: u64,
  ifindex: u32,
  mtu: u16,
  smac: bytes(6),
  dmac: bytes(6),
  src: bytes(16),
  pad: bytes(2),
});

export const EXPIRED_NEXTHOP: DsrNexthop = {
  expiresNs: 0n,
  ifindex: 0,
  mtu: 0,
  smac: new Uint8Array(6),
  dmac: new Uint8Array(6),
  src: new Uint8Array(16),
  pad: new Uint8Array(2),
};
