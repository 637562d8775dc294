/**
 * Pure planning of which program goes on which hook. The actuator in
 * datapath/actuator.ts makes the kernel match the plan.
 */

export type Hook = 'xdp' | 'tc-ingress' | 'tc-egress';

/** The BPF objects the daemon loads, by file name under bpf/out. */
export type DatapathObject = 'counters' | 'firewall' | 'l2_responder' | 'dsr';

export interface PlannedAttachment {
  object: DatapathObject;
  program: string;
  ifname: string;
  hook: Hook;
  /** File name of the pinned link under <pin-dir>/links. */
  pinName: string;
  /** tc clsact fallback: the filter priority, unique per program on a hook. */
  tcPriority: number;
  /** Pins an earlier version used for this attachment: taken over, not left to block the hook. */
  legacyPinNames?: readonly string[];
}

/**
 * The programs attached to every device, in hook order: the counters see every
 * packet, the firewall after them decides.
 */
export const DEVICE_PROGRAMS: readonly {
  object: DatapathObject;
  program: string;
  hook: Hook;
  tcPriority: number;
}[] = [
  { object: 'counters', program: 'nw_tc_count_ingress', hook: 'tc-ingress', tcPriority: 1 },
  { object: 'counters', program: 'nw_tc_count_egress', hook: 'tc-egress', tcPriority: 1 },
  { object: 'firewall', program: 'nw_fw_ingress', hook: 'tc-ingress', tcPriority: 2 },
  { object: 'firewall', program: 'nw_fw_egress', hook: 'tc-egress', tcPriority: 2 },
];

/**
 * The XDP program of a device: a device has exactly one. Without DSR the
 * announcing interfaces run the L2 responder. With DSR every device runs
 * nw_dsr_xdp, which answers ARP/NDP for owned IPs first and forwards VIP
 * traffic after (the L2 owner of a VIP is the node that must forward it); its
 * object is loaded only then, so nodes without DSR never allocate its maps.
 */
export const L2_PROGRAM = {
  object: 'l2_responder',
  program: 'nw_l2_respond',
  hook: 'xdp',
  tcPriority: 0,
} as const;

export const DSR_XDP_PROGRAM = { object: 'dsr', program: 'nw_dsr_xdp', hook: 'xdp', tcPriority: 0 } as const;

/** Both XDP programs answer ARP/NDP for the entries of the responder map. */
export const NEIGHBOUR_RESPONDERS: ReadonlySet<string> = new Set([
  L2_PROGRAM.program,
  DSR_XDP_PROGRAM.program,
]);

/**
 * DSR's programs on every device while some service uses DSR (besides its XDP
 * program above): the decapsulation runs after the firewall, which sees (and
 * system-allows) the encapsulated packets from load-balancer nodes.
 */
export const DSR_PROGRAMS: typeof DEVICE_PROGRAMS = [
  { object: 'dsr', program: 'nw_dsr_decap', hook: 'tc-ingress', tcPriority: 3 },
];

/**
 * The pinned link of a device's XDP program is named after the device only, so
 * a change of program (DSR switched on or off) swaps it in place with
 * bpf_link_update: the responder never stops answering.
 */
export const xdpPinName = (ifname: string): string => `xdp-${ifname}`;

/** Pins of earlier versions, one per XDP program; the actuator takes them over. */
export const legacyXdpPinNames = (ifname: string): string[] =>
  [...NEIGHBOUR_RESPONDERS].map((program) => `xdp-${ifname}-${program}`);

export function planAttachments(
  devices: readonly string[],
  l2Devices: readonly string[] = [],
  options: { dsr?: boolean } = {},
): PlannedAttachment[] {
  const plan: PlannedAttachment[] = [];
  const programs = options.dsr ? [...DEVICE_PROGRAMS, ...DSR_PROGRAMS] : DEVICE_PROGRAMS;
  for (const ifname of [...new Set(devices)].sort()) {
    for (const { object, program, hook, tcPriority } of programs) {
      plan.push({ object, program, ifname, hook, pinName: `${hook}-${ifname}-${program}`, tcPriority });
    }
  }
  const xdpDevices = options.dsr ? [...devices, ...l2Devices] : l2Devices;
  const { object, program, hook, tcPriority } = options.dsr ? DSR_XDP_PROGRAM : L2_PROGRAM;
  for (const ifname of [...new Set(xdpDevices)].sort()) {
    plan.push({
      object,
      program,
      ifname,
      hook,
      pinName: xdpPinName(ifname),
      tcPriority,
      legacyPinNames: legacyXdpPinNames(ifname),
    });
  }
  return plan;
}
