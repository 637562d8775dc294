/** Codecs for the firewall's maps: bpf/lib/{identity,policy,conntrack,host,fw_events}.h. */
import { be16, be32, bytes, type Codec, struct, u8, u16, u32, u64 } from '../codec.js';

export const FIREWALL_MAPS = {
  ident: 'nw_fw_ident',
  identHash: 'nw_fw_ident_hash',
  identLengths: 'nw_fw_ident_lengths',
  policy: 'nw_fw_policy',
  policyHash: 'nw_fw_policy_hash',
  ruleStats: 'nw_fw_rule_stats',
  active: 'nw_fw_active',
  conntrack: 'nw_fw_ct',
  hostAddrs: 'nw_fw_host_addrs',
  events: 'nw_fw_events',
  settings: 'nw_fw_settings',
  eventRate: 'nw_fw_event_rate',
} as const;

/** Sizes of the inner maps; they must equal the templates in the C headers. */
export const IDENT_MAX = 1 << 20;
export const POLICY_MAX = 1 << 20;
/** Rules per node (the policy value's rule index is a u32; this bounds the counter array). */
export const RULES_MAX = 1 << 20;

export const Direction = { ingress: 0, egress: 1 } as const;

export const Verdict = { none: 0, allow: 1, deny: 2, audit: 3, allowSystem: 4 } as const;
export type VerdictCode = (typeof Verdict)[keyof typeof Verdict];

export const Reason = { rule: 1, default: 2, malformed: 3 } as const;

/** Rule indexes below this are reserved: 0/1 the ingress/egress default, 2 malformed packets. */
export const FIRST_RULE_INDEX = 3;
export const RULE_MALFORMED = 2;

export interface IdentKey {
  prefixlen: number;
  addr: Uint8Array;
}
export const identKey = struct<IdentKey>('nw_ident_key', { prefixlen: u32, addr: bytes(16) });

/** Prefix lengths per family in the identity hash (identity.h); more go to the trie. */
export const IDENT_PROBES = 4;
export const Family = { v4: 0, v6: 1 } as const;

export interface IdentLengths {
  /** [v4 lengths..., v6 lengths...], IDENT_PROBES each, longest first, in 128-bit terms (IPv4 /24 = 120). */
  len: Uint8Array;
  /** Lengths in use per family. */
  count: Uint8Array;
  /** Per family: 1 when it has shorter prefixes in the trie. */
  trie: Uint8Array;
}
export const identLengths = struct<IdentLengths>('nw_ident_lengths', {
  len: bytes(2 * IDENT_PROBES),
  count: bytes(2),
  trie: bytes(2),
});

/** Rules of a set carried in the identity value, per direction (identity.h). */
export const INLINE_RULES = 4;
/**
 * inlineCount INLINE_HASH | n: the set's entries are in the policy hash under n prefix lengths,
 * listed longest first in rules[direction][0..n-1].bits (identity.h).
 */
export const INLINE_HASH = 0x80;
export const INLINE_HASH_COUNT = 0x07;
/** inlineCount: the set's entries are in the policy trie. */
export const INLINE_OVERFLOW = 0xff;

export interface InlineRule {
  /** proto << 16 | port (or ICMP type << 8 | code) of the prefix start. */
  start: number;
  /** Prefix length within the 24-bit (proto, port) space. */
  bits: number;
  verdict: number;
  pad: number;
  rule: number;
}
export const inlineRule = struct<InlineRule>('nw_inline_rule', {
  start: u32,
  bits: u8,
  verdict: u8,
  pad: u16,
  rule: u32,
});

/** `struct nw_inline_rule rules[2][INLINE_RULES]`: [direction][i]; missing rules encode as zeros. */
const inlineRuleTable: Codec<InlineRule[][]> = {
  cType: `struct nw_inline_rule[2][${INLINE_RULES}]`,
  size: inlineRule.size * INLINE_RULES * 2,
  align: inlineRule.align,
  encode(value, buf, offset) {
    for (let dir = 0; dir < 2; dir++) {
      for (let i = 0; i < INLINE_RULES; i++) {
        const r = value[dir]?.[i] ?? { start: 0, bits: 0, verdict: 0, pad: 0, rule: 0 };
        inlineRule.encode(r, buf, offset + (dir * INLINE_RULES + i) * inlineRule.size);
      }
    }
  },
  decode: (buf, offset) =>
    [0, 1].map((dir) =>
      Array.from({ length: INLINE_RULES }, (_, i) =>
        inlineRule.decode(buf, offset + (dir * INLINE_RULES + i) * inlineRule.size),
      ),
    ),
};

