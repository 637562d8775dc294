/**
 * Pure planning of which program goes on which hook. The actuator in
 * datapath/actuator.ts makes the kernel match the plan.
 */

export type Hook = 'xdp' | 'tc-ingress' | 'tc-egress';

export interface PlannedAttachment {
  program: string;
  ifname: string;
  hook: Hook;
  /** File name of the pinned link under <pin-dir>/links. */
  pinName: string;
  /** tc clsact fallback: the filter priority, unique per program on a hook. */
  tcPriority: number;
}

/** The programs the foundation datapath attaches to every device, in hook order. */
export const COUNTER_PROGRAMS: readonly { program: string; hook: Hook; tcPriority: number }[] = [
  { program: 'nw_tc_count_ingress', hook: 'tc-ingress', tcPriority: 1 },
  { program: 'nw_tc_count_egress', hook: 'tc-egress', tcPriority: 1 },
];

export function planAttachments(devices: readonly string[]): PlannedAttachment[] {
  const plan: PlannedAttachment[] = [];
  for (const ifname of [...new Set(devices)].sort()) {
    for (const { program, hook, tcPriority } of COUNTER_PROGRAMS) {
      plan.push({ program, ifname, hook, pinName: `${hook}-${ifname}-${program}`, tcPriority });
    }
  }
  return plan;
}
