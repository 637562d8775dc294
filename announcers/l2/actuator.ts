/**
 * Makes the responder map match an L2 plan and tells the segment: entries the
 * plan dropped are deleted first and at once (a node that lost an IP must stop
 * answering before anything else), new ones are written, and each new or
 * changed (IP, interface) gets a burst of gratuitous ARP / unsolicited NA.
 * Every failure is reported through onError and kept for status.
 */
import {
  L2_MAPS,
  type L2Entry,
  type L2Key,
  type L2Stats,
  l2Entry,
  l2Key,
  l2Stats,
} from '../../bpf/codecs/l2.js';
import { BpfMap, type BpfObject, bootTimeNs, bootTimeToDate, PacketSocket } from '../../bpf/index.js';
import { keyBytes, keyToIp } from './addresses.js';
import { announcementFrames, macBytes } from './frames.js';
import type { L2Settings } from './model.js';
import { diffL2, type L2Changes, type L2PlannedEntry, type LiveEntry } from './plan.js';

export interface L2EntryStats {
  replies: number;
  lastReplyAt?: string;
}

export interface L2ActuatorEvents {
  onError(what: string, error: unknown): void;
  /** Frames sent unasked, per family. */
  onAnnounced(family: 'ipv4' | 'ipv6', frames: number): void;
}

const keyOf = (e: { ip: string; ifindex: number }) => `${e.ifindex}/${e.ip}`;

