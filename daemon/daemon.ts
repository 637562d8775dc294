/**
 * The daemon's lifecycle: config → plan → datapath, plus the control socket.
 * A reload with invalid input keeps the last good state in force and reports
 * the problem in the log and in status.
 */

import { selectablePool } from '../announcers/ipam/pool-selection.js';
import { L2Actuator } from '../announcers/l2/actuator.js';
import { planClusterL2 } from '../announcers/l2/cluster.js';
import { NetlinkWatcher } from '../bpf/index.js';
import type { LabelSelector } from '../host-policies/model.js';
import { matchesLabels } from '../host-policies/selector.js';
import { InputError } from '../model/input-errors.js';
import type { ServicesModel } from '../services/model.js';
import { clusterBgpConfig } from './bgp/from-cluster.js';
import { BgpManager, type BgpStatus } from './bgp/manager.js';
import { type LoadedConfig, loadConfig } from './config/load.js';
import { ControlStream } from './control/protocol.js';
import { ControlServer } from './control/server.js';
import { type AttachmentStatus, Datapath } from './datapath/actuator.js';
import { planAttachments } from './datapath/plan.js';
import { detectDefaultRouteDevices } from './devices.js';
import { FirewallEvents } from './firewall/events.js';
import {
  type ApplyRequest,
  FirewallManager,
  type FirewallStatus,
  localAddresses,
} from './firewall/manager.js';
import type { TraceQuery } from './firewall/trace.js';
import { type L2ClusterInput, L2Manager, type L2Status, l2Settings } from './l2/manager.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { controlSocketPath } from './paths.js';
import { CLUSTER_READS, type ConsumerStats, Derived, ReconcilePass, type Versions } from './reconcile.js';
import { SystemdNotifier } from './sd-notify.js';
import { configWithClusterServices, servicesFromCluster } from './services/from-cluster.js';
import { loadBalancerNodesFromConfig, servicesFromConfig } from './services/from-config.js';
import { ServicesManager, type ServicesStatus, usesDsr } from './services/manager.js';
import { interfacesUp, KubernetesSource, type KubernetesSourceStatus } from './sources/kubernetes/source.js';
import { VERSION } from './version.js';

export interface DaemonOptions {
  configPath: string;
  pinDir: string;
  runDir: string;
  log: Logger;
}

export interface DaemonStatus {
  version: string;
  pid: number;
  nodeName: string;
  startedAt: string;
  configFile: string;
  pinDir: string;
  runDir: string;
  devices: string[];
  attachments: readonly AttachmentStatus[];
  packetCounters: ReturnType<Datapath['packetCounters']>;
  firewall: FirewallStatus;
  /** Absent from daemons that predate L2 announcements. */
  l2?: L2Status;
  lastReload: { at: string; ok: boolean; error?: string };
  /** Optional so that status from an older daemon still prints. */
  services?: ServicesStatus;
  health?: DaemonHealth;
  /** Present when config.yaml has a bgp section. */
  bgp?: BgpStatus;
  /** With `source: kubernetes`. */
  kubernetes?: KubernetesSourceStatus;
  /** With `source: kubernetes`: how often each planner re-planned or skipped a cluster change. */
  reconcile?: ConsumerStats[];
}

/** The daemon's own health: /healthz on the metrics listener, and serviceProxyHealthy. */
export interface DaemonHealth {
  healthy: boolean;
  bpfAttached: boolean;
  sourcesSynced: boolean;
  lastReloadOk: boolean;
}

/** Sets and Maps do not stringify: spell them out. */
function clusterL2Key(input: L2ClusterInput | undefined): string {
  if (!input) return '';
  return JSON.stringify([input.announcements, [...input.owned].sort(), [...input.owners].sort()]);
}

