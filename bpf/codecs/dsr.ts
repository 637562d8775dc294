/** Codecs for DSR's maps: bpf/lib/dsr.h. */
import { be16, bytes, struct, u8, u32 } from '../codec.js';

export const DSR_MAPS = {
  vips: 'nw_dsr_vips',
  maglev: 'nw_dsr_maglev',
  flows: 'nw_dsr_flows',
  backends: 'nw_dsr_backends',
  lbNodes: 'nw_dsr_lb_nodes',
  localVips: 'nw_dsr_local_vips',
  stats: 'nw_dsr_stats',
} as const;

/** Must equal NW_MAGLEV_SIZE and the other limits in dsr.h. */
export const MAGLEV_TABLE_SIZE = 16381;
export const DSR_SERVICES_MAX = 1024;

/** enum nw_dsr_stat */
export const DsrStat = {
  forwarded: 0,
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
