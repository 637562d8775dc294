/**
 * The Kubernetes source: one reflector per resource, each narrowed by selectors,
 * each keeping slim projections. `state()` is the cluster as the planners see it;
 * invalid objects keep their last good projection and are reported as Events.
 */
import type { HostPolicy } from '../../../host-policies/model.js';
import type {
  BgpAdvertisementPolicy,
  EndpointCounts,
  HeartbeatLease,
  L2AnnouncementPolicy,
  LoadBalancerPool,
  NodeInfo,
  ServiceInfo,
} from '../../../model/cluster.js';
import { formatFieldPath, type InputProblem } from '../../../model/input-errors.js';
import { type ClusterBgpPeer, projectBgpAdvertisement, projectBgpPeer } from './bgp-projections.js';
import type { KubeClient, KubeObject } from './client.js';
import { readyEndpointsByService } from './endpoint-counts.js';
import {
  HEARTBEAT_LABEL,
  projectEndpointSlice,
  projectHeartbeat,
  projectHostPolicy,
  projectL2Policy,
  projectNode,
  projectPool,
  projectService,
  SERVICE_NAME_LABEL,
} from './projections.js';
import { Reflector, type ReflectorOptions, type ReflectorStatus } from './reflector.js';

export interface KubernetesWatcherOptions {
  client: KubeClient;
  nodeName: string;
  /** Where our Leases live. */
  namespace: string;
  idleTimeoutMs: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Called after any change; the caller coalesces. */
  onChange?(): void;
  onError?(error: Error): void;
  /** Post a Warning Event for each invalid object (once per resourceVersion). */
  reportInvalid?: boolean;
}

export interface ClusterState {
  self?: NodeInfo;
  nodes: NodeInfo[];
  services: ServiceInfo[];
  /** `namespace/service` → node → ready endpoints, over all of the service's slices. */
  readyEndpoints: Map<string, Map<string, number>>;
  /** Ready API server endpoints (EndpointSlices of default/kubernetes). */
  apiServers: { addresses: string[]; port: number }[];
  heartbeats: HeartbeatLease[];
  hostPolicies: HostPolicy[];
  l2Policies: L2AnnouncementPolicy[];
  pools: LoadBalancerPool[];
  /** Objects whose latest version is invalid (their last good version is still in the lists above). */
  problems: InputProblem[];
}

/**
 * One version per slice of the cluster view (each a Reflector's version, or a
 * sum of them: monotonic, and it moves when any of them moves). A consumer
 * records the versions of the slices it reads and re-plans only when one moved.
 */
export interface ClusterVersions {
  nodes: number;
  services: number;
  endpointSlices: number;
  /**
   * The heartbeat leases without their renewal time (which nodes publish which
   * interfaces): a renewal, several a second, does not move it. Liveness, which
   * renewals do move, is the ownership view's to follow.
   */
  heartbeatMembers: number;
  hostPolicies: number;
  l2Policies: number;
  pools: number;
  bgpPeers: number;
  bgpAdvertisements: number;
}

export interface KubernetesStatus {
  synced: boolean;
  resources: ReflectorStatus[];
  lastError?: string;
  eventsPosted: number;
}

const OUR_API_VERSION = 'nodewarden.io/v1alpha1';

export class KubernetesWatcher {
  readonly nodes: Reflector<NodeInfo>;
  readonly services: Reflector<ServiceInfo>;
  readonly endpointSlices: Reflector<EndpointCounts>;
  readonly heartbeats: Reflector<HeartbeatLease>;
  readonly hostPolicies: Reflector<HostPolicy[]>;
  private readonly l2: Reflector<L2AnnouncementPolicy>[];
  private readonly pools: Reflector<LoadBalancerPool>[];
  readonly bgpPeers: Reflector<ClusterBgpPeer>;
  readonly bgpAdvertisements: Reflector<BgpAdvertisementPolicy>;
  private readonly all: Reflector<unknown>[];
  private readonly reported = new Set<string>();
  private lastError: string | undefined;
  private eventsPosted = 0;
  /** Parts of `state()` by name, each with the version it was built at. */
  private readonly built = new Map<string, { version: number; value: unknown }>();

