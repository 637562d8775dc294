/**
 * Routes received from one peer: counted and kept for display (prefix, next
 * hop, AS path), never installed. We are an announcer.
 */
import { flattenAsPath, type UpdateMessage } from './codec/update.js';
import type { Family, ReceivedRoute } from './types.js';

interface Entry {
  nextHop: string;
  asPath: number[];
}

export class RibIn {
  private readonly routes = new Map<string, Entry>();

  get size(): number {
    return this.routes.size;
  }

  clear(): void {
    this.routes.clear();
  }

  /** Applies an UPDATE; routes of families not negotiated are ignored. */
  apply(u: UpdateMessage, families: readonly Family[], fourOctetAs: boolean): void {
    const v4 = families.includes('ipv4-unicast');
    if (v4) for (const p of u.withdrawn) this.routes.delete(p);
    if (u.mpUnreach && families.includes(u.mpUnreach.family)) {
      for (const p of u.mpUnreach.withdrawn) this.routes.delete(p);
    }
    const reach = u.mpReach && families.includes(u.mpReach.family) ? u.mpReach : undefined;
    if (u.treatAsWithdraw) {
      // RFC 7606 2: the routes of a malformed UPDATE are handled as withdrawn.
      if (v4) for (const p of u.nlri) this.routes.delete(p);
      for (const p of reach?.nlri ?? []) this.routes.delete(p);
      return;
    }
    if ((!v4 || u.nlri.length === 0) && !reach) return;
    const asPath = flattenAsPath(u.attributes, fourOctetAs);
    if (v4 && u.nlri.length > 0) {
      const entry = { nextHop: u.attributes.nextHop ?? '', asPath };
      for (const p of u.nlri) this.routes.set(p, entry);
    }
    if (reach) {
      const entry = { nextHop: reach.nextHops[0] ?? '', asPath };
      for (const p of reach.nlri) this.routes.set(p, entry);
    }
  }

  list(): ReceivedRoute[] {
    return [...this.routes].map(([prefix, e]) => ({ prefix, nextHop: e.nextHop, asPath: e.asPath }));
  }
}