export class Daemon {
  private config!: LoadedConfig;
  private datapath!: Datapath;
  private firewall!: FirewallManager;
  private l2!: L2Manager;
  private events!: FirewallEvents;
  private netlink: NetlinkWatcher | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private hostAddresses = '';
  private readonly metrics = new Metrics();
  private notifier!: SystemdNotifier;
  private bgp!: BgpManager;
  private control!: ControlServer;
  private devices: string[] = [];
  private readonly startedAt = new Date();
  private lastReload: DaemonStatus['lastReload'] = { at: new Date().toISOString(), ok: true };
  private services!: ServicesManager;
  /** Files are read synchronously; the Kubernetes source says when its first list completed. */
  private filesSynced = false;
  private get sourcesSynced(): boolean {
    return this.filesSynced && (this.kube?.synced ?? true);
  }
  private kube: KubernetesSource | undefined;
  private kubeFirewallInput = '';
  /** Kubernetes mode: the last L2 input applied; undefined until the datapath was first applied. */
  private l2ClusterKey: string | undefined;
  private l2Actuator!: L2Actuator;
  /** The services model and load-balancer nodes last synced, to skip cluster changes that do not touch them. */
  private servicesInput = '';
  /** Whether the datapath last applied has DSR's programs. */
  private datapathDsr = false;
  /** The BGP speaker config and routes last applied from the cluster; false until the first apply. */
  private bgpInput = '';
  private bgpApplied = false;
  /** Bumped by each reload: the config is a slice every cluster consumer reads. */
  private configGeneration = 0;
  private reconciler: ReconcilePass | undefined;
  /** The cluster's services, shared by the consumers of a pass (services, BGP, firewall). */
  private readonly clusterServicesOf = new Derived(
    ['config', 'synced', 'nodes', 'services', 'endpointSlices'],
    () => this.planClusterServices(),
  );

  constructor(private readonly options: DaemonOptions) {}

  /** Throws on invalid config or an unusable datapath: there is no last good state to fall back on yet. */
  async start(config: LoadedConfig = loadConfig(this.options.configPath)): Promise<void> {
    const { log, pinDir, runDir } = this.options;
    this.bgp = new BgpManager({ log, runDir });
    const bgpPlan = this.bgp.prepare(config);
    this.config = config;
    this.datapath = Datapath.open({
      pinDir,
      tcMode: config.datapath.tcMode,
      xdpMode: config.datapath.xdpMode,
    });
    for (const r of this.datapath.replacedPins())
      log.warn(
        { map: r.name, previous: r.previous, carried: r.carried },
        'pinned map had the layout of another release: replaced',
      );
    this.firewall = new FirewallManager(this.datapath.objects.firewall, log, (result) =>
      this.metrics.policyApplies.inc({ result }),
    );
    this.events = new FirewallEvents(
      this.datapath.objects.firewall,
      (generation) => this.firewall.rulesOf(generation),
      (e) =>
        this.metrics.firewallEvents.inc({
          direction: e.direction,
          verdict: e.verdict,
          reason: e.reason,
          policy: e.policy,
        }),
    );
    this.events.start((error) => log.error({ err: String(error) }, 'reading firewall events failed'));
    this.startL2(config);
    this.registerKernelMetrics();
    if (config.source === 'kubernetes') await this.startKubernetes(config);
    else this.firewall.sync(config);
    this.hostAddresses = localAddresses().sort().join(',');
    // An apply that was pending when the last daemon stopped: roll back now if its time is up.
    if (!this.kube) this.firewall.scheduleRollback();
    this.applyDatapath();
    await this.l2.settled();
    this.services = new ServicesManager(
      config.services?.healthCheckBindAddress ?? '::',
      log,
      () => this.servingHealthy(),
      () => this.datapath.dsr(),
    );
    await this.syncServices();
    this.filesSynced = true;
    this.registerServiceMetrics();
    this.control = new ControlServer(controlSocketPath(runDir), {
      status: () => this.status(),
      // Answers once the local routes follow too, so a caller sees the whole reload.
      reload: async () => {
        const result = this.reload();
        await this.l2.settled();
        return result;
      },
      'policy.trace': (params) => this.firewall.trace(params as unknown as TraceQuery),
      'policy.apply': (params) => {
        if (this.kube) {
          throw new InputError([
            {
              file: this.config.file,
              path: ['source'],
              message: 'host policies come from the Kubernetes API: use kubectl apply',
            },
          ]);
        }
        return this.firewall.apply(params as unknown as ApplyRequest);
      },
      'policy.confirm': () => ({ confirmed: this.kube ? false : this.firewall.confirm() }),
      monitor: () => new ControlStream((send) => this.events.subscribe(send)),
      'l2.status': () => this.l2.status(),
      'bgp.peers': () => this.bgp.peers(),
      'bgp.received': (params) => this.bgp.receivedRoutes(String(params.peer ?? '')),
    });
    await this.control.listen();
    this.bgp.registerMetrics(this.metrics);
    this.bgp.apply(bgpPlan);
    this.bgpApplied = true;
    this.syncClusterBgp();
    this.netlink = new NetlinkWatcher(() => this.scheduleResync());
    this.netlink.start(200, (error) => log.error({ err: String(error) }, 'reading netlink failed'));
    this.metrics.health = () => this.health();
    try {
      const metricsAt = await this.metrics.listen(config.metrics.listen);
      if (metricsAt) log.info({ address: metricsAt }, 'serving metrics');
    } catch (error) {
      // Metrics are not worth failing the firewall for; say so and carry on.
      log.error({ err: String(error), address: config.metrics.listen }, 'cannot serve metrics');
    }
    this.notifier = new SystemdNotifier((error) => log.error({ err: String(error) }, 'sd_notify failed'));
    this.notifier.ready(this.summary());
    this.notifier.startWatchdog();
    log.info(
      { nodeName: config.nodeName, pinDir, devices: this.devices, attachments: this.datapath.attachments() },
      'nodewarden started',
    );
  }

