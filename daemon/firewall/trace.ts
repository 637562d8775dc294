/**
 * `nodewarden policy trace`: the verdict for a new flow, computed with the same
 * lookups the datapath makes, on the live maps in the kernel (LPM lookups
 * from user space are longest-prefix matches, like the program's).
 */

import { Direction, Verdict, type VerdictCode } from '../../bpf/codecs/firewall.js';
import type { CompiledRule } from '../../host-policies/compile.js';
import type { EndpointSelectorSummary } from '../../host-policies/endpoints.js';
import { parsePrefix, toBytes } from '../../host-policies/prefix.js';
import { type FirewallMaps, lookupVerdict } from './actuator.js';

export const PROTOCOLS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 };

export interface TraceQuery {
  direction: 'ingress' | 'egress';
  from: string;
  to: string;
  /** IANA protocol number. */
  protocol: number;
  /** Destination port, or for ICMP the type. */
  port: number;
}

export interface TraceResult {
  verdict: 'allow' | 'deny' | 'audit' | 'allow-system';
  /** Which rule decided, as the policy names it, or why no rule was needed. */
  decidedBy: string;
  rule?: number;
  peer: string;
  set?: number;
  generation: number;
  /** Kubernetes source: each endpoint selector in force, its address count and whether it includes the peer. */
  endpoints?: EndpointSelectorSummary[];
}

const VERDICT_NAMES: Record<VerdictCode, TraceResult['verdict']> = {
  [Verdict.none]: 'allow',
  [Verdict.allow]: 'allow',
  [Verdict.deny]: 'deny',
  [Verdict.audit]: 'audit',
  [Verdict.allowSystem]: 'allow-system',
};

function isMulticastOrBroadcast(address: string): boolean {
  const bytes = toBytes(parsePrefix(address));
  if (bytes[0] === 0xff) return true;
  const mapped = bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped && ((bytes[12]! & 0xf0) === 0xe0 || bytes.slice(12).every((b) => b === 0xff));
}

export function traceFlow(maps: FirewallMaps, rules: readonly CompiledRule[], q: TraceQuery): TraceResult {
  const peer = q.direction === 'ingress' ? q.from : q.to;
  const local = q.direction === 'ingress' ? q.to : q.from;
  const live = maps.openLive();
  const slot = maps.activeSlot();
  const base = { peer, generation: slot.generation };
  if (!live) return { ...base, verdict: 'allow', decidedBy: 'no policy has been applied on this node' };
  try {
    if (!maps.hasHostAddress(local) && !isMulticastOrBroadcast(local)) {
      return {
        ...base,
        verdict: 'allow',
        decidedBy: `${local} is not an address of this node: forwarded traffic, host policy does not apply`,
      };
    }
    const dir = Direction[q.direction];
    const policyPort = q.protocol === 1 || q.protocol === 58 ? (q.port & 0xff) << 8 : q.port;
    const hit = lookupVerdict(live, toBytes(parsePrefix(peer)), dir, q.protocol, policyPort);
    const set = hit.set;
    if (hit.verdict !== Verdict.none && hit.rule !== undefined) {
      const rule = rules[hit.rule];
      return {
        ...base,
        set,
        rule: hit.rule,
        verdict: VERDICT_NAMES[hit.verdict as VerdictCode],
        decidedBy: rule?.description ?? `rule ${hit.rule}`,
      };
    }
    const fallback = slot.defaultVerdict[slot.slot * 2 + dir] as VerdictCode;
    const verdict = VERDICT_NAMES[fallback];
    return {
      ...base,
      set,
      rule: dir,
      verdict,
      decidedBy:
        fallback === Verdict.allow || fallback === Verdict.none
          ? `no policy enforces ${q.direction} on this node`
          : `default deny: no rule allows it (${q.direction})`,
    };
  } finally {
    live.close();
  }
}
