import { describe, expect, it } from 'vitest';
import { COUNTER_PROGRAMS, planAttachments } from '../../daemon/datapath/plan.js';

describe('planAttachments', () => {
  it('plans nothing for no devices', () => {
    expect(planAttachments([])).toEqual([]);
  });

  it('plans one ingress and one egress counter per device', () => {
    expect(planAttachments(['eth0'])).toEqual([
      {
        program: 'nw_tc_count_ingress',
        ifname: 'eth0',
        hook: 'tc-ingress',
        pinName: 'tc-ingress-eth0-nw_tc_count_ingress',
        tcPriority: 1,
      },
      {
        program: 'nw_tc_count_egress',
        ifname: 'eth0',
        hook: 'tc-egress',
        pinName: 'tc-egress-eth0-nw_tc_count_egress',
        tcPriority: 1,
      },
    ]);
  });

  it('drops duplicate devices and sorts by device name, hooks in program order', () => {
    const plan = planAttachments(['wlan0', 'eth1', 'bond0', 'eth1', 'wlan0']);
    expect(plan.map((a) => `${a.ifname}/${a.hook}`)).toEqual([
      'bond0/tc-ingress',
      'bond0/tc-egress',
      'eth1/tc-ingress',
      'eth1/tc-egress',
      'wlan0/tc-ingress',
      'wlan0/tc-egress',
    ]);
  });

  it('gives each attachment a distinct pin name that names hook, device and program', () => {
    const plan = planAttachments(['eth0', 'eth1', 'eth0.100']);
    const names = plan.map((a) => a.pinName);
    expect(new Set(names).size).toBe(plan.length);
    for (const a of plan) expect(a.pinName).toBe(`${a.hook}-${a.ifname}-${a.program}`);
    // Pin names are file names under <pin-dir>/links.
    for (const name of names) expect(name).not.toContain('/');
  });

  it('does not change the input', () => {
    const devices = ['eth1', 'eth0', 'eth1'];
    planAttachments(devices);
    expect(devices).toEqual(['eth1', 'eth0', 'eth1']);
  });

  it('has exactly one ingress and one egress counter program, priorities unique per hook', () => {
    expect(COUNTER_PROGRAMS.map((p) => p.hook).sort()).toEqual(['tc-egress', 'tc-ingress']);
    for (const hook of ['tc-ingress', 'tc-egress'] as const) {
      const priorities = COUNTER_PROGRAMS.filter((p) => p.hook === hook).map((p) => p.tcPriority);
      expect(new Set(priorities).size).toBe(priorities.length);
    }
  });
});