  /** Watcher, heartbeat and ownership; host policies and cluster identities come from the API. */
  private async startKubernetes(config: LoadedConfig): Promise<void> {
    const { log } = this.options;
    this.kube = new KubernetesSource({
      config,
      log,
      interfacesUp,
      onChange: () => this.reconciler?.run(this.clusterVersions()),
      onOwnershipChange: () => this.followClusterL2(),
      onLeaseRenewed: (validForMs) => this.l2Actuator.answerFor(validForMs),
    });
    // One pass per coalesced change; each planner only when a slice it reads moved (daemon/reconcile.ts).
    this.reconciler = new ReconcilePass([
      { name: 'services', reads: CLUSTER_READS.services, replan: () => this.syncClusterServices() },
      { name: 'bgp', reads: CLUSTER_READS.bgp, replan: () => this.syncClusterBgp() },
      {
        name: 'firewall',
        reads: CLUSTER_READS.firewall,
        replan: () => this.syncClusterFirewall(false) !== undefined,
      },
      { name: 'l2', reads: CLUSTER_READS.l2, replan: () => this.followClusterL2() },
    ]);
    const synced = await this.kube.start();
    if (synced) log.info({ server: this.kube.server }, 'kubernetes: initial sync done');
    else
      log.warn(
        { server: this.kube.server },
        'kubernetes: no initial sync yet; the pinned policy stays in force',
      );
    this.syncFirewall(true);
  }

  private clusterVersions(): Versions {
    return { ...this.kube!.versions(), config: this.configGeneration };
  }

  /** Files, or the API's policies and cluster facts. */
  private syncFirewall(force: boolean): boolean {
    if (!this.kube) return this.firewall.sync(this.config);
    return this.syncClusterFirewall(force) ?? true;
  }

  /**
   * The API's policies and cluster facts: compile only when the firewall's input
   * changed. Undefined (the pinned policy stays) while the cluster has not listed.
   */
  private syncClusterFirewall(force: boolean): boolean | undefined {
    if (!this.kube) return undefined;
    // Until the first complete list the pinned policy stays: an empty list is not "no policies".
    if (!this.kube.synced) return undefined;
    // BGPPeers from the cluster get their sessions allowed like the config file's peers.
    const config = this.withClusterBgp(
      configWithClusterServices(this.kube.firewallConfig(this.config), this.clusterServices()),
    );
    const policies = this.kube.hostPolicies();
    const endpoints = this.kube.endpointAddresses(policies);
    // An unlisted selector would match nothing, and a deny rule matching nothing opens traffic:
    // the policy in force stays until every pod watch has listed (its list calls onChange).
    if (!this.kube.pods.synced()) return undefined;
    // Endpoint counts change often and allow nothing: leave them out of the comparison.
    const services = config.services?.items.map(({ localReadyEndpoints: _, ...s }) => s);
    const input = JSON.stringify([
      policies,
      config.labels,
      config.cluster,
      endpoints,
      services,
      config.bgp?.peers,
    ]);
    if (!force && input === this.kubeFirewallInput) return true;
    this.kubeFirewallInput = input;
    return this.firewall.sync(config, policies, endpoints);
  }

