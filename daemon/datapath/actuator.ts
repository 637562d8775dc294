/**
 * Makes the kernel match a datapath plan: loads the BPF object with its maps
 * pinned under the pin directory (adopting them after a restart), attaches each
 * planned program, and detaches pinned links the plan no longer has. Every
 * error is kept per attachment for status; one bad device does not stop the rest.
 */
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { L2_MAPS } from '../../bpf/codecs/l2.js';
import {
  CounterSlot,
  PACKET_COUNTERS_MAP,
  type PacketCounter,
  packetCounter,
  packetCounterKey,
} from '../../bpf/codecs/packet-counters.js';
import {
  type Attachment,
  attachTc,
  attachXdp,
  BpfMap,
  BpfObject,
  detachPinnedLink,
  detachTcFilter,
  ensurePinDir,
  type ReplacedPin,
  type TcMode,
  type XdpMode,
  zeroExtendValues,
} from '../../bpf/index.js';
import { bpfObjectPath } from '../../bpf/paths.js';
import type { DatapathObject, PlannedAttachment } from './plan.js';

/**
 * Pinned maps whose layout changed across releases and whose entries must
 * survive the upgrade (the rest start empty and are rebuilt). The L2 responder's
 * entries are what answers ARP for a node's IPs while the new daemon starts;
 * `expires_ns` was appended, and 0 means "no deadline".
 */
const PIN_MIGRATIONS = {
  [L2_MAPS.owned]: (layout: { valueSize: number }) => zeroExtendValues(layout.valueSize),
};

/**
 * Pins of maps that no program of this release uses: removed when the datapath
 * opens. A program of the earlier release that still holds one keeps it alive
 * until the new program replaces it in its link.
 */
export const RETIRED_PINS = [
  'nw_dsr_flows', // DSR flow table keyed by the 40-byte tuple (~25 MB), before the 64-bit key
  'nw_fw_ident_exact', // exact-match identities (and their inner maps), before the identity hash
];

/** tc clsact filters nodewarden creates use this handle ("NW"), so cleanup can find them without state. */
export const TC_FILTER_HANDLE = 0x4e57;

export interface AttachmentStatus {
  ifname: string;
  hook: string;
  program: string;
  state: 'attached' | 'failed';
  kind?: Attachment['kind'];
  adopted?: boolean;
  fallbackReason?: string;
  error?: string;
}

export interface DatapathOptions {
  pinDir: string;
  tcMode: TcMode;
  xdpMode: XdpMode;
}

export class Datapath {
  readonly objects: Record<Exclude<DatapathObject, 'dsr'>, BpfObject>;
  /** Loaded on first use: nodes without DSR services never create its maps. */
  private dsrObject: BpfObject | undefined;
  private readonly counters: BpfMap<number, PacketCounter>;
  private statuses: AttachmentStatus[] = [];

  private constructor(private readonly options: DatapathOptions) {
    ensurePinDir(options.pinDir);
    for (const name of RETIRED_PINS) rmSync(join(options.pinDir, name), { force: true });
    const load = (name: DatapathObject) =>
      BpfObject.load(bpfObjectPath(name), { pinDir: options.pinDir, migrations: PIN_MIGRATIONS });
    const counters = load('counters');
    let firewall: BpfObject | undefined;
    try {
      firewall = load('firewall');
      this.objects = { counters, firewall, l2_responder: load('l2_responder') };
    } catch (error) {
      counters.close();
      firewall?.close();
      throw error;
    }
    this.counters = new BpfMap(counters.map(PACKET_COUNTERS_MAP), packetCounterKey, packetCounter);
  }

  static open(options: DatapathOptions): Datapath {
    return new Datapath(options);
  }

  get linkDir(): string {
    return join(this.options.pinDir, 'links');
  }

  apply(plan: readonly PlannedAttachment[]): AttachmentStatus[] {
    const statuses = plan.map((item) => this.attachOne(item));
    const wanted = new Set(plan.map((p) => p.pinName));
    for (const name of listDir(this.linkDir)) {
      if (!wanted.has(name)) detachPinnedLink(join(this.linkDir, name));
    }
    this.statuses = statuses;
    return statuses;
  }

