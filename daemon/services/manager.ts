/**
 * Services on this node: plans the healthCheckNodePorts and DSR from the
 * services model, and keeps the health servers, DSR's maps and the local VIP
 * routes in line with the plans. A DSR failure is reported and leaves the
 * health servers alone, and the other way round.
 */
import { readFileSync } from 'node:fs';
import type { BpfObject } from '../../bpf/index.js';
import { type DsrNodeFacts, type DsrPlan, planDsr } from '../../services/dsr-plan.js';
import { type HealthPlan, planHealthPorts } from '../../services/health-plan.js';
import type { ServicesModel } from '../../services/model.js';
import type { Logger } from '../log.js';
import { DsrMaps, type DsrStats } from './dsr-maps.js';
import { type HealthPortStatus, HealthServers } from './health-servers.js';
import { syncLocalRoutes } from './local-routes.js';
import { NeighbourPrimer } from './neighbours.js';

export interface DsrStatus {
  vips: { vip: string; port: number; protocol: string; backends: number }[];
  tables: { service: string; backends: string[] }[];
  /** VIPs this node serves as a backend (local routes). */
  localVips: string[];
  loadBalancerNodes: string[];
  stats?: DsrStats;
  warnings: string[];
  lastApply?: { at: string; ms: number; tablesWritten: number };
  lastError?: { at: string; message: string };
}

export interface ServicesStatus {
  services: number;
  healthCheckNodePorts: HealthPortStatus[];
  conflicts: HealthPlan['conflicts'];
  /** The model's warnings (bad input with the fallback in force). Absent from daemons that predate them. */
  warnings?: string[];
  dsr?: DsrStatus;
}

export interface ServicesFacts extends DsrNodeFacts {
  /** Devices DSR's programs run on, to check that they forward. */
  devices: readonly string[];
}

/** Whether a model asks for DSR anywhere: then the datapath attaches DSR's programs. */
export const usesDsr = (model: ServicesModel) => model.services.some((s) => s.dsr);

export class ServicesManager {
  private readonly health: HealthServers;
  private model: ServicesModel = { services: [] };
  private plan: HealthPlan = { ports: [], conflicts: [] };
  private dsrMaps: DsrMaps | undefined;
  private dsrPlan: DsrPlan | undefined;
  private dsr: DsrStatus | undefined;
  private readonly neighbours: NeighbourPrimer;

  constructor(
    bindAddress: string,
    private readonly log: Logger,
    proxyHealthy: () => boolean,
    /** DSR's BPF object, loaded when first needed. */
    private readonly dsrObject: () => BpfObject,
  ) {
    this.health = new HealthServers(bindAddress, log, proxyHealthy);
    this.neighbours = new NeighbourPrimer((error) =>
      log.warn({ err: error.message }, 'cannot reach a DSR backend node to resolve its neighbour'),
    );
  }

  /** Applies a new model; resolves when new health ports are bound or have failed. */
  sync(model: ServicesModel, facts: ServicesFacts): Promise<void> {
    this.logWarningChanges(this.model.warnings ?? [], model.warnings ?? []);
    this.model = model;
    this.plan = planHealthPorts(model.services);
    for (const c of this.plan.conflicts)
      this.log.error(c, `healthCheckNodePort ${c.port} of ${c.service} is already ${c.heldBy}'s; not served`);
    this.syncDsr(facts);
    return this.health.apply(this.plan.ports);
  }

  /** Once per change, not per sync: a cluster re-syncs services on every change of theirs. */
  private logWarningChanges(before: readonly string[], after: readonly string[]): void {
    for (const warning of after.filter((w) => !before.includes(w)))
      this.log.warn({ warning }, 'services input warning; the fallback is in force');
    for (const warning of before.filter((w) => !after.includes(w)))
      this.log.info({ warning }, 'services input warning resolved');
  }

  private syncDsr(facts: ServicesFacts): void {
    if (!usesDsr(this.model) && !this.dsrMaps) return;
    const at = new Date().toISOString();
    try {
      this.dsrMaps ??= new DsrMaps(this.dsrObject());
      let plan = planDsr(this.model.services, facts, this.dsrPlan?.slots);
      // After a restart: keep the slots the pinned VIP entries use.
      if (!this.dsrPlan) plan = planDsr(this.model.services, facts, this.dsrMaps.liveSlots(plan));
      const result = this.dsrMaps.apply(plan);
      syncLocalRoutes(plan.localVips);
      // Backends other than this node: the ones XDP may have to reach.
      const own = new Set(facts.addresses);
      this.neighbours.set(plan.backendNodes.filter((b) => !own.has(b)));
      this.dsrPlan = plan;
      this.dsr = {
        ...describe(plan),
        warnings: plan.vips.length > 0 ? notForwarding(facts.devices) : [],
        lastApply: { at, ms: Math.round(result.durationMs * 10) / 10, tablesWritten: result.tablesWritten },
      };
      for (const warning of this.dsr.warnings) this.log.warn({ warning }, 'DSR warning');
      this.log.info(
        { vips: result.vips, tablesWritten: result.tablesWritten, localVips: plan.localVips },
        'DSR applied',
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.dsr = {
        ...(this.dsr ?? { vips: [], tables: [], localVips: [], loadBalancerNodes: [], warnings: [] }),
        lastError: { at, message },
      };
      this.log.error({ err: message }, 'DSR apply failed; the DSR state in force stays');
    }
  }

  status(): ServicesStatus {
    return {
      services: this.model.services.length,
      healthCheckNodePorts: this.health.status(),
      conflicts: this.plan.conflicts,
      warnings: [...(this.model.warnings ?? [])],
      ...(this.dsr
        ? { dsr: { ...this.dsr, ...(this.dsrMaps ? { stats: this.dsrMaps.readStats() } : {}) } }
        : {}),
    };
  }

  close(): void {
    this.health.close();
    this.neighbours.stop();
  }
}

function describe(plan: DsrPlan): Omit<DsrStatus, 'warnings'> {
  return {
    vips: plan.vips.map(({ vip, port, protocol, backends }) => ({ vip, port, protocol, backends })),
    tables: plan.tables.map((t) => ({ service: t.key, backends: t.backends })),
    localVips: plan.localVips,
    loadBalancerNodes: plan.loadBalancerNodes,
  };
}

/** bpf_fib_lookup answers only on devices that forward; a load-balancer node must. */
function notForwarding(devices: readonly string[]): string[] {
  const off = (path: string) => {
    try {
      return readFileSync(path, 'utf8').trim() === '0';
    } catch {
      return false;
    }
  };
  return devices.flatMap((dev) => [
    ...(off(`/proc/sys/net/ipv4/conf/${dev}/forwarding`)
      ? [`${dev}: IPv4 forwarding is off, so this node cannot forward DSR traffic for IPv4 VIPs`]
      : []),
    ...(off(`/proc/sys/net/ipv6/conf/${dev}/forwarding`)
      ? [`${dev}: IPv6 forwarding is off, so this node cannot forward DSR traffic for IPv6 VIPs`]
      : []),
  ]);
}
