/**
 * Pure planning of L2 announcements: which (IP, interface) pairs this node
 * answers for, from the announcements, the IPs it owns now and the facts about
 * its interfaces. The actuator (announcers/l2/actuator.ts) makes the responder
 * map match and sends the gratuitous frames.
 */
import { canonicalIp } from './addresses.js';
import type { InterfaceFacts, L2Announcement } from './model.js';

export interface L2PlannedEntry {
  ip: string;
  ifname: string;
  ifindex: number;
  mac: string;
  /** Set on the extra key of a bond member: requests arrive with its ifindex; nothing is sent through it. */
  viaMember?: true;
}

export type L2IpState = 'announced' | 'not-owned' | 'no-interface';

export interface L2IpPlan {
  ip: string;
  state: L2IpState;
  /** Interfaces it is announced on (state announced). */
  interfaces: string[];
  /** Why it is not announced anywhere. */
  reason?: string;
}

export interface L2InterfacePlan {
  name: string;
  /** Usable and matched by some announcement: the responder runs here. */
  announcing: boolean;
  /** Why a matched interface is skipped. */
  skipped?: string;
}

export interface L2Plan {
  entries: L2PlannedEntry[];
  ips: L2IpPlan[];
  /** Interfaces matched by at least one announcement's patterns. */
  interfaces: L2InterfacePlan[];
  /** Where the XDP responder belongs: every usable matched interface, owned IPs or not, so a move never re-attaches. */
  devices: string[];
}

/** Why an interface cannot announce, or undefined if it can. */
export function skipReason(facts: InterfaceFacts): string | undefined {
  if (!facts.ethernet) return 'no Ethernet address (L3-only device)';
  if (facts.bondSlave) return 'bond member (its bond announces)';
  if (facts.noarp) return 'NOARP';
  if (!facts.up) return 'down';
  return undefined;
}

export function matchesAny(patterns: readonly RegExp[], name: string): boolean {
  return patterns.some((p) => p.test(name));
}

export function planL2(
  announcements: readonly L2Announcement[],
  owned: ReadonlySet<string>,
  interfaces: readonly InterfaceFacts[],
): L2Plan {
  const byName = [...interfaces].sort((a, b) => a.name.localeCompare(b.name));
  const usable = new Map(byName.filter((f) => !skipReason(f)).map((f) => [f.name, f]));
  const ownedCanonical = new Set([...owned].map(canonicalIp));
  const matched = new Set<string>();
  const perIp = new Map<string, Set<string>>();
  const entries: L2PlannedEntry[] = [];

  for (const announcement of announcements) {
    const patterns = announcement.interfaces.map((p) => new RegExp(p));
    const names = byName.filter((f) => matchesAny(patterns, f.name)).map((f) => f.name);
    for (const name of names) matched.add(name);
    for (const raw of announcement.ips) {
      const ip = canonicalIp(raw);
      const on = perIp.get(ip) ?? new Set<string>();
      perIp.set(ip, on);
      for (const name of names) if (usable.has(name)) on.add(name);
    }
  }

  const ips: L2IpPlan[] = [];
  for (const [ip, on] of [...perIp].sort(([a], [b]) => a.localeCompare(b))) {
    if (!ownedCanonical.has(ip)) {
      ips.push({ ip, state: 'not-owned', interfaces: [], reason: 'another node owns it' });
      continue;
    }
    if (on.size === 0) {
      ips.push({
        ip,
        state: 'no-interface',
        interfaces: [],
        reason: 'no usable interface matches its patterns',
      });
      continue;
    }
    const names = [...on].sort();
    ips.push({ ip, state: 'announced', interfaces: names });
    for (const name of names) {
      const f = usable.get(name)!;
      entries.push({ ip, ifname: name, ifindex: f.ifindex, mac: f.mac });
      for (const member of f.members ?? [])
        entries.push({ ip, ifname: name, ifindex: member, mac: f.mac, viaMember: true });
    }
  }

  const interfacePlans = byName
    .filter((f) => matched.has(f.name))
    .map((f) => {
      const skipped = skipReason(f);
      return skipped ? { name: f.name, announcing: false, skipped } : { name: f.name, announcing: true };
    });
  return {
    entries,
    ips,
    interfaces: interfacePlans,
    devices: interfacePlans.filter((i) => i.announcing).map((i) => i.name),
  };
}

export interface LiveEntry {
  ip: string;
  ifindex: number;
  mac: string;
}

export interface L2Changes {
  add: L2PlannedEntry[];
  /** Same key, different MAC (the interface's address changed). */
  update: L2PlannedEntry[];
  remove: LiveEntry[];
}

const keyOf = (e: { ip: string; ifindex: number }) => `${e.ifindex}/${e.ip}`;

/** The difference between what the responder map holds and the plan. */
export function diffL2(live: readonly LiveEntry[], planned: readonly L2PlannedEntry[]): L2Changes {
  const liveByKey = new Map(live.map((e) => [keyOf(e), e]));
  const plannedKeys = new Set(planned.map(keyOf));
  const add: L2PlannedEntry[] = [];
  const update: L2PlannedEntry[] = [];
  for (const entry of planned) {
    const existing = liveByKey.get(keyOf(entry));
    if (!existing) add.push(entry);
    else if (existing.mac !== entry.mac) update.push(entry);
  }
  return { add, update, remove: live.filter((e) => !plannedKeys.has(keyOf(e))) };
}
