/**
 * LoadBalancer IPAM as a pure function: from the pools and the Services (with
 * the addresses their status already carries) to the addresses each Service
 * should have. Existing assignments stay unless they became invalid; requests
 * (`spec.loadBalancerIP`, the MetalLB and Cilium annotations) come next; then
 * each Service without an address gets the first free one of the first pool
 * that may serve it. An address is never given to two Services unless they
 * share a sharing key.
 */
import { isIP } from 'node:net';
import type { LabelSelector } from '../../host-policies/model.js';
import { formatAddress, isV4Mapped, parsePrefix } from '../../host-policies/prefix.js';
import { matchesLabels } from '../../host-policies/selector.js';

export interface IpamPool {
  /** `Kind/name` or `Kind/namespace/name`; the last segment is the name requests use. */
  id: string;
  ranges: readonly string[];
  serviceSelector?: LabelSelector;
  autoAssign: boolean;
  avoidBuggyIPs: boolean;
  disabled: boolean;
}

export interface IpamService {
  /** namespace/name */
  key: string;
  labels: Readonly<Record<string, string>>;
  /** Addresses in status.loadBalancer.ingress now. */
  current: readonly string[];
  /** Specific addresses asked for. */
  requested: readonly string[];
  /** A pool asked for by name. */
  pool?: string;
  /** Services with the same key may share an address. */
  sharingKey?: string;
}

export interface IpamProblem {
  object: string;
  message: string;
}

export interface IpamPlan {
  /** Every Service's addresses (empty: none could be given). */
  assignments: Map<string, string[]>;
  problems: IpamProblem[];
}

export interface Range {
  lo: bigint;
  hi: bigint;
  v6: boolean;
}

interface ParsedPool extends IpamPool {
  name: string;
  parsed: Range[];
}

/** An address in the 128-bit space of host-policies/prefix.ts (IPv4 as IPv4-mapped). */
export function ipToBigInt(ip: string): { value: bigint; v6: boolean } | undefined {
  if (isIP(ip) === 0) return undefined;
  const p = parsePrefix(ip);
  return { value: p.addr, v6: !isV4Mapped(p) };
}

export function bigIntToIp(value: bigint): string {
  return formatAddress(value);
}

export function parseRange(text: string): Range | undefined {
  if (text.includes('/')) {
    if (isIP(text.split('/')[0] ?? '') === 0) return undefined;
    const p = parsePrefix(text);
    return { lo: p.addr, hi: p.addr + (1n << BigInt(128 - p.len)) - 1n, v6: !isV4Mapped(p) };
  }
  const [a, b] = text.split('-');
  const lo = ipToBigInt((a ?? '').trim());
  const hi = ipToBigInt((b ?? a ?? '').trim());
  if (!lo || !hi || lo.v6 !== hi.v6 || hi.value < lo.value) return undefined;
  return { lo: lo.value, hi: hi.value, v6: lo.v6 };
}

const buggy = (value: bigint, v6: boolean) => !v6 && ((value & 0xffn) === 0n || (value & 0xffn) === 255n);

function parsePools(pools: readonly IpamPool[], problems: IpamProblem[]): ParsedPool[] {
  const out: ParsedPool[] = [];
  for (const pool of [...pools].sort((a, b) => a.id.localeCompare(b.id))) {
    const parsed: Range[] = [];
    for (const r of pool.ranges) {
      const range = parseRange(r);
      if (range) parsed.push(range);
      else
        problems.push({ object: pool.id, message: `range ${r} is not a CIDR or first-last of one family` });
    }
    out.push({ ...pool, name: pool.id.split('/').at(-1)!, parsed });
  }
  // Overlapping pools: flagged on both; the used-address set still prevents double assignment.
  for (let i = 0; i < out.length; i++) {
    for (let j = i + 1; j < out.length; j++) {
      const a = out[i]!;
      const b = out[j]!;
      const overlap = a.parsed.some((x) =>
        b.parsed.some((y) => x.v6 === y.v6 && x.lo <= y.hi && y.lo <= x.hi),
      );
      if (overlap) {
        problems.push({ object: a.id, message: `overlaps ${b.id}` });
        problems.push({ object: b.id, message: `overlaps ${a.id}` });
      }
    }
  }
  return out;
}