  /** Kubernetes mode: announcements from the API's L2 policies, owners from the heartbeat hashing. */
  private clusterL2(): L2ClusterInput | undefined {
    if (!this.kube) return undefined;
    const state = this.kube.watcher.state();
    const plan = planClusterL2({
      nodeName: this.config.nodeName,
      nodes: state.nodes,
      services: state.services,
      readyEndpoints: state.readyEndpoints,
      heartbeats: state.heartbeats,
      policies: state.l2Policies,
      pools: state.pools,
      live: this.kube.ownership.liveNodes(),
    });
    return {
      announcements: plan.announcements,
      owned: plan.owned,
      owners: new Map(plan.ips.flatMap((i) => (i.owner ? [[i.ip, i.owner] as const] : []))),
    };
  }

  /** Re-plan L2, and apply only when its result changed (an owner moved, a policy changed). False before the first apply. */
  private followClusterL2(): boolean {
    if (this.l2ClusterKey === undefined) return false;
    if (clusterL2Key(this.clusterL2()) !== this.l2ClusterKey) this.applyDatapath();
    return true;
  }

  /** Links, addresses or routes changed: coalesce a burst, then follow it. */
  private scheduleResync(): void {
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => this.resync(), 250);
  }

  private resync(): void {
    const devices = this.devices.join(',');
    this.applyDatapath();
    if (this.devices.join(',') !== devices)
      this.options.log.info({ devices: this.devices }, 'devices changed');
    const addresses = localAddresses().sort().join(',');
    if (addresses !== this.hostAddresses) {
      this.hostAddresses = addresses;
      this.options.log.info('host addresses changed; recompiling host policies');
      this.syncFirewall(true);
    }
  }

  private registerKernelMetrics(): void {
    this.metrics.gauge(
      'nodewarden_firewall_rule_packets',
      'Packets decided by each rule of the live policy',
      ['policy', 'rule'],
      (set) => {
        for (const c of this.firewall.ruleCounters())
          set({ policy: c.rule.policy, rule: c.rule.description }, Number(c.packets));
      },
    );
    this.metrics.gauge(
      'nodewarden_firewall_events_suppressed',
      'Events the kernel rate limit dropped',
      [],
      (set) => set({}, Number(this.firewall.suppressedEvents())),
    );
    this.metrics.gauge('nodewarden_firewall_generation', 'Generation of the live host policy', [], (set) =>
      set({}, this.firewall.status().generation),
    );
  }

  private startL2(config: LoadedConfig): void {
    // Kubernetes mode: the responder answers only while this node's heartbeat lease holds.
    const actuator = new L2Actuator(
      this.datapath.objects.l2_responder,
      l2Settings(config.l2),
      {
        onError: (what, error) => this.l2.recordError(what, error),
        onAnnounced: (family, frames) => this.metrics.l2Frames.inc({ family }, frames),
      },
      { fenced: config.source === 'kubernetes' },
    );
    this.l2Actuator = actuator;
    this.l2 = new L2Manager(actuator, config.nodeName, this.options.log, () => this.metrics.l2Errors.inc());
    this.metrics.gauge('nodewarden_l2_announced_ips', 'LoadBalancer IPs this node announces now', [], (set) =>
      set({}, this.l2.status().ips.filter((i) => i.state === 'announced').length),
    );
    this.metrics.gauge(
      'nodewarden_l2_replies',
      'ARP replies and neighbour advertisements sent by the XDP responder',
      ['ip', 'interface'],
      (set) => {
        for (const ip of this.l2.status().ips)
          for (const i of ip.interfaces) set({ ip: ip.ip, interface: i.name }, i.replies);
      },
    );
  }

  private applyDatapath(): void {
    // Configured devices plus every device that carries a default route.
    this.devices = [...new Set([...this.config.devices, ...detectDefaultRouteDevices()])].sort();
    const cluster = this.clusterL2();
    this.l2ClusterKey = clusterL2Key(cluster);
    const l2Plan = this.l2.planFor(this.config.l2, cluster);
    const dsr = usesDsr(this.servicesModel());
    this.datapathDsr = dsr;
    const statuses = this.datapath.apply(planAttachments(this.devices, l2Plan.devices, { dsr }));
    this.l2.apply(statuses);
    this.metrics.attachmentsFailed.set(statuses.filter((s) => s.state === 'failed').length);
    for (const failed of statuses.filter((s) => s.state === 'failed')) {
      this.options.log.error(
        { attachment: failed },
        `attach ${failed.program} to ${failed.ifname} failed: ${failed.error}`,
      );
    }
  }

  /** Re-reads the config. Invalid input leaves the running state untouched. */
  reload(): DaemonStatus['lastReload'] {
    const at = new Date().toISOString();
    this.notifier?.notify({ RELOADING: '1' });
    try {
      const config = loadConfig(this.options.configPath);
      // Planned before anything changes, so that invalid BGP input leaves everything as it was.
      const bgpPlan = this.bgp.prepare(this.withClusterBgp(config));
      this.config = config;
      this.configGeneration++;
      // First, so health answers change before the slower policy compile; binding new
      // ports finishes in the background and reports itself.
      void this.syncServices();
      const policiesOk = this.syncFirewall(true);
      this.applyDatapath();
      this.bgp.apply(bgpPlan);
      this.bgpInput = JSON.stringify([bgpPlan?.speaker, bgpPlan?.routes]);
      this.lastReload = policiesOk
        ? { at, ok: true }
        : { at, ok: false, error: this.firewall.status().lastError?.message ?? 'host policies rejected' };
      this.options.log.info({ devices: this.devices }, 'configuration reloaded');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.lastReload = { at, ok: false, error: message };
      this.options.log.error({ err: message }, 'reload rejected; the last good configuration stays in force');
    }
    this.notifier?.ready(this.summary());
    return this.lastReload;
  }

  private syncServices(): Promise<void> {
    const config = this.kube ? this.kube.firewallConfig(this.config) : this.config;
    const model = this.servicesModel();
    const loadBalancerNodes = loadBalancerNodesFromConfig(config);
    this.servicesInput = JSON.stringify([model, loadBalancerNodes]);
    return this.services.sync(model, {
      addresses: localAddresses(),
      loadBalancerNodes,
      devices: this.devices,
    });
  }

  /**
   * The config file's services, plus with `source: kubernetes` the cluster's
   * LoadBalancer Services with this node's ready endpoints. Until the first
   * complete list the cluster contributes nothing.
   */
  private servicesModel(): ServicesModel {
    const cluster = this.clusterServices();
    const model = servicesFromConfig(configWithClusterServices(this.config, cluster).services);
    return { ...model, warnings: cluster.warnings };
  }

  private clusterServices(): ReturnType<typeof servicesFromCluster> {
    return this.kube ? this.clusterServicesOf.get(this.clusterVersions()) : { services: [], warnings: [] };
  }

  private planClusterServices(): ReturnType<typeof servicesFromCluster> {
    if (!this.kube?.synced) return { services: [], warnings: [] };
    const dsrDefault = this.config.services?.dsr.enabled ?? false;
    return servicesFromCluster(this.kube.watcher.state(), this.config.nodeName, dsrDefault);
  }

  /** With `source: kubernetes` and a `bgp` section: the cluster's peers and advertisements merged in. */
  private withClusterBgp(config: LoadedConfig): LoadedConfig {
    if (!this.kube?.synced || !config.bgp) return config;
    const watcher = this.kube.watcher;
    const nodeLabels = watcher.nodes.items.get(config.nodeName)?.labels ?? {};
    const onThisNode = (selectors: readonly LabelSelector[]) =>
      selectors.length === 0 || selectors.some((s) => matchesLabels(s, nodeLabels));
    const bgp = clusterBgpConfig(config.bgp, {
      services: this.clusterServices().services,
      pools: watcher.state().pools.map(selectablePool),
      advertisements: [...watcher.bgpAdvertisements.items.values()],
      peers: [...watcher.bgpPeers.items.values()]
        .filter((p) => onThisNode(p.nodeSelectors))
        .map((p) => p.peer),
      nodeLabels,
    });
    return { ...config, bgp };
  }

  /**
   * After a cluster change: re-plan BGP; apply only when the speaker's config or
   * routes changed. False until start() applied the config file's plan.
   */
  private syncClusterBgp(): boolean {
    if (!this.bgpApplied) return false;
    if (!this.kube || !this.config.bgp) return true;
    try {
      const plan = this.bgp.prepare(this.withClusterBgp(this.config));
      const input = JSON.stringify([plan?.speaker, plan?.routes]);
      if (input === this.bgpInput) return true;
      this.bgpInput = input;
      this.bgp.apply(plan);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.options.log.error({ err: message }, 'BGP from the cluster rejected; the routes in force stay');
    }
    return true;
  }

  /** After a cluster change: re-sync services only when their model changed. False until start() created them. */
  private syncClusterServices(): boolean {
    if (!this.services) return false;
    const config = this.kube ? this.kube.firewallConfig(this.config) : this.config;
    const model = this.servicesModel();
    const input = JSON.stringify([model, loadBalancerNodesFromConfig(config)]);
    if (input === this.servicesInput) return true;
    // DSR's programs attach when the first service asks for DSR, and go with the last one.
    if (usesDsr(model) !== this.datapathDsr) this.applyDatapath();
    void this.syncServices();
    return true;
  }

  /** What the health ports report as serviceProxyHealthy: the datapath is in place and the source synced. */
  private servingHealthy(): boolean {
    return this.sourcesSynced && !this.datapath.attachments().some((a) => a.state === 'failed');
  }

  health(): DaemonHealth {
    const bpfAttached = !this.datapath.attachments().some((a) => a.state === 'failed');
    const lastReloadOk = this.lastReload.ok;
    return {
      healthy: bpfAttached && this.sourcesSynced && lastReloadOk,
      bpfAttached,
      sourcesSynced: this.sourcesSynced,
      lastReloadOk,
    };
  }

  private registerServiceMetrics(): void {
    this.metrics.gauge(
      'nodewarden_health_check_node_ports',
      'healthCheckNodePorts by state (serving, starting, failed)',
      ['state'],
      (set) => {
        const ports = this.services.status().healthCheckNodePorts;
        for (const state of ['serving', 'starting', 'failed'])
          set({ state }, ports.filter((p) => p.state === state).length);
      },
    );
    this.metrics.gauge(
      'nodewarden_dsr_packets',
      'DSR packet counters of the kernel (forwarded, flowHit, decapsulated, noBackend, local, fibFailed, tooBig, arpDropped)',
      ['counter'],
      (set) => {
        for (const [counter, value] of Object.entries(this.services.status().dsr?.stats ?? {}))
          set({ counter }, Number(value));
      },
    );
    this.metrics.gauge('nodewarden_dsr_apply_failed', '1 while the last DSR apply failed', [], (set) =>
      set({}, this.services.status().dsr?.lastError ? 1 : 0),
    );
  }

  /** One line for systemd's STATUS=. */
  private summary(): string {
    const fw = this.firewall.status();
    const failed = this.datapath.attachments().filter((a) => a.state === 'failed').length;
    return [
      `devices ${this.devices.join(',') || 'none'}`,
      `policy generation ${fw.generation} (${fw.policies.length} policies)`,
      ...(failed > 0 ? [`${failed} attachments failed`] : []),
      ...(fw.lastError ? ['last policy input rejected'] : []),
      ...this.l2Summary(),
    ].join('; ');
  }

  private l2Summary(): string[] {
    const l2 = this.l2.status();
    if (l2.ips.length === 0) return [];
    const announced = l2.ips.filter((i) => i.state === 'announced').length;
    return [
      `l2 ${announced}/${l2.ips.length} IPs announced`,
      ...(l2.warnings.length > 0 ? [`${l2.warnings.length} ARP hazard warnings`] : []),
    ];
  }

  status(): DaemonStatus {
    return {
      version: VERSION,
      pid: process.pid,
      nodeName: this.config.nodeName,
      startedAt: this.startedAt.toISOString(),
      configFile: this.config.file,
      pinDir: this.options.pinDir,
      runDir: this.options.runDir,
      devices: this.devices,
      attachments: this.datapath.attachments(),
      packetCounters: this.datapath.packetCounters(),
      firewall: this.firewall.status(),
      l2: this.l2.status(),
      lastReload: this.lastReload,
      services: this.services.status(),
      health: this.health(),
      ...(this.bgp?.status() ? { bgp: this.bgp.status() } : {}),
      ...(this.kube ? { kubernetes: this.kube.status() } : {}),
      ...(this.reconciler ? { reconcile: this.reconciler.stats() } : {}),
    };
  }

  /** Stops serving. The pinned datapath keeps running: that is the point. */
  async stop(): Promise<void> {
    this.notifier?.stop();
    await this.bgp?.stop();
    await this.kube?.stop();
    await this.control?.close();
    await this.metrics.close();
    this.services?.close();
    this.netlink?.close();
    clearTimeout(this.resyncTimer);
    this.events?.close();
    this.firewall?.stop();
    this.l2?.close();
    this.datapath?.close();
    this.options.log.info('nodewarden stopped; pinned programs and maps stay in force');
  }
}
