import { describe, expect, it } from 'vitest';
import { DEVICE_PROGRAMS, planAttachments } from '../../daemon/datapath/plan.js';

describe('planAttachments', () => {
  it('plans nothing for no devices', () => {
    expect(planAttachments([])).toEqual([]);
  });

  it('plans the counters, then the firewall, on both hooks of a device', () => {
    expect(planAttachments(['eth0'])).toEqual([
      {
        object: 'counters',
        program: 'nw_tc_count_ingress',
        ifname: 'eth0',
        hook: 'tc-ingress',
        pinName: 'tc-ingress-eth0-nw_tc_count_ingress',
        tcPriority: 1,
      },
      {
        object: 'counters',
        program: 'nw_tc_count_egress',
        ifname: 'eth0',
        hook: 'tc-egress',
        pinName: 'tc-egress-eth0-nw_tc_count_egress',
        tcPriority: 1,
      },
      {
        object: 'firewall',
        program: 'nw_fw_ingress',
        ifname: 'eth0',
        hook: 'tc-ingress',
        pinName: 'tc-ingress-eth0-nw_fw_ingress',
        tcPriority: 2,
      },
      {
        object: 'firewall',
        program: 'nw_fw_egress',
        ifname: 'eth0',
        hook: 'tc-egress',
        pinName: 'tc-egress-eth0-nw_fw_egress',
        tcPriority: 2,
      },
    ]);
  });

  it('drops duplicate devices and sorts by device name, hooks in program order', () => {
    const plan = planAttachments(['wlan0', 'eth1', 'bond0', 'eth1', 'wlan0']);
    const hooks = ['tc-ingress', 'tc-egress', 'tc-ingress', 'tc-egress'];
    expect(plan.map((a) => `${a.ifname}/${a.hook}`)).toEqual(
      ['bond0', 'eth1', 'wlan0'].flatMap((dev) => hooks.map((hook) => `${dev}/${hook}`)),
    );
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

  it('has one counter and one firewall program per hook, priorities unique per hook', () => {
    expect(DEVICE_PROGRAMS.map((p) => p.hook).sort()).toEqual([
      'tc-egress',
      'tc-egress',
      'tc-ingress',
      'tc-ingress',
    ]);
    for (const hook of ['tc-ingress', 'tc-egress'] as const) {
      const priorities = DEVICE_PROGRAMS.filter((p) => p.hook === hook).map((p) => p.tcPriority);
      expect(new Set(priorities).size).toBe(priorities.length);
    }
  });
});