export interface IdentValue {
  set: number;
  /** Inline rule count per direction, INLINE_HASH | probe count, or INLINE_OVERFLOW. */
  inlineCount: Uint8Array;
  pad: Uint8Array;
  /** [ingress, egress], each up to INLINE_RULES. */
  rules: InlineRule[][];
}
export const identValue = struct<IdentValue>('nw_ident_value', {
  set: u32,
  inlineCount: bytes(2),
  pad: bytes(2),
  rules: inlineRuleTable,
});

export interface PolicyKey {
  prefixlen: number;
  set: number;
  direction: number;
  proto: number;
  port: number;
}
export const policyKey = struct<PolicyKey>('nw_policy_key', {
  prefixlen: u32,
  set: be32,
  direction: u8,
  proto: u8,
  port: be16,
});
/** Bits of policy key data before the protocol (set and direction). */
export const POLICY_PREFIX_L3 = 40;

export interface PolicyValue {
  verdict: number;
  pad: Uint8Array;
  rule: number;
}
export const policyValue = struct<PolicyValue>('nw_policy_value', { verdict: u8, pad: bytes(3), rule: u32 });

export interface RuleStats {
  packets: bigint;
  bytes: bigint;
}
export const ruleStats = struct<RuleStats>('nw_rule_stats', { packets: u64, bytes: u64 });

export interface ActiveSlot {
  slot: number;
  generation: number;
  /** [slot 0 ingress, slot 0 egress, slot 1 ingress, slot 1 egress] */
  defaultVerdict: Uint8Array;
  pad: Uint8Array;
}
export const activeSlot = struct<ActiveSlot>('nw_fw_active_slot', {
  slot: u32,
  generation: u32,
  defaultVerdict: bytes(4),
  pad: bytes(4),
});

export interface CtKey {
  aAddr: Uint8Array;
  bAddr: Uint8Array;
  aPort: number;
  bPort: number;
  proto: number;
  pad: Uint8Array;
}
export const ctKey = struct<CtKey>('nw_ct_key', {
  aAddr: bytes(16),
  bAddr: bytes(16),
  aPort: be16,
  bPort: be16,
  proto: u8,
  pad: bytes(3),
});

export interface CtValue {
  lastSeenNs: bigint;
  packets: bigint;
  rule: number;
  state: number;
  aIsOrigin: number;
  direction: number;
  pad: number;
}
export const ctValue = struct<CtValue>('nw_ct_value', {
  lastSeenNs: u64,
  packets: u64,
  rule: u32,
  state: u8,
  aIsOrigin: u8,
  direction: u8,
  pad: u8,
});

export const hostAddrKey = struct<{ addr: Uint8Array }>('nw_host_addr_key', { addr: bytes(16) });

export interface FwEvent {
  tsNs: bigint;
  ifindex: number;
  rule: number;
  saddr: Uint8Array;
  daddr: Uint8Array;
  sport: number;
  dport: number;
  proto: number;
  direction: number;
  verdict: number;
  reason: number;
  generation: number;
  len: number;
}
export const fwEvent = struct<FwEvent>('nw_fw_event', {
  tsNs: u64,
  ifindex: u32,
  rule: u32,
  saddr: bytes(16),
  daddr: bytes(16),
  sport: be16,
  dport: be16,
  proto: u8,
  direction: u8,
  verdict: u8,
  reason: u8,
  generation: u32,
  len: u32,
});

export interface FwSettings {
  eventsPerSec: number;
  pad: number;
}
export const fwSettings = struct<FwSettings>('nw_fw_settings', { eventsPerSec: u32, pad: u32 });

export interface RateWindow {
  startNs: bigint;
  count: bigint;
  suppressed: bigint;
}
export const rateWindow = struct<RateWindow>('nw_rate_window', { startNs: u64, count: u64, suppressed: u64 });
