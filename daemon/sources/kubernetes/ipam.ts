/**
 * The LoadBalancer IPAM actuator: one allocator at a time, chosen through the
 * Lease `nodewarden-ipam`, writes `status.loadBalancer.ingress` of our
 * Services from the pure planner (announcers/ipam/plan.ts).
 *
 * No double assignment across failover:
 * - the planner never gives an address that a Service's status already holds;
 * - a new allocator lists the Services afresh before its first write, so it
 *   sees every write of the previous one;
 * - an allocator writes only while its lease is certainly valid, minus one
 *   renew interval of margin, and a new one takes over only after it saw the
 *   lease unrenewed for the whole lease duration.
 */
import { type IpamPlan, type IpamService, planIpam } from '../../../announcers/ipam/plan.js';
import type { ServiceInfo } from '../../../model/cluster.js';
import type { KubeApiError, KubeClient, KubeObject } from './client.js';
import { projectService } from './projections.js';
import type { ClusterState } from './watcher.js';

export interface IpamOptions {
  client: KubeClient;
  namespace: string;
  nodeName: string;
  renewIntervalMs: number;
  expirySeconds: number;
  /** Services of this loadBalancerClass are ours, and those without one when `unclassed`. */
  className: string;
  unclassed: boolean;
  state(): ClusterState;
  synced(): boolean;
  onError?(error: Error): void;
}

export interface IpamStatus {
  leader: boolean;
  assigned: number;
  writes: number;
  problems: string[];
  lastError?: string;
}

export const IPAM_LEASE = 'nodewarden-ipam';

const REQUESTED_IPS = [
  'metallb.universe.tf/loadBalancerIPs',
  'metallb.io/loadBalancerIPs',
  'lbipam.cilium.io/ips',
];
const REQUESTED_POOL = ['metallb.universe.tf/address-pool', 'metallb.io/address-pool'];
const SHARING_KEY = [
  'metallb.universe.tf/allow-shared-ip',
  'metallb.io/allow-shared-ip',
  'lbipam.cilium.io/sharing-key',
];

const first = (a: Readonly<Record<string, string>>, keys: readonly string[]) =>
  keys.map((k) => a[k]).find((v) => v !== undefined && v !== '');

/** The planner's view of one Service: its requests from spec and the annotations users know. */
export function ipamServiceOf(s: ServiceInfo): IpamService {
  const listed = first(s.annotations, REQUESTED_IPS);
  const requested = [
    ...(s.requestedIP ? [s.requestedIP] : []),
    ...(listed ? listed.split(',').map((ip) => ip.trim()) : []),
  ].filter((ip, i, all) => ip !== '' && all.indexOf(ip) === i);
  const pool = first(s.annotations, REQUESTED_POOL);
  const sharingKey = first(s.annotations, SHARING_KEY);
  return {
    key: `${s.namespace}/${s.name}`,
    labels: s.labels,
    current: s.ingressIPs,
    requested,
    ...(pool ? { pool } : {}),
    ...(sharingKey ? { sharingKey } : {}),
  };
}

export class IpamController {
  private validUntil = 0;
  private seen: { rv: string; atMs: number } | undefined;
  private freshNeeded = true;
  /** Writes not yet seen through the watch: service key → addresses. */
  private readonly inFlight = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private lastPlan: IpamPlan | undefined;
  private writes = 0;
  private lastError: string | undefined;
  private readonly leasePath: string;

  constructor(private readonly options: IpamOptions) {
    this.leasePath = `/apis/coordination.k8s.io/v1/namespaces/${options.namespace}/leases`;
  }

  start(): void {
    this.running = true;
    void this.loop();
  }

  stop(): void {
    this.running = false;
    this.validUntil = 0;
    clearTimeout(this.timer);
  }

  leader(nowMs = performance.now()): boolean {
    return nowMs < this.validUntil;
  }

