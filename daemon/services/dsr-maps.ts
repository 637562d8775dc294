/**
 * Makes DSR's maps match a plan. A service's Maglev table is written into a
 * fresh inner map and swapped in with one update; VIP entries change only
 * after their tables are in place, and backends leave only after no table
 * names them, so a packet never meets a half-written plan.
 */
import {
  DSR_MAPS,
  DSR_SERVICES_MAX,
  type DsrNexthop,
  DsrStat,
  dsrBackend,
  dsrNexthop,
  dsrVip,
  dsrVipKey,
  EXPIRED_NEXTHOP,
  MAGLEV_TABLE_SIZE,
} from '../../bpf/codecs/dsr.js';
import { BpfMap, type BpfObject, createMap, MapType, UpdateFlags, u32, u64 } from '../../bpf/index.js';
import { parsePrefix, toBytes } from '../../host-policies/prefix.js';
import { type DsrPlan, PROTOCOL_NUMBERS } from '../../services/dsr-plan.js';

export const addressKey = (address: string) => ({ addr: toBytes(parsePrefix(address)) });
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

export interface DsrApplyResult {
  tablesWritten: number;
  vips: number;
  durationMs: number;
}

/** The kernel's counters; `forwarded` is picked + flowHit. */
export type DsrStats = Record<keyof typeof DsrStat | 'forwarded', string>;

export class DsrMaps {
  private readonly vips: BpfMap<ReturnType<typeof dsrVipKey.decode>, { service: number; backends: number }>;
  private readonly outer: BpfMap<number, number>;
  private readonly backends: BpfMap<{ addr: Uint8Array }, DsrNexthop>;
  private readonly lbNodes: BpfMap<{ addr: Uint8Array }, number>;
  private readonly localVips: BpfMap<{ addr: Uint8Array }, number>;
  private readonly stats: BpfMap<number, bigint>;
  /** What each slot's table holds, as its entries joined; unknown after a restart, so rewritten once. */
  private readonly written = new Map<number, string>();

  constructor(object: BpfObject) {
    this.vips = new BpfMap(object.map(DSR_MAPS.vips), dsrVipKey, dsrVip);
    this.outer = new BpfMap(object.map(DSR_MAPS.maglev), u32, u32);
    this.backends = new BpfMap(object.map(DSR_MAPS.backends), dsrBackend, dsrNexthop);
    this.lbNodes = new BpfMap(object.map(DSR_MAPS.lbNodes), dsrBackend, u32);
    this.localVips = new BpfMap(object.map(DSR_MAPS.localVips), dsrBackend, u32);
    this.stats = new BpfMap(object.map(DSR_MAPS.stats), u32, u64);
  }

  /** The slot the live VIP entries give each of the plan's tables, so a restarted daemon keeps them. */
  liveSlots(plan: DsrPlan): Map<string, number> {
    const slots = new Map<string, number>();
    for (const table of plan.tables) {
      const vip = plan.vips.find((v) => v.slot === table.slot);
      if (!vip) continue;
      const live = this.vips.lookup(this.vipKey(vip));
      if (live) slots.set(table.key, live.service);
    }
    return slots;
  }

  apply(plan: DsrPlan): DsrApplyResult {
    const start = performance.now();
    // New backends start with an expired next hop; existing ones keep what XDP cached.
    const liveBackends = new Set([...this.backends.keys()].map((k) => hex(k.addr)));
    for (const b of plan.backendNodes) {
      const key = addressKey(b);
      if (!liveBackends.has(hex(key.addr))) this.backends.update(key, EXPIRED_NEXTHOP, UpdateFlags.noExist);
    }

    let tablesWritten = 0;
    const liveSlots = new Set<number>();
    for (const table of plan.tables) {
      if (table.entries.length === 0) continue;
      liveSlots.add(table.slot);
      const content = table.entries.join(',');
      if (this.written.get(table.slot) === content) continue;
      this.writeTable(table.slot, table.entries);
      this.written.set(table.slot, content);
      tablesWritten++;
    }

    const wantedVips = new Map(plan.vips.map((v) => [hex(dsrVipKeyBytes(this.vipKey(v))), v]));
    for (const v of wantedVips.values())
      this.vips.update(this.vipKey(v), { service: v.slot, backends: v.backends });
    for (const key of [...this.vips.keys()])
      if (!wantedVips.has(hex(dsrVipKeyBytes(key)))) this.vips.delete(key);

    for (let slot = 0; slot < DSR_SERVICES_MAX; slot++) {
      if (liveSlots.has(slot)) continue;
      if (this.written.has(slot) || this.outer.lookup(slot) !== undefined) {
        this.outer.delete(slot);
        this.written.delete(slot);
      }
    }

    const wantedBackends = new Set(plan.backendNodes.map((b) => hex(addressKey(b).addr)));
    for (const key of [...this.backends.keys()])
      if (!wantedBackends.has(hex(key.addr))) this.backends.delete(key);
    syncSet(this.lbNodes, plan.loadBalancerNodes);
    syncSet(this.localVips, plan.localVips);
    return { tablesWritten, vips: wantedVips.size, durationMs: performance.now() - start };
  }

  private vipKey(v: DsrPlan['vips'][number]) {
    return { addr: addressKey(v.vip).addr, port: v.port, proto: PROTOCOL_NUMBERS[v.protocol], pad: 0 };
  }

  private writeTable(slot: number, entries: readonly string[]): void {
    const inner = createMap({
      type: MapType.array,
      name: 'nw_dsr_maglev_t',
      keySize: 4,
      valueSize: dsrBackend.size,
      maxEntries: MAGLEV_TABLE_SIZE,
    });
    try {
      const keys = Buffer.alloc(entries.length * 4);
      const values = Buffer.alloc(entries.length * dsrBackend.size);
      const cache = new Map<string, Uint8Array>();
      entries.forEach((backend, i) => {
        keys.writeUInt32LE(i, i * 4);
        let bytes = cache.get(backend);
        if (!bytes) {
          bytes = addressKey(backend).addr;
          cache.set(backend, bytes);
        }
        values.set(bytes, i * dsrBackend.size);
      });
      new BpfMap(inner, u32, dsrBackend).updateBatchRaw(keys, values, entries.length);
      this.outer.update(slot, inner.fd);
    } finally {
      inner.close();
    }
  }

  /** Packet counts summed over CPUs. */
  readStats(): DsrStats {
    const sums = {} as Record<keyof typeof DsrStat, bigint>;
    for (const [name, index] of Object.entries(DsrStat) as [keyof typeof DsrStat, number][]) {
      const perCpu = this.stats.lookupPerCpu(index) ?? [];
      sums[name] = perCpu.reduce((a, b) => a + b, 0n);
    }
    const out = { forwarded: (sums.picked + sums.flowHit).toString() } as DsrStats;
    for (const [name, value] of Object.entries(sums)) out[name as keyof typeof DsrStat] = value.toString();
    return out;
  }
}

function dsrVipKeyBytes(key: ReturnType<typeof dsrVipKey.decode>): Buffer {
  const buf = Buffer.alloc(dsrVipKey.size);
  dsrVipKey.encode(key, buf, 0);
  return buf;
}

/** Makes a set-like map (address → 1) hold exactly these addresses. */
function syncSet(map: BpfMap<{ addr: Uint8Array }, number>, addresses: readonly string[]): void {
  const wanted = new Map(addresses.map((a) => [hex(addressKey(a).addr), addressKey(a)]));
  for (const key of wanted.values()) map.update(key, 1);
  for (const key of [...map.keys()]) if (!wanted.has(hex(key.addr))) map.delete(key);
}
