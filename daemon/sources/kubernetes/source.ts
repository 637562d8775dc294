/**
 * The Kubernetes source as the daemon uses it: the watcher, this node's
 * heartbeat and the ownership view, started together; a coalesced change
 * signal; and the cluster facts the firewall needs (this node's labels, the
 * other nodes' addresses, the API servers).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { HostPolicy } from '../../../host-policies/model.js';
import { formatProblem } from '../../../model/input-errors.js';
import type { LoadedConfig } from '../../config/load.js';
import type { Logger } from '../../log.js';
import { KubeClient, loadKubeConfig } from './client.js';
import { Heartbeat, type HeartbeatStatus } from './heartbeat.js';
import { IpamController, type IpamStatus } from './ipam.js';
import { ClusterOwnership } from './ownership.js';
import { type PodSelectorStatus, PodWatches } from './pods.js';
import {
  type ClusterState,
  type ClusterVersions,
  type KubernetesStatus,
  KubernetesWatcher,
} from './watcher.js';

/** The watcher's slices, plus what else the daemon's planners read from the source. */
export interface SourceVersions extends ClusterVersions {
  /** The live nodes (ownership), this node included while its own lease holds. */
  live: number;
  /** The pods of the host policies' endpoint selectors. */
  pods: number;
  /** 1 once the first complete list is in: until then the cluster contributes nothing. */
  synced: number;
}

export interface KubernetesSourceStatus extends KubernetesStatus {
  server: string;
  heartbeat: HeartbeatStatus;
  liveNodes: string[];
  /** With kubernetes.ipam.enabled. */
  ipam?: IpamStatus;
  /** Invalid objects, each naming object and field; their last good version stays in force. */
  problems: string[];
  /** One pod watch per endpoint selector of the host policies, with the addresses it resolves to. */
  podSelectors: PodSelectorStatus[];
}

export interface KubernetesSourceOptions {
  config: LoadedConfig;
  log: Logger;
  /** Interfaces up on this node, published with the heartbeat. */
  interfacesUp(): string[];
  /** Called (coalesced, at most every 250 ms) after the cluster changed. */
  onChange(): void;
  /**
   * Called at once, uncoalesced, when a heartbeat lease expired or this node's own
   * holding changed: L2 ownership moves on it, and failover time is expiry plus this
   * delay. onChange follows as usual for the rest.
   */
  onOwnershipChange?(): void;
  /** After each heartbeat renewal: this node's lease certainly holds for `validForMs` more. */
  onLeaseRenewed?(validForMs: number): void;
}

/** Interfaces whose operstate is up (this daemon's network namespace), published with the heartbeat. */
export function interfacesUp(): string[] {
  try {
    return readdirSync('/sys/class/net')
      .filter((name) => {
        try {
          return readFileSync(`/sys/class/net/${name}/operstate`, 'utf8').trim() === 'up';
        } catch {
          return false;
        }
      })
      .sort();
  } catch {
    return [];
  }
}

/** The API server's address from the kubeconfig, when it is an IP (a name would need DNS to enforce). */
function serverEndpoint(server: string): { address: string; port: number } | undefined {
  const url = new URL(server);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) === 0) return undefined;
  return { address: host, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) };
}

/**
 * The config the firewall compiles with: this node's labels from its Node
 * object, the other nodes' addresses (remote-node) and the API servers
 * (kube-apiserver) added to what config.yaml says.
 */
export function clusterConfig(
  config: LoadedConfig,
  state: Pick<ClusterState, 'self' | 'nodes' | 'apiServers'>,
  server: string,
): LoadedConfig {
  const others = state.nodes
    .filter((n) => n.name !== config.nodeName)
    .flatMap((n) => n.addresses.map((a) => a.address));
  const apiServers = [...config.cluster.apiServers];
  const add = (address: string, port: number) => {
    if (!apiServers.some((a) => a.address === address && a.port === port)) apiServers.push({ address, port });
  };
  const fromKubeconfig = serverEndpoint(server);
  if (fromKubeconfig) add(fromKubeconfig.address, fromKubeconfig.port);
  for (const endpoints of state.apiServers) for (const a of endpoints.addresses) add(a, endpoints.port);
  return {
    ...config,
    labels: { ...config.labels, ...(state.self?.labels ?? {}) },
    cluster: {
      ...config.cluster,
      nodes: [...new Set([...config.cluster.nodes, ...others])].sort(),
      apiServers,
    },
  };
}