function poolsFor(service: IpamService, pools: readonly ParsedPool[], explicit: boolean): ParsedPool[] {
  return pools.filter(
    (p) =>
      !p.disabled &&
      (service.pool === undefined ? explicit || p.autoAssign : p.name === service.pool) &&
      (!p.serviceSelector || matchesLabels(p.serviceSelector, service.labels)),
  );
}

function inPools(ip: string, pools: readonly ParsedPool[]): boolean {
  const v = ipToBigInt(ip);
  if (!v) return false;
  return pools.some((p) =>
    p.parsed.some(
      (r) =>
        r.v6 === v.v6 && r.lo <= v.value && v.value <= r.hi && !(p.avoidBuggyIPs && buggy(v.value, v.v6)),
    ),
  );
}

export function planIpam(pools: readonly IpamPool[], services: readonly IpamService[]): IpamPlan {
  const problems: IpamProblem[] = [];
  const parsed = parsePools(pools, problems);
  const sorted = [...services].sort((a, b) => a.key.localeCompare(b.key));
  const assignments = new Map<string, string[]>(sorted.map((s) => [s.key, []]));
  /** address → the sharing key of its holders ('' when not shared) */
  const used = new Map<string, string>();
  const canTake = (ip: string, s: IpamService) => {
    const holder = used.get(ip);
    return holder === undefined || (s.sharingKey !== undefined && holder === s.sharingKey);
  };
  const take = (ip: string, s: IpamService) => {
    used.set(ip, s.sharingKey ?? '');
    assignments.get(s.key)!.push(ip);
  };
  const canonical = (ip: string) => {
    const v = ipToBigInt(ip);
    return v ? bigIntToIp(v.value) : ip;
  };

  // 1. Keep what is assigned and still valid (requests, when present, decide instead).
  for (const s of sorted) {
    if (s.requested.length > 0) continue;
    const eligible = poolsFor(s, parsed, true);
    for (const raw of s.current) {
      const ip = canonical(raw);
      if (!inPools(ip, eligible)) continue; // released: the pool or the selector no longer covers it
      if (canTake(ip, s)) take(ip, s);
      else
        problems.push({
          object: `Service/${s.key}`,
          message: `${ip} is already assigned to another Service`,
        });
    }
  }
  // 2. Requests.
  for (const s of sorted) {
    if (s.requested.length === 0) continue;
    const eligible = poolsFor(s, parsed, true);
    for (const raw of s.requested) {
      const ip = canonical(raw);
      if (!inPools(ip, eligible)) {
        problems.push({
          object: `Service/${s.key}`,
          message: `requested ${raw} is in no pool that may serve this Service`,
        });
      } else if (!canTake(ip, s)) {
        problems.push({
          object: `Service/${s.key}`,
          message: `requested ${raw} is already assigned to another Service`,
        });
      } else take(ip, s);
    }
  }
  // 3. Everyone else: share by key, or the first free address.
  for (const s of sorted) {
    if (s.requested.length > 0 || assignments.get(s.key)!.length > 0) continue;
    if (s.sharingKey !== undefined) {
      const shared = [...used].find(([, key]) => key === s.sharingKey)?.[0];
      if (shared) {
        take(shared, s);
        continue;
      }
    }
    const found = firstFree(poolsFor(s, parsed, false), used);
    if (found) take(found, s);
    else
      problems.push({
        object: `Service/${s.key}`,
        message: 'no free address in any pool that may serve this Service',
      });
  }
  return { assignments, problems };
}

function firstFree(pools: readonly ParsedPool[], used: ReadonlyMap<string, string>): string | undefined {
  for (const pool of pools) {
    for (const r of pool.parsed) {
      // Bounded: a pool with more free-looking addresses than Services cannot be exhausted here.
      for (let v = r.lo, n = 0; v <= r.hi && n <= used.size + 512; v++, n++) {
        if (pool.avoidBuggyIPs && buggy(v, r.v6)) continue;
        const ip = bigIntToIp(v);
        if (!used.has(ip)) return ip;
      }
    }
  }
  return undefined;
}
