/**
 * Ownership as this node sees it: the heartbeat leases it watches give the live
 * nodes, its own heartbeat says whether it may claim anything (self-fencing),
 * and the rendezvous planner picks each IP's owner.
 */
import { HeartbeatLiveness } from '../../../announcers/ownership/liveness.js';
import { type AnnouncedIP, planOwnership } from '../../../announcers/ownership/rendezvous.js';
import type { HeartbeatLease } from '../../../model/cluster.js';
import type { Heartbeat } from './heartbeat.js';
import type { Reflector } from './reflector.js';

export interface ClusterOwnershipOptions {
  nodeName: string;
  heartbeat: Heartbeat;
  leases: Reflector<HeartbeatLease>;
  /** Called when the live set may have changed without a watch event (a lease expired). */
  onChange?(): void;
}

export class ClusterOwnership {
  private readonly liveness = new HeartbeatLiveness();
  private expiryTimer: NodeJS.Timeout | undefined;
  private live = { key: '', version: 0 };

  constructor(private readonly options: ClusterOwnershipOptions) {}

  /** Feed after each change of the leases reflector. */
  observe(): void {
    this.liveness.observe(this.options.leases.items.values(), performance.now(), Date.now());
    this.scheduleExpiryCheck();
  }

  /** Live nodes; this node only while its own lease is certainly valid. */
  liveNodes(nowMs = performance.now()): Set<string> {
    this.liveness.observe(this.options.leases.items.values(), nowMs, Date.now());
    const live = this.liveness.live(nowMs);
    if (this.options.heartbeat.holds(nowMs)) live.add(this.options.nodeName);
    else live.delete(this.options.nodeName);
    return live;
  }

  /**
   * Bumped when the live set differs from the one the previous call saw: a
   * renewal moves it only when it brings a node back, an expiry when it drops one.
   */
  liveVersion(nowMs = performance.now()): number {
    const key = [...this.liveNodes(nowMs)].sort().join(',');
    if (key !== this.live.key) this.live = { key, version: this.live.version + 1 };
    return this.live.version;
  }

  /** Every IP's owner, as this node sees it. */
  owners(ips: readonly AnnouncedIP[], nowMs = performance.now()): Map<string, string> {
    return planOwnership(ips, this.liveNodes(nowMs));
  }

  /** The IPs this node should announce now. */
  mine(ips: readonly AnnouncedIP[], nowMs = performance.now()): string[] {
    const out: string[] = [];
    for (const [ip, owner] of this.owners(ips, nowMs)) if (owner === this.options.nodeName) out.push(ip);
    return out;
  }

  stop(): void {
    clearTimeout(this.expiryTimer);
  }

  private scheduleExpiryCheck(): void {
    clearTimeout(this.expiryTimer);
    const now = performance.now();
    const next = this.liveness.nextExpiry(now);
    if (next === undefined) return;
    this.expiryTimer = setTimeout(
      () => {
        this.options.onChange?.();
        this.scheduleExpiryCheck();
      },
      next - now + 1,
    );
  }
}
