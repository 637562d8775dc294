/**
 * L2 announcements in the daemon: gathers the inputs (config, ownership,
 * interface facts), runs the pure planner, and drives the actuators (the
 * responder map with its gratuitous frames, and the local routes). Ownership is
 * an input: in standalone mode this node owns every IP its config lists; the
 * Kubernetes source will set it from heartbeat hashing.
 */
import type { L2Actuator } from '../../announcers/l2/actuator.js';
import { canonicalIp } from '../../announcers/l2/addresses.js';
import type { L2Announcement, L2Settings } from '../../announcers/l2/model.js';
import { type L2InterfacePlan, type L2IpState, type L2Plan, planL2 } from '../../announcers/l2/plan.js';
import type { L2Config } from '../config/schema.js';
import type { AttachmentStatus } from '../datapath/actuator.js';
import { NEIGHBOUR_RESPONDERS } from '../datapath/plan.js';
import type { Logger } from '../log.js';
import { arpHazards, readArpFacts } from './arp-hazards.js';
import { readInterfaceFacts } from './interfaces.js';
import { LocalRoutes } from './local-routes.js';

export interface L2InterfaceStatus {
  name: string;
  ifindex: number;
  mac: string;
  replies: number;
  lastReplyAt?: string;
  lastAnnouncedAt?: string;
}

export interface L2IpStatus {
  ip: string;
  /** The owning node: this node, another node (Kubernetes mode), or null when unknown. */
  owner: string | null;
  state: L2IpState | 'responder-failed';
  reason?: string;
  interfaces: L2InterfaceStatus[];
  localRoute: boolean;
}

export interface L2Status {
  ips: L2IpStatus[];
  interfaces: L2InterfacePlan[];
  localRoutes: string[];
  warnings: string[];
  errors: { at: string; what: string; error: string }[];
  settings: L2Settings & { localRoutes: boolean };
}

export function l2Announcements(config: L2Config): L2Announcement[] {
  return config.announcements.map((a) => ({ ips: a.ips, interfaces: a.interfaces ?? config.interfaces }));
}

export function l2Settings(config: L2Config): L2Settings {
  return {
    gratuitousCount: config.gratuitous.count,
    gratuitousIntervalMs: config.gratuitous.intervalMs,
    reannounceIntervalMs: Math.round(config.reannounceSeconds * 1000),
  };
}

/** Standalone ownership: every IP the config lists. */
export function standaloneOwnership(config: L2Config): Set<string> {
  return new Set(config.announcements.flatMap((a) => a.ips.map(canonicalIp)));
}

/** Kubernetes mode: this node's announcements, the IPs it owns now, and every IP's owner. */
export interface L2ClusterInput {
  announcements: L2Announcement[];
  owned: ReadonlySet<string>;
  owners: ReadonlyMap<string, string>;
}

const MAX_ERRORS = 20;

export class L2Manager {
  private plan: L2Plan = { entries: [], ips: [], interfaces: [], devices: [] };
  private owners: ReadonlyMap<string, string> = new Map();
  private attached = new Set<string>();
  private config: L2Config | undefined;
  private readonly routes = new LocalRoutes((result) => {
    for (const { ip, error } of result.errors) this.recordError(`local route ${ip}`, error);
  });
  private warnings: string[] = [];
  private readonly errors: L2Status['errors'] = [];

  constructor(
    private readonly actuator: L2Actuator,
    private readonly nodeName: string,
    private readonly log: Logger,
    private readonly onErrorCounted: () => void,
  ) {}

  /**
   * Plans from the current interfaces; the caller attaches the responder to plan.devices.
   * `cluster`: Kubernetes mode, where announcements and owners come from the API.
   */
  planFor(config: L2Config, cluster?: L2ClusterInput): L2Plan {
    this.config = config;
    this.owners = cluster?.owners ?? new Map();
    this.plan = planL2(
      cluster?.announcements ?? l2Announcements(config),
      cluster?.owned ?? standaloneOwnership(config),
      readInterfaceFacts(),
    );
    return this.plan;
  }

