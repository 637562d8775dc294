/**
 * The firewall's loop: read the policy directory, compile for this node, apply.
 * Invalid input is rejected whole and the policy already in the kernel (from
 * this run or a previous one) stays in force.
 */

import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { ruleStats } from '../../bpf/codecs/firewall.js';
import { BpfMap, type BpfObject, u32 } from '../../bpf/index.js';
import {
  type CompiledPolicy,
  type CompiledRule,
  compilePolicies,
  type NodeFacts,
  type SystemAllow,
} from '../../host-policies/compile.js';
import {
  type EndpointSelectorSummary,
  endpointResolver,
  summarizeEndpoints,
} from '../../host-policies/endpoints.js';
import type { HostPolicy } from '../../host-policies/model.js';
import { loadPolicyDirectory, parsePolicySources } from '../../host-policies/parse.js';
import { InputError } from '../../model/input-errors.js';
import { decapSystemAllows } from '../../services/dsr-plan.js';
import { healthCheckSystemAllows, planHealthPorts } from '../../services/health-plan.js';
import { bgpSystemAllows } from '../bgp/plan.js';
import type { LoadedConfig } from '../config/load.js';
import type { Logger } from '../log.js';
import { loadBalancerNodesFromConfig, servicesFromConfig } from '../services/from-config.js';
import { type ApplyResult, FirewallMaps } from './actuator.js';
import {
  type PendingApply,
  PendingApplyStore,
  type PolicyFile,
  readPolicyDir,
  validFileName,
} from './confirm.js';
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
  /** An apply that rolls back at `deadline` unless confirmed. */
  pendingApply?: { deadline: string; files: string[] };
  /** fromEndpoints/toEndpoints selectors in force (Kubernetes source) and their address counts. */
  endpoints?: EndpointSelectorSummary[];
}

export interface ApplyRequest {
  files: PolicyFile[];
  /** 0: keep without confirmation. */
  confirmWithinMs: number;
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
  return [
    ...config.cluster.apiServers.map((api) => ({
      reason: `Kubernetes API ${api.address}:${api.port}`,
      direction: 'egress' as const,
      peers: [api.address],
      l4: [{ kind: 'ports' as const, protocol: 'TCP' as const, port: api.port, endPort: api.port }],
    })),
    ...bgpSystemAllows(config.bgp),
    ...healthCheckSystemAllows(planHealthPorts(servicesFromConfig(config.services).services)),
    ...decapSystemAllows(servicesFromConfig(config.services).services, {
      addresses: localAddresses(),
      loadBalancerNodes: loadBalancerNodesFromConfig(config),
    }),
  ];
}

export class FirewallManager {
  private readonly maps: FirewallMaps;
  private compiled: CompiledPolicy | undefined;
  private system: SystemAllow[] = [];
  /** Addresses per endpoint selector key that the policy in force was compiled with. */
  private endpoints: Record<string, string[]> | undefined;
  private lastApply: FirewallStatus['lastApply'];
  private lastError: FirewallStatus['lastError'];
  private config: LoadedConfig | undefined;
  private rollbackTimer: NodeJS.Timeout | undefined;
  /** Rule tables of recent generations, so that late events still name their rule. */
  private readonly rulesByGeneration = new Map<number, readonly CompiledRule[]>();

  constructor(
    firewallObject: BpfObject,
    private readonly log: Logger,
    private readonly onApply: (result: 'applied' | 'rejected') => void = () => {},
  ) {
    this.maps = new FirewallMaps(firewallObject);
  }

  rulesOf(generation: number): readonly CompiledRule[] | undefined {
    return this.rulesByGeneration.get(generation);
  }

  /** Packets and bytes per rule of the live generation. */
  ruleCounters(): { rule: CompiledRule; packets: bigint; bytes: bigint }[] {
    const live = this.maps.openLive();
    if (!live) return [];
    try {
      const rules = this.rulesOf(live.slot.generation) ?? [];
      const stats = new BpfMap(live.stats, u32, ruleStats);
      return rules.map((rule) => {
        const counted = stats.lookup(rule.index);
        return { rule, packets: counted?.packets ?? 0n, bytes: counted?.bytes ?? 0n };
      });
    } finally {
      live.close();
    }
  }

  suppressedEvents(): bigint {
    return this.maps.suppressedEvents();
  }

  private store(): PendingApplyStore {
    return new PendingApplyStore(this.config!.policies.directory);
  }

