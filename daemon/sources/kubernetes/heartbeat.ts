/**
 * This node's heartbeat: one Lease, `nodewarden-node-<node>`, renewed every
 * `renewIntervalMs` with a PUT that carries the last resourceVersion (409 on a
 * stale one: read it again and retry once). One write per node per interval,
 * whatever the number of services.
 *
 * A failed renewal is retried after a quarter of the interval, so that the
 * lease survives one lost request within its expiry.
 *
 * Self-fencing: the node holds its lease until `expirySeconds` after the start
 * of its last successful renewal. Observers count expiry from when they *saw*
 * that renewal, which is later, so this node stops announcing before anyone
 * else starts.
 */
import type { KubeApiError, KubeClient, KubeObject } from './client.js';
import { HEARTBEAT_LABEL, HEARTBEAT_PREFIX, INTERFACES_UP_ANNOTATION } from './projections.js';

export interface HeartbeatOptions {
  /** A client of its own, so that list bursts of the watcher never delay a renewal. */
  client: KubeClient;
  namespace: string;
  nodeName: string;
  renewIntervalMs: number;
  expirySeconds: number;
  /** Interfaces up on this node, published with each renewal. */
  interfacesUp?(): string[];
  onError?(error: Error): void;
  /** Called when the node gains or loses its lease. */
  onHoldingChange?(holding: boolean): void;
  /** Called after each successful renewal: the lease certainly holds for `validForMs` more. */
  onRenewed?(validForMs: number): void;
}

export interface HeartbeatStatus {
  lease: string;
  holding: boolean;
  renewals: number;
  conflicts: number;
  failures: number;
  lastError?: string;
}

/** After a failed renewal: a quarter of the interval, at least 100 ms. */
export const retryIntervalMs = (renewIntervalMs: number) => Math.max(100, Math.round(renewIntervalMs / 4));

/** Lease renewTime is a MicroTime: RFC 3339 with microseconds. */
const microTime = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class Heartbeat {
  private resourceVersion: string | undefined;
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private fenceTimer: NodeJS.Timeout | undefined;
  private running = false;
  private holding = false;
  private readonly stats = { renewals: 0, conflicts: 0, failures: 0 };
  private lastError: string | undefined;
  readonly leaseName: string;
  private readonly path: string;
  private attempted: () => void = () => {};
  /** Settles after the first renewal attempt, whether it succeeded or not. */
  readonly firstAttempt = new Promise<void>((resolve) => {
    this.attempted = resolve;
  });

  constructor(private readonly options: HeartbeatOptions) {
    this.leaseName = `${HEARTBEAT_PREFIX}${options.nodeName}`;
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${options.namespace}/leases`;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  /** Stops renewing. With `release`, deletes the lease so that others take over at once. */
  async stop({ release = false } = {}): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.validUntil = 0;
    this.updateHolding();
    clearTimeout(this.fenceTimer);
    if (release) {
      await this.options.client
        .request('DELETE', `${this.path}/${this.leaseName}`, { timeoutMs: this.options.renewIntervalMs * 2 })
        .catch(() => undefined);
    }
  }

  /** True while this node's own lease is certainly unexpired: announce only then. */
  holds(nowMs = performance.now()): boolean {
    return nowMs < this.validUntil;
  }

  status(): HeartbeatStatus {
    return {
      lease: `${this.options.namespace}/${this.leaseName}`,
      holding: this.holds(),
      ...this.stats,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const started = performance.now();
      const renewed = await this.renew();
      // A failed renewal is retried sooner: one lost request must not cost the lease.
      const interval = renewed ? this.options.renewIntervalMs : retryIntervalMs(this.options.renewIntervalMs);
      const wait = Math.max(0, interval - (performance.now() - started));
      await new Promise<void>((resolve) => {
        this.timer = setTimeout(resolve, wait);
      });
    }
  }

  private body(): KubeObject {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.leaseName,
        namespace: this.options.namespace,
        labels: { [HEARTBEAT_LABEL]: 'true' },
        annotations: { [INTERFACES_UP_ANNOTATION]: (this.options.interfacesUp?.() ?? []).join(',') },
        ...(this.resourceVersion ? { resourceVersion: this.resourceVersion } : {}),
      },
      spec: {
        holderIdentity: this.options.nodeName,
        leaseDurationSeconds: this.options.expirySeconds,
        renewTime: microTime(Date.now()),
      },
    };
  }

  /** True when the lease was written. */
  private async renew(): Promise<boolean> {
    const sentAt = performance.now();
    const timeoutMs = this.options.expirySeconds * 1000;
    try {
      let saved: KubeObject;
      try {
        saved = await this.write(timeoutMs);
      } catch (e) {
        const code = (e as KubeApiError).code;
        if (code !== 409) throw e;
        // Someone else wrote it (an operator, or our own earlier write that timed out): read and retry once.
        this.stats.conflicts++;
        const current = await this.options.client.request('GET', `${this.path}/${this.leaseName}`, {
          timeoutMs,
        });
        this.resourceVersion = current.metadata.resourceVersion;
        saved = await this.write(timeoutMs);
      }
      this.resourceVersion = saved.metadata.resourceVersion;
      this.stats.renewals++;
      this.validUntil = sentAt + this.options.expirySeconds * 1000;
      this.lastError = undefined;
      this.options.onRenewed?.(this.validUntil - performance.now());
    } catch (e) {
      this.stats.failures++;
      this.lastError = (e as Error).message;
      this.options.onError?.(e as Error);
      this.updateHolding();
      this.attempted();
      return false;
    }
    this.updateHolding();
    this.attempted();
    return true;
  }

  private async write(timeoutMs: number): Promise<KubeObject> {
    const { client } = this.options;
    if (this.resourceVersion === undefined) {
      try {
        return await client.request('POST', this.path, { body: this.body(), timeoutMs });
      } catch (e) {
        if ((e as KubeApiError).code !== 409) throw e;
        // It exists (a previous run of this node): take it over from its current version.
        const current = await client.request('GET', `${this.path}/${this.leaseName}`, { timeoutMs });
        this.resourceVersion = current.metadata.resourceVersion;
      }
    }
    try {
      return await client.request('PUT', `${this.path}/${this.leaseName}`, { body: this.body(), timeoutMs });
    } catch (e) {
      if ((e as KubeApiError).code === 404) {
        this.resourceVersion = undefined; // deleted under us: create it again next time
      }
      throw e;
    }
  }

  /** Calls onHoldingChange on each change, including the moment the lease expires without a renewal. */
  private updateHolding(): void {
    const now = performance.now();
    const holding = this.holds(now);
    if (holding !== this.holding) {
      this.holding = holding;
      this.options.onHoldingChange?.(holding);
    }
    clearTimeout(this.fenceTimer);
    if (holding) this.fenceTimer = setTimeout(() => this.updateHolding(), this.validUntil - now + 1);
  }
}