function macText(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export class L2Actuator {
  private readonly owned: BpfMap<L2Key, L2Entry>;
  private readonly stats: BpfMap<L2Key, L2Stats>;
  private socket: PacketSocket | undefined;
  private current = new Map<string, L2PlannedEntry>();
  private readonly lastAnnounced = new Map<string, Date>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private reannounceTimer: NodeJS.Timeout | undefined;
  /** Boot-clock ns after which the entries written stop answering; 0n: never. */
  private deadlineNs: bigint;

  /**
   * `fenced` (Kubernetes mode): entries answer only until the deadline that
   * answerFor sets; adopted entries keep their predecessor's deadline until then.
   * Otherwise entries answer forever, adopted ones included.
   */
  constructor(
    object: BpfObject,
    private settings: L2Settings,
    private readonly events: L2ActuatorEvents,
    { fenced = false }: { fenced?: boolean } = {},
  ) {
    this.owned = new BpfMap(object.map(L2_MAPS.owned), l2Key, l2Entry);
    this.stats = new BpfMap(object.map(L2_MAPS.stats), l2Key, l2Stats);
    // Fenced and not yet renewed: an entry written now would be past its deadline already.
    this.deadlineNs = fenced ? 1n : 0n;
    if (!fenced) this.rewriteDeadlines();
  }

  /** What the (possibly adopted) map holds now. */
  live(): LiveEntry[] {
    return [...this.owned.entries()].map(([key, value]) => ({
      ip: keyToIp(key.addr),
      ifindex: key.ifindex,
      mac: macText(value.mac),
    }));
  }

  apply(planned: readonly L2PlannedEntry[], settings: L2Settings = this.settings): L2Changes {
    this.settings = settings;
    const changes = diffL2(this.live(), planned);
    for (const gone of changes.remove) {
      const key = { ifindex: gone.ifindex, addr: keyBytes(gone.ip) };
      try {
        this.owned.delete(key);
        this.stats.delete(key);
      } catch (error) {
        this.events.onError(`withdraw ${gone.ip} from ifindex ${gone.ifindex}`, error);
      }
      this.lastAnnounced.delete(keyOf(gone));
    }
    const written: L2PlannedEntry[] = [];
    for (const entry of [...changes.add, ...changes.update]) {
      try {
        this.owned.update(
          { ifindex: entry.ifindex, addr: keyBytes(entry.ip) },
          { mac: macBytes(entry.mac), flags: 0, expires_ns: this.deadlineNs },
        );
        written.push(entry);
      } catch (error) {
        this.events.onError(`announce ${entry.ip} on ${entry.ifname}`, error);
      }
    }
    this.current = new Map(planned.filter((e) => !e.viaMember).map((e) => [keyOf(e), e]));
    const announce = written.filter((e) => !e.viaMember);
    if (announce.length > 0) this.burst(announce);
    this.scheduleReannounce();
    return changes;
  }

  /**
   * Kubernetes mode: this node's heartbeat lease holds for `ms` more, so every
   * entry answers until then and no longer. A daemon that dies leaves entries
   * whose deadline is its lease's own expiry, the moment other nodes may take
   * the IPs over; a restarted daemon extends them with its first renewal.
   */
  answerFor(ms: number): void {
    this.deadlineNs = bootTimeNs() + BigInt(Math.max(1, Math.round(ms * 1e6)));
    this.rewriteDeadlines();
  }

  /** Gives every entry of the map, adopted ones included, the current deadline. */
  private rewriteDeadlines(): void {
    try {
      const expires_ns = this.deadlineNs;
      for (const [key, value] of [...this.owned.entries()])
        if (value.expires_ns !== expires_ns) this.owned.update(key, { ...value, expires_ns });
    } catch (error) {
      this.events.onError('renew the responder deadlines', error);
    }
  }

  /** Sends `count` rounds, `interval` apart; later rounds skip entries withdrawn meanwhile. */
  private burst(entries: readonly L2PlannedEntry[]): void {
    const keys = entries.map(keyOf);
    const round = (left: number) => {
      const still = keys.map((k) => this.current.get(k)).filter((e): e is L2PlannedEntry => e !== undefined);
      this.send(still);
      if (left > 1 && still.length > 0) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          round(left - 1);
        }, this.settings.gratuitousIntervalMs);
        this.timers.add(timer);
      }
    };
    round(Math.max(1, this.settings.gratuitousCount));
  }

  private scheduleReannounce(): void {
    clearInterval(this.reannounceTimer);
    this.reannounceTimer = undefined;
    if (this.settings.reannounceIntervalMs > 0) {
      this.reannounceTimer = setInterval(
        () => this.send([...this.current.values()]),
        this.settings.reannounceIntervalMs,
      );
    }
  }

  /** One round of gratuitous frames, one sendmmsg batch per interface. */
  send(entries: readonly L2PlannedEntry[]): void {
    const byInterface = new Map<number, { ifname: string; entries: L2PlannedEntry[] }>();
    for (const e of entries) {
      const group = byInterface.get(e.ifindex) ?? { ifname: e.ifname, entries: [] };
      group.entries.push(e);
      byInterface.set(e.ifindex, group);
    }
    const now = new Date();
    for (const [ifindex, group] of byInterface) {
      try {
        this.socket ??= PacketSocket.open();
        const frames = group.entries.flatMap((e) => announcementFrames(e.mac, e.ip));
        const result = this.socket.send(ifindex, group.ifname, frames);
        if (result.dropped > 0)
          this.events.onError(
            `announce on ${group.ifname}`,
            new Error(`${result.dropped} frames dropped (queue full)`),
          );
        const v4 = group.entries.filter((e) => !e.ip.includes(':')).length * 2;
        this.events.onAnnounced('ipv4', Math.min(v4, result.sent));
        this.events.onAnnounced('ipv6', Math.max(0, result.sent - v4));
        for (const e of group.entries) this.lastAnnounced.set(keyOf(e), now);
      } catch (error) {
        this.events.onError(`announce on ${group.ifname}`, error);
      }
    }
  }

  lastAnnouncedAt(entry: { ip: string; ifindex: number }): string | undefined {
    return this.lastAnnounced.get(keyOf(entry))?.toISOString();
  }

  entryStats(entry: { ip: string; ifindex: number }): L2EntryStats {
    const stats = this.stats.lookup({ ifindex: entry.ifindex, addr: keyBytes(entry.ip) });
    if (!stats) return { replies: 0 };
    return { replies: Number(stats.replies), lastReplyAt: bootTimeToDate(stats.last_reply_ns).toISOString() };
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    clearInterval(this.reannounceTimer);
    this.socket?.close();
    this.socket = undefined;
  }
}