  /**
   * Validates the new files together with the rest of the directory, installs
   * them and applies. With a confirmation window, the previous files come back
   * at the deadline unless confirm() is called. Invalid input changes nothing.
   */
  apply(request: ApplyRequest): { deadline?: string; generation: number } {
    const config = this.config!;
    const dir = config.policies.directory;
    const bad = request.files.filter((f) => !validFileName(f.name)).map((f) => f.name);
    if (bad.length > 0)
      throw new InputError(
        bad.map((name) => ({
          file: name,
          path: [],
          message: 'policy files are *.yaml or *.yml names without a directory',
        })),
      );
    const incoming = new Map(request.files.map((f) => [f.name, f.content]));
    const merged = [...readPolicyDir(dir).filter((f) => !incoming.has(f.name)), ...request.files].map(
      (f) => ({
        file: join(dir, f.name),
        text: f.content,
      }),
    );
    const policies = parsePolicySources(merged, { mode: 'standalone' });
    compilePolicies(policies, nodeFacts(config), systemAllows(config));
    const deadline = request.confirmWithinMs > 0 ? Date.now() + request.confirmWithinMs : undefined;
    this.store().install(request.files, deadline);
    if (!this.sync(config, policies))
      throw new InputError([{ file: dir, path: [], message: this.lastError?.message ?? 'apply failed' }]);
    this.scheduleRollback();
    return {
      ...(deadline ? { deadline: new Date(deadline).toISOString() } : {}),
      generation: this.maps.activeSlot().generation,
    };
  }

  /** Keeps the pending apply. Returns false when nothing was pending. */
  confirm(): boolean {
    clearTimeout(this.rollbackTimer);
    const confirmed = this.store().confirm();
    if (confirmed) this.log.info('policy apply confirmed');
    return confirmed;
  }

  /** Arms (or, after a restart, re-arms) the rollback of an unconfirmed apply. */
  scheduleRollback(): void {
    clearTimeout(this.rollbackTimer);
    const pending = this.store().pending();
    if (!pending) return;
    const wait = Math.max(0, pending.deadline - Date.now());
    this.rollbackTimer = setTimeout(() => this.rollback(pending), wait);
  }

  private rollback(pending: PendingApply): void {
    if (!this.store().rollback()) return;
    this.log.warn(
      { files: pending.files, deadline: new Date(pending.deadline).toISOString() },
      'policy apply was not confirmed in time; rolling back',
    );
    this.sync(this.config!);
  }

  stop(): void {
    clearTimeout(this.rollbackTimer);
  }

  /** Reads, compiles and applies. Returns false (and keeps the running policy) on invalid input. */
  sync(config: LoadedConfig, policies?: HostPolicy[], endpoints?: Record<string, string[]>): boolean {
    this.config = config;
    try {
      const input = policies ?? loadPolicyDirectory(config.policies.directory, { mode: 'standalone' });
      const facts = {
        ...nodeFacts(config),
        ...(endpoints ? { endpointAddresses: endpointResolver(endpoints) } : {}),
      };
      const system = systemAllows(config);
      const compiled = compilePolicies(input, facts, system);
      this.maps.setHostAddresses(facts.hostAddresses);
      this.maps.setEventsPerSecond(config.policies.eventsPerSecond);
      const result = this.maps.apply(compiled);
      this.compiled = compiled;
      this.system = system;
      this.endpoints = endpoints;
      this.rulesByGeneration.set(result.generation, compiled.rules);
      for (const generation of this.rulesByGeneration.keys()) {
        if (generation < result.generation - 3) this.rulesByGeneration.delete(generation);
      }
      this.onApply('applied');
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
      this.onApply('rejected');
      this.log.error({ err: message }, 'host policies rejected; the policy in force stays');
      return false;
    }
  }

  trace(query: TraceQuery): TraceResult {
    const result = traceFlow(this.maps, this.compiled?.rules ?? [], query);
    if (!this.endpoints) return result;
    return { ...result, endpoints: summarizeEndpoints(this.endpoints, result.peer) };
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
      ...this.pendingStatus(),
      ...(this.endpoints ? { endpoints: summarizeEndpoints(this.endpoints) } : {}),
    };
  }

  private pendingStatus(): Pick<FirewallStatus, 'pendingApply'> {
    const pending = this.config ? this.store().pending() : undefined;
    return pending
      ? { pendingApply: { deadline: new Date(pending.deadline).toISOString(), files: pending.files } }
      : {};
  }
}
