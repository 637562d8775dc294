/**
 * Pods for fromEndpoints/toEndpoints: one list+watch per distinct endpoint
 * selector of the host policies in force, narrowed server-side by the
 * selector's labels (and its namespace when it names one), re-planned whenever
 * the policies change. Only name, namespace, labels and addresses are kept.
 */
import { isIP } from 'node:net';
import {
  type PodAddresses,
  type PodWatchPlan,
  podWatchPlans,
  resolveEndpoints,
} from '../../../host-policies/endpoints.js';
import type { HostPolicy } from '../../../host-policies/model.js';
import type { KubeClient, KubeObject } from './client.js';
import { type Projection, Reflector } from './reflector.js';

/**
 * A running pod's addresses. Finished pods (their IPs are free for reuse) and
 * hostNetwork pods are skipped: a hostNetwork pod's "IP" is its node's, and, as
 * in Cilium, it is the host or remote-node identity, never an endpoint.
 */
export function projectPod(o: KubeObject): Projection<PodAddresses> {
  const phase = o.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed' || o.spec?.hostNetwork === true) return { ok: 'skip' };
  const listed = ((o.status?.podIPs ?? []) as KubeObject[]).map((p) => String(p.ip));
  if (listed.length === 0 && o.status?.podIP) listed.push(String(o.status.podIP));
  return {
    ok: true,
    value: {
      namespace: String(o.metadata.namespace),
      name: String(o.metadata.name),
      labels: { ...(o.metadata.labels ?? {}) },
      addresses: [...new Set(listed.filter((a) => isIP(a) !== 0))],
    },
  };
}

/** Where the pods of one selector are listed and watched (RBAC: list and watch pods cluster-wide). */
export function podsPath(namespace?: string): string {
  return namespace ? `/api/v1/namespaces/${namespace}/pods` : '/api/v1/pods';
}

export interface PodSelectorStatus {
  selector: string;
  namespace?: string;
  synced: boolean;
  pods: number;
  addresses: number;
  /** Such as the API server rejecting the selector. */
  lastError?: string;
}

export interface PodWatchesOptions {
  client: KubeClient;
  idleTimeoutMs: number;
  onChange(): void;
  onError(error: Error): void;
}

export class PodWatches {
  private readonly watches = new Map<string, { plan: PodWatchPlan; reflector: Reflector<PodAddresses> }>();
  private changes = 0;

  constructor(private readonly options: PodWatchesOptions) {}

  /** Bumped when a watch starts or stops, lists, or sees a pod's projection change. */
  get version(): number {
    return this.changes;
  }

  /** Starts the watches the policies need and stops the others. */
  plan(policies: readonly HostPolicy[]): void {
    const plans = podWatchPlans(policies);
    const wanted = new Set(plans.map((p) => p.key));
    for (const [key, watch] of this.watches) {
      if (wanted.has(key)) continue;
      watch.reflector.stop();
      this.watches.delete(key);
      this.changes++;
    }
    for (const plan of plans) {
      if (this.watches.has(plan.key)) continue;
      const path = podsPath(plan.namespace);
      let seen = 0;
      const reflector = new Reflector<PodAddresses>({
        name: `pods(${plan.key})`,
        client: this.options.client,
        path,
        ...(plan.labelSelector ? { labelSelector: plan.labelSelector } : {}),
        project: projectPod,
        idleTimeoutMs: this.options.idleTimeoutMs,
        onChange: () => {
          if (reflector.version !== seen) {
            seen = reflector.version;
            this.changes++;
          }
          this.options.onChange();
        },
        onError: (error) => this.options.onError(error),
      });
      this.watches.set(plan.key, { plan, reflector });
      this.changes++;
      reflector.start();
    }
  }

  /** Each watched selector's addresses, by selector key (none while its watch has not listed yet). */
  resolved(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [key, { plan, reflector }] of this.watches)
      out[key] = resolveEndpoints(plan.selector, reflector.items.values());
    return out;
  }

  /** Whether every watch has completed its first list. */
  synced(): boolean {
    return [...this.watches.values()].every(({ reflector }) => reflector.status().synced);
  }

  status(): PodSelectorStatus[] {
    return [...this.watches.values()].map(({ plan, reflector }) => {
      const s = reflector.status();
      return {
        selector: plan.key,
        ...(plan.namespace ? { namespace: plan.namespace } : {}),
        synced: s.synced,
        pods: s.objects,
        addresses: resolveEndpoints(plan.selector, reflector.items.values()).length,
        ...(s.lastError ? { lastError: s.lastError } : {}),
      };
    });
  }

  stop(): void {
    for (const { reflector } of this.watches.values()) reflector.stop();
    this.watches.clear();
  }
}