  private attachOne(item: PlannedAttachment): AttachmentStatus {
    const base = { ifname: item.ifname, hook: item.hook, program: item.program };
    try {
      const program = (item.object === 'dsr' ? this.dsr() : this.objects[item.object]).program(item.program);
      const pinPath = join(this.linkDir, item.pinName);
      takeOverLegacyPin(this.linkDir, item);
      const attachment =
        item.hook === 'xdp'
          ? attachXdp({ program, ifname: item.ifname, mode: this.options.xdpMode, pinPath })
          : attachTc({
              program,
              ifname: item.ifname,
              direction: item.hook === 'tc-ingress' ? 'ingress' : 'egress',
              mode: this.options.tcMode,
              pinPath,
              handle: TC_FILTER_HANDLE,
              priority: item.tcPriority,
            });
      return {
        ...base,
        state: 'attached',
        kind: attachment.kind,
        adopted: attachment.adopted,
        ...(attachment.fallbackReason ? { fallbackReason: attachment.fallbackReason } : {}),
      };
    } catch (error) {
      return { ...base, state: 'failed', error: error instanceof Error ? error.message : String(error) };
    }
  }

  /** DSR's object, its maps pinned beside the others. */
  dsr(): BpfObject {
    if (!this.dsrObject) {
      this.dsrObject = BpfObject.load(bpfObjectPath('dsr'), {
        pinDir: this.options.pinDir,
        migrations: PIN_MIGRATIONS,
      });
    }
    return this.dsrObject;
  }

  /** Pinned maps replaced at load because an upgrade changed their layout. */
  replacedPins(): ReplacedPin[] {
    return [...Object.values(this.objects), ...(this.dsrObject ? [this.dsrObject] : [])].flatMap(
      (o) => o.replacedPins,
    );
  }

  attachments(): readonly AttachmentStatus[] {
    return this.statuses;
  }

  packetCounters(): Record<keyof typeof CounterSlot, { packets: string; bytes: string }> {
    const read = (slot: number) => {
      const value = this.counters.lookup(slot) ?? { packets: 0n, bytes: 0n };
      return { packets: value.packets.toString(), bytes: value.bytes.toString() };
    };
    return {
      xdp: read(CounterSlot.xdp),
      tcIngress: read(CounterSlot.tcIngress),
      tcEgress: read(CounterSlot.tcEgress),
    };
  }

  /** Closes our handles. Pinned maps and links keep the datapath running. */
  close(): void {
    this.objects.counters.close();
    this.objects.firewall.close();
    this.objects.l2_responder.close();
    this.dsrObject?.close();
  }
}

/**
 * Upgrade from a version that pinned a device's XDP link under the program's
 * name: the first such pin becomes this attachment's, so the attach adopts the
 * live link and swaps its program in place (a new link would fail with EBUSY,
 * as a device has one XDP program). Others are left for apply's sweep.
 */
function takeOverLegacyPin(linkDir: string, item: PlannedAttachment): void {
  const pinPath = join(linkDir, item.pinName);
  if (existsSync(pinPath)) return;
  const legacy = item.legacyPinNames?.map((name) => join(linkDir, name)).find((path) => existsSync(path));
  // bpffs supports rename within the file system: the link stays attached throughout.
  if (legacy) renameSync(legacy, pinPath);
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Removes everything nodewarden pinned or attached in this network namespace:
 * the links under <pin-dir>/links, tc filters with our handle on every
 * interface, and the pinned maps. For package purge and emergencies.
 */
export function cleanupDatapath(pinDir: string, interfaces: readonly string[]): string[] {
  const removed: string[] = [];
  const linkDir = join(pinDir, 'links');
  for (const name of listDir(linkDir)) {
    if (detachPinnedLink(join(linkDir, name))) removed.push(`link ${name}`);
  }
  for (const ifname of interfaces) {
    for (const direction of ['ingress', 'egress'] as const) {
      for (let priority = 1; priority <= 8; priority++) {
        try {
          if (detachTcFilter(ifname, direction, TC_FILTER_HANDLE, priority))
            removed.push(`tc filter ${ifname} ${direction} prio ${priority}`);
        } catch {
          // No clsact qdisc on this interface: nothing of ours there.
        }
      }
    }
  }
  rmSync(pinDir, { recursive: true, force: true });
  removed.push(`pin directory ${pinDir}`);
  return removed;
}
