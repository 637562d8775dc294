/** Codecs for bpf/lib/l2_owned.h (maps nw_l2_owned and nw_l2_stats). */
import { bytes, struct, u16, u32, u64 } from '../codec.js';

export const L2_MAPS = { owned: 'nw_l2_owned', stats: 'nw_l2_stats' } as const;

export interface L2Key {
  ifindex: number;
  /** 16 bytes; IPv4 as ::ffff:a.b.c.d. */
  addr: Uint8Array;
}

export interface L2Entry {
  mac: Uint8Array;
  flags: number;
  /** Boot-time ns (bootTimeNs) after which XDP stops answering; 0n = forever. */
  expires_ns: bigint;
}

export interface L2Stats {
  replies: bigint;
  /** Boot-time ns of the last reply (bootTimeToDate turns it into a Date). */
  last_reply_ns: bigint;
}

export const l2Key = struct<L2Key>('nw_l2_key', { ifindex: u32, addr: bytes(16) });
export const l2Entry = struct<L2Entry>('nw_l2_entry', { mac: bytes(6), flags: u16, expires_ns: u64 });
export const l2Stats = struct<L2Stats>('nw_l2_stats', { replies: u64, last_reply_ns: u64 });
