/**
 * The firewall's loop: read the policy directory, compile for this node, apply.
 * Invalid input is rejected whole and the policy already in the kernel (from
 * this run or a previous one) stays in force.
 */
import { networkInterfaces } from 'node:os';
import type { BpfObject } from '../../bpf/index.js';
import {
  type CompiledPolicy,
  type CompiledRule,
  compilePolicies,
  type NodeFacts,
  type SystemAllow,
} from '../../host-policies/compile.js';
import type { HostPolicy } from '../../host-policies/model.js';
import { loadPolicyDirectory } from '../../host-policies/parse.js';
import type { LoadedConfig } from '../config/load.js';
import type { Logger } from '../log.js';
import { type ApplyResult, FirewallMaps } from './actuator.js';
import { type TraceQuery, type TraceResult, traceFlow } from './trace.js';

export interface FirewallStatus {
  generation: number;
  policies: string[];
  defaults: { ingress: string; egress: string };
  identities: number;
  entries: number;
  rules: number;
  systemAllows: string[];
  warnings: string[];
  lastApply?: ApplyResult & { at: string };
  /** The last rejected input; the policy in force is the one before it. */
  lastError?: { at: string; message: string };
}

const VERDICT_LABEL = ['allow', 'allow', 'deny', 'audit', 'allow'] as const;

/** This node's addresses, in the daemon's network namespace. */
export function localAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i): i is NonNullable<typeof i> => i !== undefined)
    .map((i) => i.address.replace(/%.*$/, ''));
}

export function nodeFacts(config: LoadedConfig): NodeFacts {
  return {
    nodeName: config.nodeName,
    labels: config.labels,
    hostAddresses: localAddresses(),
    remoteNodeAddresses: config.cluster.nodes,
    clusterCIDRs: config.cluster.podCIDRs,
    apiServerAddresses: config.cluster.apiServers.map((a) => a.address),
  };
}

/** What the daemon itself needs, whatever the policies say. */
export function systemAllows(config: LoadedConfig): SystemAllow[] {
  return config.cluster.apiServers.map((api) => ({
    reason: `Kubernetes API ${api.address}:${api.port}`,
    direction: 'egress' as const,
    peers: [api.address],
    l4: [{ kind: 'ports' as const, protocol: 'TCP' as const, port: api.port, endPort: api.port }],
  }));
}

export class FirewallManager {
  private readonly maps: FirewallMaps;
  private compiled: CompiledPolicy | undefined;
  private system: SystemAllow[] = [];
  private lastApply: FirewallStatus['lastApply'];
  private lastError: FirewallStatus['lastError'];

  constructor(
    firewallObject: BpfObject,
    private readonly log: Logger,
  ) {
    this.maps = new FirewallMaps(firewallObject);
  }

  /** Reads, compiles and applies. Returns false (and keeps the running policy) on invalid input. */
  sync(config: LoadedConfig, policies?: HostPolicy[]): boolean {
    try {
      const input = policies ?? loadPolicyDirectory(config.policies.directory, { mode: 'standalone' });
      const facts = nodeFacts(config);
      const system = systemAllows(config);
      const compiled = compilePolicies(input, facts, system);
      this.maps.setHostAddresses(facts.hostAddresses);
      this.maps.setEventsPerSecond(config.policies.eventsPerSecond);
      const result = this.maps.apply(compiled);
      this.compiled = compiled;
      this.system = system;
      this.lastApply = { ...result, at: new Date().toISOString() };
      this.lastError = undefined;
      for (const warning of compiled.warnings) this.log.warn({ warning }, 'host policy warning');
      this.log.info(
        {
          generation: result.generation,
          policies: compiled.selected,
          entries: result.entries,
          ms: Math.round(result.durationMs),
        },
        'host policies applied',
      );
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.lastError = { at: new Date().toISOString(), message };
      this.log.error({ err: message }, 'host policies rejected; the policy in force stays');
      return false;
    }
  }

  trace(query: TraceQuery): TraceResult {
    return traceFlow(this.maps, this.compiled?.rules ?? [], query);
  }

  rules(): readonly CompiledRule[] {
    return this.compiled?.rules ?? [];
  }

  status(): FirewallStatus {
    const c = this.compiled;
    return {
      generation: this.maps.activeSlot().generation,
      policies: c?.selected ?? [],
      defaults: {
        ingress: VERDICT_LABEL[c?.defaults.ingress ?? 1],
        egress: VERDICT_LABEL[c?.defaults.egress ?? 1],
      },
      identities: c?.identities.length ?? 0,
      entries: c?.entries.length ?? 0,
      rules: c ? c.rules.length - 3 : 0,
      systemAllows: this.system.map((s) => `${s.direction} ${s.reason}`),
      warnings: c?.warnings ?? [],
      ...(this.lastApply ? { lastApply: this.lastApply } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }
}