export class KubernetesSource {
  readonly watcher: KubernetesWatcher;
  readonly heartbeat: Heartbeat;
  readonly ownership: ClusterOwnership;
  readonly server: string;
  readonly ipam: IpamController | undefined;
  readonly pods: PodWatches;
  private changeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: KubernetesSourceOptions) {
    const { config, log } = options;
    const k = config.kubernetes;
    const kubeconfig = loadKubeConfig(k.kubeconfig);
    const userAgent = `nodewarden/${config.nodeName}`;
    const client = new KubeClient({ config: kubeconfig, qps: k.qps, burst: k.burst, userAgent });
    this.server = client.server;
    const changed = () => this.scheduleChange();
    this.watcher = new KubernetesWatcher({
      client,
      nodeName: config.nodeName,
      namespace: k.namespace,
      idleTimeoutMs: k.idleTimeoutSeconds * 1000,
      onChange: () => {
        this.ownership?.observe();
        changed();
      },
      onError: (error) => log.warn({ err: error.message }, 'kubernetes watch'),
    });
    // Its own client and rate limiter: a relist burst never delays a renewal.
    this.heartbeat = new Heartbeat({
      client: new KubeClient({ config: kubeconfig, qps: 10, burst: 10, userAgent }),
      namespace: k.namespace,
      nodeName: config.nodeName,
      renewIntervalMs: k.heartbeat.renewIntervalMs,
      expirySeconds: k.heartbeat.expirySeconds,
      interfacesUp: options.interfacesUp,
      onError: (error) => log.warn({ err: error.message }, 'heartbeat renewal failed'),
      onHoldingChange: (holding) => {
        log.info({ holding }, holding ? 'heartbeat lease held' : 'heartbeat lease lost: announcing nothing');
        options.onOwnershipChange?.();
        changed();
      },
      ...(options.onLeaseRenewed ? { onRenewed: options.onLeaseRenewed } : {}),
    });
    this.ipam = k.ipam.enabled
      ? new IpamController({
          client: new KubeClient({ config: kubeconfig, qps: k.qps, burst: k.burst, userAgent }),
          namespace: k.namespace,
          nodeName: config.nodeName,
          renewIntervalMs: k.heartbeat.renewIntervalMs,
          expirySeconds: k.heartbeat.expirySeconds,
          className: k.loadBalancerClass.name,
          unclassed: k.loadBalancerClass.unclassed,
          state: () => this.watcher.state(),
          synced: () => this.watcher.status().synced,
          onError: (error) => log.warn({ err: error.message }, 'ipam'),
        })
      : undefined;
    this.pods = new PodWatches({
      client,
      idleTimeoutMs: k.idleTimeoutSeconds * 1000,
      onChange: changed,
      onError: (error) => log.warn({ err: error.message }, 'kubernetes pod watch'),
    });
    this.ownership = new ClusterOwnership({
      nodeName: config.nodeName,
      heartbeat: this.heartbeat,
      leases: this.watcher.heartbeats,
      onChange: () => {
        options.onOwnershipChange?.();
        changed();
      },
    });
  }

  /**
   * Starts everything; resolves after the first complete sync and the first
   * heartbeat attempt, or after the timeout (false). Ownership planned before that
   * attempt would count this node as dead and withdraw what a restarted daemon
   * still announces.
   */
  async start(): Promise<boolean> {
    this.watcher.start();
    this.heartbeat.start();
    this.ipam?.start();
    const timeoutMs = this.options.config.kubernetes.initialSyncTimeoutSeconds * 1000;
    let timer: NodeJS.Timeout | undefined;
    const synced = await Promise.race([
      Promise.all([this.watcher.waitForSync(), this.heartbeat.firstAttempt]).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return synced;
  }

  get synced(): boolean {
    return this.watcher.status().synced;
  }

  hostPolicies(): HostPolicy[] {
    return [...this.watcher.hostPolicies.items.values()].flat();
  }

  /**
   * Re-plans the pod watches for these policies (starting and stopping them) and
   * returns each endpoint selector's addresses, by selector key.
   */
  endpointAddresses(policies: readonly HostPolicy[]): Record<string, string[]> {
    this.pods.plan(policies);
    return this.pods.resolved();
  }

  /** Called after every change (leases change every second): reads only what the firewall needs. */
  firewallConfig(config: LoadedConfig): LoadedConfig {
    return clusterConfig(config, this.watcher.firewallFacts(), this.server);
  }

  /** Cheap to call after every change: numbers to compare, nothing re-read. */
  versions(): SourceVersions {
    return {
      ...this.watcher.versions(),
      live: this.ownership.liveVersion(),
      pods: this.pods.version,
      synced: this.synced ? 1 : 0,
    };
  }

  status(): KubernetesSourceStatus {
    const state = this.watcher.state();
    return {
      server: this.server,
      ...this.watcher.status(),
      heartbeat: this.heartbeat.status(),
      liveNodes: [...this.ownership.liveNodes()].sort(),
      ...(this.ipam ? { ipam: this.ipam.status() } : {}),
      problems: state.problems.map(formatProblem),
      podSelectors: this.pods.status(),
    };
  }

  async stop(): Promise<void> {
    clearTimeout(this.changeTimer);
    this.ipam?.stop();
    this.watcher.stop();
    this.pods.stop();
    this.ownership.stop();
    // Release the lease: the other nodes take this node's IPs at once instead of after the expiry.
    await this.heartbeat.stop({ release: true });
  }

  private scheduleChange(): void {
    if (this.changeTimer) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      this.options.onChange();
    }, 250);
  }
}
