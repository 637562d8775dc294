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

/** The L2 responder, on the interfaces that announce LoadBalancer IPs (XDP: tcx programs are unaffected). */
export const L2_PROGRAM = {
  object: 'l2_responder',
  program: 'nw_l2_respond',
  hook: 'xdp',
  tcPriority: 0,
} as const;

/**
 * DSR's programs, on every device while some service uses DSR: XDP forwards
 * VIP traffic on load-balancer nodes; the decapsulation runs after the firewall,
 * which sees (and system-allows) the encapsulated packets from load-balancer nodes.
 */
export const DSR_PROGRAMS: typeof DEVICE_PROGRAMS = [
  { object: 'dsr', program: 'nw_dsr_xdp', hook: 'xdp', tcPriority: 0 },
  { object: 'dsr', program: 'nw_dsr_decap', hook: 'tc-ingress', tcPriority: 3 },
];

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
  for (const ifname of [...new Set(l2Devices)].sort()) {
    const { object, program, hook, tcPriority } = L2_PROGRAM;
    plan.push({ object, program, ifname, hook, pinName: `${hook}-${ifname}-${program}`, tcPriority });
  }
  return plan;
}