  constructor(private readonly options: KubernetesWatcherOptions) {
    const make = <T>(
      name: string,
      path: string,
      project: ReflectorOptions<T>['project'],
      selectors: { labelSelector?: string; fieldSelector?: string } = {},
      facets?: ReflectorOptions<T>['facets'],
    ) =>
      new Reflector<T>({
        name,
        client: options.client,
        path,
        project,
        ...selectors,
        ...(facets ? { facets } : {}),
        idleTimeoutMs: options.idleTimeoutMs,
        ...(options.backoffBaseMs !== undefined ? { backoffBaseMs: options.backoffBaseMs } : {}),
        ...(options.backoffMaxMs !== undefined ? { backoffMaxMs: options.backoffMaxMs } : {}),
        onChange: () => options.onChange?.(),
        onInvalid: (object, problems) => this.reportInvalid(object, problems),
        onValid: (object) => this.reportValid(object),
        onError: (error) => {
          this.lastError = error.message;
          options.onError?.(error);
        },
      });
    // Every node's labels (nodeSelectors of announcement policies) and addresses (remote-node).
    this.nodes = make('nodes', '/api/v1/nodes', projectNode);
    this.services = make('services', '/api/v1/services', projectService);
    this.endpointSlices = make(
      'endpointslices',
      '/apis/discovery.k8s.io/v1/endpointslices',
      projectEndpointSlice,
      {
        labelSelector: SERVICE_NAME_LABEL,
      },
    );
    this.heartbeats = make(
      'heartbeats',
      `/apis/coordination.k8s.io/v1/namespaces/${options.namespace}/leases`,
      projectHeartbeat,
      { labelSelector: HEARTBEAT_LABEL },
      { members: (h) => [h.node, h.holder, h.durationSeconds, h.interfacesUp] },
    );
    this.hostPolicies = make(
      'ciliumclusterwidenetworkpolicies',
      '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies',
      projectHostPolicy,
    );
    this.l2 = [
      make(
        'ciliuml2announcementpolicies',
        '/apis/cilium.io/v2alpha1/ciliuml2announcementpolicies',
        projectL2Policy,
      ),
      make('l2advertisements', '/apis/metallb.io/v1beta1/l2advertisements', projectL2Policy),
      make('l2announcements.nodewarden.io', '/apis/nodewarden.io/v1alpha1/l2announcements', projectL2Policy),
    ];
    this.pools = [
      make('ciliumloadbalancerippools', '/apis/cilium.io/v2alpha1/ciliumloadbalancerippools', projectPool),
      make('ipaddresspools', '/apis/metallb.io/v1beta1/ipaddresspools', projectPool),
      make('loadbalancerpools.nodewarden.io', '/apis/nodewarden.io/v1alpha1/loadbalancerpools', projectPool),
    ];
    this.bgpPeers = make('bgppeers', '/apis/metallb.io/v1beta2/bgppeers', projectBgpPeer);
    this.bgpAdvertisements = make(
      'bgpadvertisements',
      '/apis/metallb.io/v1beta1/bgpadvertisements',
      projectBgpAdvertisement,
    );
    this.all = [
      this.nodes,
      this.services,
      this.endpointSlices,
      this.heartbeats,
      this.hostPolicies,
      ...this.l2,
      ...this.pools,
      this.bgpPeers,
      this.bgpAdvertisements,
    ] as Reflector<unknown>[];
  }

  /** Every collection it lists and watches (RBAC must allow list and watch on each). */
  paths(): string[] {
    return this.all.map((r) => r.path);
  }

  start(): void {
    for (const r of this.all) r.start();
  }

  stop(): void {
    for (const r of this.all) r.stop();
  }

  async waitForSync(): Promise<void> {
    await Promise.all(this.all.map((r) => r.waitForSync()));
  }

  /** This node, every node and the API servers: the firewall's cluster identities, without the rest. */
  firewallFacts(): Pick<ClusterState, 'self' | 'nodes' | 'apiServers'> {
    const self = this.nodes.items.get(this.options.nodeName);
    return {
      ...(self ? { self } : {}),
      nodes: this.nodeList(),
      apiServers: this.apiServerEndpoints(),
    };
  }

  versions(): ClusterVersions {
    const sum = (reflectors: readonly Reflector<unknown>[]) => reflectors.reduce((n, r) => n + r.version, 0);
    return {
      nodes: this.nodes.version,
      services: this.services.version,
      endpointSlices: this.endpointSlices.version,
      heartbeatMembers: this.heartbeats.facetVersion('members'),
      hostPolicies: this.hostPolicies.version,
      l2Policies: sum(this.l2 as Reflector<unknown>[]),
      pools: sum(this.pools as Reflector<unknown>[]),
      bgpPeers: this.bgpPeers.version,
      bgpAdvertisements: this.bgpAdvertisements.version,
    };
  }

  /** A part of `state()`, rebuilt only after its reflectors' version moved. */
  private part<V>(name: string, version: number, build: () => V): V {
    const last = this.built.get(name);
    if (last?.version === version) return last.value as V;
    const value = build();
    this.built.set(name, { version, value });
    return value;
  }

  private nodeList(): NodeInfo[] {
    return this.part('nodes', this.nodes.version, () => [...this.nodes.items.values()]);
  }

  private apiServerEndpoints(): ClusterState['apiServers'] {
    return this.part('apiServers', this.endpointSlices.version, () =>
      [...this.endpointSlices.items.values()].flatMap((s) => (s.apiServers ? [s.apiServers] : [])),
    );
  }