  /** Writes the plan's entries on the interfaces where the responder is attached. */
  apply(attachments: readonly AttachmentStatus[]): void {
    const config = this.config;
    if (!config) return;
    this.attached = new Set(
      attachments
        .filter((a) => NEIGHBOUR_RESPONDERS.has(a.program) && a.hook === 'xdp' && a.state === 'attached')
        .map((a) => a.ifname),
    );
    const entries = this.plan.entries.filter((e) => this.attached.has(e.ifname));
    try {
      const changes = this.actuator.apply(entries, l2Settings(config));
      for (const e of changes.add) this.log.info({ ip: e.ip, interface: e.ifname, mac: e.mac }, 'announcing');
      for (const e of changes.remove) this.log.info({ ip: e.ip, ifindex: e.ifindex }, 'withdrawn');
    } catch (error) {
      // Reading the responder map failed: nothing was changed; the next resync retries.
      this.recordError('read the responder map', error);
    }

    const announced = [...new Set(entries.map((e) => e.ip))];
    // After the map and the gratuitous burst: routes do not hold up the announcement.
    this.routes.want(config.localRoutes ? announced : []);

    const notOwned = this.plan.ips.filter((i) => i.state === 'not-owned').map((i) => i.ip);
    const warnings = arpHazards(readArpFacts(this.plan.devices, notOwned));
    if (warnings.join('\n') !== this.warnings.join('\n'))
      for (const warning of warnings) this.log.warn({ warning }, 'ARP hazard');
    this.warnings = warnings;
  }

  recordError(what: string, error: unknown): void {
    const text = error instanceof Error ? error.message : String(error);
    this.log.error({ what, err: text }, `L2: ${what} failed`);
    this.errors.push({ at: new Date().toISOString(), what, error: text });
    if (this.errors.length > MAX_ERRORS) this.errors.shift();
    this.onErrorCounted();
  }

  status(): L2Status {
    const facts = new Map(
      this.plan.entries.filter((e) => !e.viaMember).map((e) => [`${e.ifname}/${e.ip}`, e]),
    );
    // A bond's replies are counted under its members' ifindexes as well.
    const replies = (ip: string, ifname: string): { replies: number; lastReplyAt?: string } => {
      const stats = this.plan.entries
        .filter((e) => e.ip === ip && e.ifname === ifname)
        .map((e) => this.actuator.entryStats(e));
      const last = stats
        .map((s) => s.lastReplyAt ?? '')
        .sort()
        .at(-1);
      return { replies: stats.reduce((n, s) => n + s.replies, 0), ...(last ? { lastReplyAt: last } : {}) };
    };
    const ips = this.plan.ips.map((p): L2IpStatus => {
      const on = p.interfaces.filter((name) => this.attached.has(name));
      const failed = p.state === 'announced' && on.length === 0;
      return {
        ip: p.ip,
        owner: p.state === 'not-owned' ? (this.owners.get(p.ip) ?? null) : this.nodeName,
        state: failed ? 'responder-failed' : p.state,
        ...(failed
          ? { reason: 'the XDP responder could not be attached to its interfaces' }
          : p.reason
            ? { reason: p.reason }
            : {}),
        interfaces: on.map((name) => {
          const e = facts.get(`${name}/${p.ip}`)!;
          const announcedAt = this.actuator.lastAnnouncedAt(e);
          return {
            name,
            ifindex: e.ifindex,
            mac: e.mac,
            ...replies(p.ip, name),
            ...(announcedAt ? { lastAnnouncedAt: announcedAt } : {}),
          };
        }),
        localRoute: this.routes.present.includes(p.ip),
      };
    });
    const config = this.config;
    return {
      ips,
      interfaces: this.plan.interfaces,
      localRoutes: this.routes.present,
      warnings: this.warnings,
      errors: [...this.errors],
      settings: {
        ...(config
          ? l2Settings(config)
          : { gratuitousCount: 0, gratuitousIntervalMs: 0, reannounceIntervalMs: 0 }),
        localRoutes: config?.localRoutes ?? false,
      },
    };
  }

  /** Resolves when the local routes match the last apply. */
  settled(): Promise<void> {
    return this.routes.settled();
  }

  close(): void {
    this.actuator.close();
  }
}
