/**
 * Drop and audit events from the datapath's ring buffer: decoded into JSON
 * records for `nodewarden monitor`, and counted for Prometheus. The kernel
 * side already limits events per second and CPU (policies.eventsPerSecond).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { FIREWALL_MAPS, fwEvent, Reason, Verdict } from '../../bpf/codecs/firewall.js';
import { type BpfObject, bootTimeToDate, RingBufferReader } from '../../bpf/index.js';
import type { CompiledRule } from '../../host-policies/compile.js';
import { formatAddress, fromBytes } from '../../host-policies/prefix.js';

export interface FirewallEventRecord {
  time: string;
  interface: string;
  direction: 'ingress' | 'egress';
  verdict: 'deny' | 'audit';
  reason: 'rule' | 'default' | 'malformed';
  protocol: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** The policy and rule that decided ("" and "default ingress" for default deny). */
  policy: string;
  rule: string;
  generation: number;
  length: number;
}

const PROTOCOL_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };
const REASONS: Record<number, FirewallEventRecord['reason']> = {
  [Reason.rule]: 'rule',
  [Reason.default]: 'default',
  [Reason.malformed]: 'malformed',
};

/** ifindex → name in this network namespace, refreshed when an index is unknown. */
class InterfaceNames {
  private names = new Map<number, string>();

  name(ifindex: number): string {
    if (!this.names.has(ifindex)) this.refresh();
    return this.names.get(ifindex) ?? `if${ifindex}`;
  }

  private refresh(): void {
    const names = new Map<number, string>();
    try {
      for (const name of readdirSync('/sys/class/net')) {
        names.set(Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8')), name);
      }
    } catch {
      // No sysfs view: events carry the index instead.
    }
    this.names = names;
  }
}

export type RulesOfGeneration = (generation: number) => readonly CompiledRule[] | undefined;

export class FirewallEvents {
  private readonly reader: RingBufferReader;
  private readonly subscribers = new Set<(record: FirewallEventRecord) => void>();
  private readonly interfaces = new InterfaceNames();

  constructor(
    object: BpfObject,
    private readonly rulesOf: RulesOfGeneration,
    private readonly onRecord: (record: FirewallEventRecord) => void,
  ) {
    this.reader = new RingBufferReader(object.map(FIREWALL_MAPS.events), (data) => this.handle(data), {
      intervalMs: 50,
    });
  }

  start(onError: (error: unknown) => void): void {
    this.reader.start(onError);
  }

  subscribe(send: (record: FirewallEventRecord) => void): () => void {
    this.subscribers.add(send);
    return () => this.subscribers.delete(send);
  }

  close(): void {
    this.reader.close();
    this.subscribers.clear();
  }

  private handle(data: Buffer): void {
    const e = fwEvent.decode(data, 0);
    const rule = this.rulesOf(e.generation)?.[e.rule];
    const record: FirewallEventRecord = {
      time: bootTimeToDate(e.tsNs).toISOString(),
      interface: this.interfaces.name(e.ifindex),
      direction: e.direction === 0 ? 'ingress' : 'egress',
      verdict: e.verdict === Verdict.audit ? 'audit' : 'deny',
      reason: REASONS[e.reason] ?? 'rule',
      protocol: PROTOCOL_NAMES[e.proto] ?? String(e.proto),
      src: formatAddress(fromBytes(e.saddr)),
      dst: formatAddress(fromBytes(e.daddr)),
      sport: e.sport,
      dport: e.dport,
      policy: rule?.policy ?? '',
      rule: rule?.description ?? `rule ${e.rule}`,
      generation: e.generation,
      length: e.len,
    };
    this.onRecord(record);
    for (const send of this.subscribers) send(record);
  }
}