  /**
   * The cluster as the planners see it. Each part is rebuilt only when its
   * reflectors changed (every consumer reads it after every change), so the
   * arrays and maps are shared between calls: read them, never modify them.
   */
  state(): ClusterState {
    const self = this.nodes.items.get(this.options.nodeName);
    const versions = this.versions();
    return {
      ...(self ? { self } : {}),
      nodes: this.nodeList(),
      services: this.part('services', versions.services, () => [...this.services.items.values()]),
      readyEndpoints: this.part('readyEndpoints', versions.endpointSlices, () =>
        readyEndpointsByService(this.endpointSlices.items.values()),
      ),
      apiServers: this.apiServerEndpoints(),
      heartbeats: this.part('heartbeats', this.heartbeats.version, () => [...this.heartbeats.items.values()]),
      hostPolicies: this.part('hostPolicies', versions.hostPolicies, () =>
        [...this.hostPolicies.items.values()].flat(),
      ),
      l2Policies: this.part('l2Policies', versions.l2Policies, () =>
        this.l2.flatMap((r) => [...r.items.values()]),
      ),
      pools: this.part('pools', versions.pools, () => this.pools.flatMap((r) => [...r.items.values()])),
      problems: this.part(
        'problems',
        this.all.reduce((n, r) => n + r.version, 0),
        () => this.all.flatMap((r) => [...r.invalid.values()].flat()),
      ),
    };
  }

  status(): KubernetesStatus {
    const resources = this.all.map((r) => r.status());
    return {
      synced: resources.every((r) => r.synced),
      resources,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      eventsPosted: this.eventsPosted,
    };
  }

  /**
   * Our own kinds carry a `Valid` condition in status. Every node validates the
   * same object the same way, so a node writes only when the condition it finds
   * differs (the first writer wins; the others then see it current).
   */
  private setValidCondition(object: KubeObject, valid: boolean, message: string): void {
    if (object.apiVersion !== OUR_API_VERSION) return;
    const generation = object.metadata?.generation;
    const current = ((object.status?.conditions ?? []) as KubeObject[]).find((c) => c.type === 'Valid');
    const status = valid ? 'True' : 'False';
    if (
      current?.status === status &&
      current.observedGeneration === generation &&
      current.message === message
    )
      return;
    const condition = {
      type: 'Valid',
      status,
      reason: valid ? 'Accepted' : 'InvalidSpec',
      message,
      observedGeneration: generation,
      lastTransitionTime:
        current?.status === status
          ? current.lastTransitionTime
          : new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    const plural = object.kind === 'L2Announcement' ? 'l2announcements' : 'loadbalancerpools';
    const others = ((object.status?.conditions ?? []) as KubeObject[]).filter((c) => c.type !== 'Valid');
    this.options.client
      .request('PATCH', `/apis/${OUR_API_VERSION}/${plural}/${object.metadata.name}/status`, {
        body: { status: { conditions: [...others, condition] } },
        contentType: 'application/merge-patch+json',
      })
      .catch((e: Error) => {
        this.lastError = `setting the Valid condition: ${e.message}`;
        this.options.onError?.(e);
      });
  }

  private reportValid(object: KubeObject): void {
    if (this.options.reportInvalid === false) return;
    this.setValidCondition(object, true, 'the spec is valid and in force');
  }

  /** A Warning Event on the object (and a condition on our kinds), naming each bad field; once per resourceVersion. */
  private reportInvalid(object: KubeObject, problems: InputProblem[]): void {
    if (this.options.reportInvalid === false) return;
    // Per generation: a status write (our own condition) must not repeat the Event.
    const key = `${object.metadata?.uid}/${object.metadata?.generation ?? object.metadata?.resourceVersion}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    const now = new Date().toISOString();
    const message = problems
      .map((p) => `${formatFieldPath(p.path)}: ${p.message}`)
      .join('; ')
      .concat('; the last valid version stays in force')
      .slice(0, 1024);
    this.setValidCondition(object, false, message);
    const namespace = object.metadata?.namespace ?? 'default';
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${object.metadata?.name}.`, namespace },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: object.metadata?.name,
        ...(object.metadata?.namespace ? { namespace: object.metadata.namespace } : {}),
        uid: object.metadata?.uid,
        resourceVersion: object.metadata?.resourceVersion,
      },
      reason: 'InvalidSpec',
      message,
      type: 'Warning',
      source: { component: 'nodewarden', host: this.options.nodeName },
      reportingComponent: 'nodewarden.io/agent',
      reportingInstance: this.options.nodeName,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.options.client
      .request('POST', `/api/v1/namespaces/${namespace}/events`, { body: event })
      .then(() => {
        this.eventsPosted++;
      })
      .catch((e: Error) => {
        this.lastError = `posting an Event: ${e.message}`;
        this.options.onError?.(e);
      });
  }
}