  status(): IpamStatus {
    return {
      leader: this.leader(),
      assigned: [...(this.lastPlan?.assignments.values() ?? [])].filter((ips) => ips.length > 0).length,
      writes: this.writes,
      problems: (this.lastPlan?.problems ?? []).map((p) => `${p.object}: ${p.message}`),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  private fail(e: Error): void {
    this.lastError = e.message;
    this.options.onError?.(e);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const started = performance.now();
      try {
        await this.elect();
        if (this.leader() && this.options.synced()) await this.reconcile();
      } catch (e) {
        this.fail(e as Error);
      }
      const wait = Math.max(0, this.options.renewIntervalMs - (performance.now() - started));
      await new Promise<void>((resolve) => {
        this.timer = setTimeout(resolve, wait);
      });
    }
  }

  private leaseBody(rv: string | undefined): KubeObject {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: IPAM_LEASE,
        namespace: this.options.namespace,
        ...(rv ? { resourceVersion: rv } : {}),
      },
      spec: {
        holderIdentity: this.options.nodeName,
        leaseDurationSeconds: this.options.expirySeconds,
        renewTime: new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'),
      },
    };
  }

  private async elect(): Promise<void> {
    const { client } = this.options;
    const sentAt = performance.now();
    const timeoutMs = this.options.expirySeconds * 1000;
    const wasLeader = this.leader(sentAt);
    let current: KubeObject | undefined;
    try {
      current = await client.request('GET', `${this.leasePath}/${IPAM_LEASE}`, { timeoutMs });
    } catch (e) {
      if ((e as KubeApiError).code !== 404) throw e;
    }
    try {
      if (!current) {
        await client.request('POST', this.leasePath, { body: this.leaseBody(undefined), timeoutMs });
      } else if (current.spec?.holderIdentity === this.options.nodeName) {
        await client.request('PUT', `${this.leasePath}/${IPAM_LEASE}`, {
          body: this.leaseBody(current.metadata.resourceVersion),
          timeoutMs,
        });
      } else {
        // Someone else's: take it only after seeing it unrenewed for its whole duration, on our clock.
        const rv = current.metadata.resourceVersion;
        let seen = this.seen;
        if (seen === undefined || seen.rv !== rv) seen = { rv, atMs: sentAt };
        this.seen = seen;
        const durationMs = Number(current.spec?.leaseDurationSeconds ?? this.options.expirySeconds) * 1000;
        if (sentAt - seen.atMs < durationMs) {
          this.validUntil = 0;
          return;
        }
        await client.request('PUT', `${this.leasePath}/${IPAM_LEASE}`, {
          body: this.leaseBody(rv),
          timeoutMs,
        });
      }
    } catch (e) {
      const code = (e as KubeApiError).code;
      if (code === 409) {
        this.validUntil = 0; // another node won the race
        return;
      }
      throw e;
    }
    this.validUntil = sentAt + this.options.expirySeconds * 1000;
    if (!wasLeader) {
      this.freshNeeded = true;
      this.inFlight.clear();
    }
  }

  /** May this allocator still write? Its lease is valid for at least one more renew interval. */
  private writable(): boolean {
    return performance.now() < this.validUntil - this.options.renewIntervalMs;
  }

  private ours(s: ServiceInfo): boolean {
    return s.loadBalancerClass === undefined
      ? this.options.unclassed
      : s.loadBalancerClass === this.options.className;
  }

  /** Every Service as the API has it now (a new allocator must see the previous one's last writes). */
  private async freshServices(): Promise<ServiceInfo[]> {
    const out: ServiceInfo[] = [];
    let cont: string | undefined;
    do {
      const page = await this.options.client.request('GET', '/api/v1/services', {
        query: { limit: '500', continue: cont },
      });
      for (const item of page.items ?? []) {
        const p = projectService(item);
        if (p.ok === true) out.push(p.value);
      }
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  private async reconcile(): Promise<void> {
    const state = this.options.state();
    let services = state.services;
    if (this.freshNeeded) {
      services = await this.freshServices();
      this.freshNeeded = false;
    }
    const mine = services.filter((s) => this.ours(s)).map(ipamServiceOf);
    const byKey = new Map(mine.map((s) => [s.key, s]));
    for (const [key, ips] of [...this.inFlight]) {
      const s = byKey.get(key);
      if (!s || same(s.current, ips)) this.inFlight.delete(key);
      else byKey.set(key, { ...s, current: ips });
    }
    const plan = planIpam(state.pools, [...byKey.values()]);
    this.lastPlan = plan;
    for (const [key, ips] of plan.assignments) {
      const s = byKey.get(key)!;
      if (same(s.current, ips)) continue;
      if (!this.writable()) return;
      const [namespace, name] = key.split('/');
      try {
        await this.options.client.request(
          'PATCH',
          `/api/v1/namespaces/${namespace}/services/${name}/status`,
          {
            body: { status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } } },
            contentType: 'application/merge-patch+json',
            timeoutMs: this.options.renewIntervalMs,
          },
        );
        this.writes++;
        this.inFlight.set(key, ips);
      } catch (e) {
        if ((e as KubeApiError).code !== 404) this.fail(e as Error);
      }
    }
  }
}

function same(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
