/**
 * Which nodes are live, from their heartbeat Leases as this node observes them.
 *
 * Liveness is measured on this node's monotonic clock from the moment a
 * renewal was *seen*, as client-go's leader election does, so that clock skew
 * between nodes does not matter. A lease that is already older than its
 * duration when first seen (by its renewTime against our wall clock) counts as
 * expired, so a restarted daemon does not revive dead nodes for one expiry.
 */
import type { HeartbeatLease } from '../../model/cluster.js';

interface Seen {
  resourceVersion: string;
  seenAtMs: number;
  durationMs: number;
  holder: string;
}

export class HeartbeatLiveness {
  private readonly seen = new Map<string, Seen>();

  /** Feed the current set of heartbeat leases; `nowMs` is monotonic, `wallNowMs` is Date.now(). */
  observe(leases: Iterable<HeartbeatLease>, nowMs: number, wallNowMs: number): void {
    const present = new Set<string>();
    for (const lease of leases) {
      present.add(lease.node);
      const before = this.seen.get(lease.node);
      if (before?.resourceVersion === lease.resourceVersion) continue;
      const durationMs = lease.durationSeconds * 1000;
      // First sight: trust the renewTime only to age the lease, never to make it younger than now.
      const age = before ? 0 : Math.max(0, wallNowMs - lease.renewTimeMs);
      this.seen.set(lease.node, {
        resourceVersion: lease.resourceVersion,
        seenAtMs: nowMs - age,
        durationMs,
        holder: lease.holder,
      });
    }
    for (const node of [...this.seen.keys()]) if (!present.has(node)) this.seen.delete(node);
  }

  /** Nodes whose last observed renewal is younger than their lease duration. */
  live(nowMs: number): Set<string> {
    const out = new Set<string>();
    for (const [node, s] of this.seen) {
      if (s.holder === node && nowMs < s.seenAtMs + s.durationMs) out.add(node);
    }
    return out;
  }

  /** When the next node would expire if nothing changes (to schedule a recheck), or undefined. */
  nextExpiry(nowMs: number): number | undefined {
    let next: number | undefined;
    for (const s of this.seen.values()) {
      const at = s.seenAtMs + s.durationMs;
      if (at > nowMs && (next === undefined || at < next)) next = at;
    }
    return next;
  }
}
