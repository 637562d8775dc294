/** The L2 planner, the map diff, interface facts from sysfs, ARP hazards and local route diffs: pure, no root. */
import { describe, expect, it } from 'vitest';
import type { InterfaceFacts } from '../../announcers/l2/model.js';
import { diffL2, planL2, skipReason } from '../../announcers/l2/plan.js';
import { planAttachments } from '../../daemon/datapath/plan.js';
import { arpHazards } from '../../daemon/l2/arp-hazards.js';
import { interfaceFacts, withBondMembers } from '../../daemon/l2/interfaces.js';
import { diffLocalRoutes } from '../../daemon/l2/local-routes.js';

const nic = (name: string, ifindex: number, extra: Partial<InterfaceFacts> = {}): InterfaceFacts => ({
  name,
  ifindex,
  mac: `02:00:00:00:00:${ifindex.toString(16).padStart(2, '0')}`,
  up: true,
  noarp: false,
  bondSlave: false,
  ethernet: true,
  ...extra,
});

const NICS = [
  nic('eth0', 2),
  nic('eth1', 3, { up: false }),
  nic('bond0', 4),
  nic('eth2', 5, { bondSlave: true }),
  nic('wg0', 6, { ethernet: false, mac: '' }),
  nic('eth3', 7, { noarp: true }),
  nic('lo', 1, { ethernet: false, mac: '' }),
];

describe('planL2', () => {
  it('announces owned IPs on every usable matching interface and says why the others are skipped', () => {
    const plan = planL2(
      [{ ips: ['192.0.2.10', '2001:DB8::0:10'], interfaces: ['^(eth|bond|wg)'] }],
      new Set(['192.0.2.10', '2001:db8::10']),
      NICS,
    );
    expect(plan.entries).toEqual([
      { ip: '192.0.2.10', ifname: 'bond0', ifindex: 4, mac: '02:00:00:00:00:04' },
      { ip: '192.0.2.10', ifname: 'eth0', ifindex: 2, mac: '02:00:00:00:00:02' },
      { ip: '2001:db8::10', ifname: 'bond0', ifindex: 4, mac: '02:00:00:00:00:04' },
      { ip: '2001:db8::10', ifname: 'eth0', ifindex: 2, mac: '02:00:00:00:00:02' },
    ]);
    expect(plan.devices).toEqual(['bond0', 'eth0']);
    expect(plan.interfaces.filter((i) => !i.announcing)).toEqual([
      { name: 'eth1', announcing: false, skipped: 'down' },
      { name: 'eth2', announcing: false, skipped: 'bond member (its bond announces)' },
      { name: 'eth3', announcing: false, skipped: 'NOARP' },
      { name: 'wg0', announcing: false, skipped: 'no Ethernet address (L3-only device)' },
    ]);
    expect(plan.ips.map((i) => [i.ip, i.state, i.interfaces])).toEqual([
      ['192.0.2.10', 'announced', ['bond0', 'eth0']],
      ['2001:db8::10', 'announced', ['bond0', 'eth0']],
    ]);
  });

  it('plans no entries for IPs another node owns, but keeps the responder on their interfaces', () => {
    const plan = planL2([{ ips: ['192.0.2.10'], interfaces: ['^eth0$'] }], new Set(), NICS);
    expect(plan.entries).toEqual([]);
    expect(plan.ips).toEqual([
      { ip: '192.0.2.10', state: 'not-owned', interfaces: [], reason: 'another node owns it' },
    ]);
    expect(plan.devices).toEqual(['eth0']);
  });

  it('reports an owned IP whose only interface is down as not announced', () => {
    const plan = planL2([{ ips: ['192.0.2.10'], interfaces: ['^eth1$'] }], new Set(['192.0.2.10']), NICS);
    expect(plan.entries).toEqual([]);
    expect(plan.ips[0]).toMatchObject({ state: 'no-interface' });
    expect(plan.devices).toEqual([]);
  });

  it('patterns are unanchored regular expressions, as in Cilium', () => {
    const plan = planL2([{ ips: ['192.0.2.10'], interfaces: ['th0'] }], new Set(['192.0.2.10']), NICS);
    expect(plan.devices).toEqual(['eth0']);
  });

  it('merges the interfaces of announcements that list the same IP', () => {
    const plan = planL2(
      [
        { ips: ['192.0.2.10'], interfaces: ['^eth0$'] },
        { ips: ['192.0.2.10'], interfaces: ['^bond0$'] },
      ],
      new Set(['192.0.2.10']),
      NICS,
    );
    expect(plan.ips).toEqual([{ ip: '192.0.2.10', state: 'announced', interfaces: ['bond0', 'eth0'] }]);
  });

  it('skipReason checks L3-only first, then bond membership, NOARP and link state', () => {
    expect(skipReason(nic('x', 9, { ethernet: false, up: false }))).toMatch(/L3-only/);
    expect(skipReason(nic('x', 9, { bondSlave: true, up: false }))).toMatch(/bond/);
    expect(skipReason(nic('x', 9))).toBeUndefined();
  });
});

describe('diffL2', () => {
  const live = [
    { ip: '192.0.2.10', ifindex: 2, mac: '02:00:00:00:00:02' },
    { ip: '192.0.2.11', ifindex: 2, mac: '02:00:00:00:00:02' },
    { ip: '192.0.2.12', ifindex: 3, mac: '02:00:00:00:00:03' },
  ];
  it('adds new pairs, updates changed MACs and removes the rest', () => {
    const changes = diffL2(live, [
      { ip: '192.0.2.10', ifname: 'eth0', ifindex: 2, mac: '02:00:00:00:00:02' },
      { ip: '192.0.2.12', ifname: 'eth1', ifindex: 3, mac: '02:00:00:00:00:99' },
      { ip: '192.0.2.13', ifname: 'eth0', ifindex: 2, mac: '02:00:00:00:00:02' },
    ]);
    expect(changes.add.map((e) => e.ip)).toEqual(['192.0.2.13']);
    expect(changes.update.map((e) => e.ip)).toEqual(['192.0.2.12']);
    expect(changes.remove.map((e) => e.ip)).toEqual(['192.0.2.11']);
  });
  it('is empty when the map already matches (a restarted daemon adopting its map)', () => {
    const planned = live.map((e) => ({ ...e, ifname: 'x' }));
    expect(diffL2(live, planned)).toEqual({ add: [], update: [], remove: [] });
  });
});

describe('interfaceFacts', () => {
  const raw = {
    name: 'eth0',
    ifindex: '2',
    flags: '0x1003',
    operstate: 'up',
    type: '1',
    addrLen: '6',
    address: '02:AA:BB:CC:DD:EE',
  };
  it('reads up, NOARP, bond member and Ethernet-ness from sysfs values', () => {
    expect(interfaceFacts(raw)).toEqual({
      name: 'eth0',
      ifindex: 2,
      mac: '02:aa:bb:cc:dd:ee',
      up: true,
      noarp: false,
      bondSlave: false,
      ethernet: true,
    });
    expect(interfaceFacts({ ...raw, flags: '0x1002' }).up).toBe(false);
    expect(interfaceFacts({ ...raw, operstate: 'lowerlayerdown' }).up).toBe(false);
    expect(interfaceFacts({ ...raw, operstate: 'unknown' }).up).toBe(true);
    expect(interfaceFacts({ ...raw, flags: '0x1083' }).noarp).toBe(true);
    expect(interfaceFacts({ ...raw, flags: '0x1803' }).bondSlave).toBe(true);
    expect(interfaceFacts({ ...raw, type: '65534', addrLen: '0', address: '' })).toMatchObject({
      ethernet: false,
      mac: '',
    });
  });
});

describe('arpHazards', () => {
  const strict = { name: 'eth0', arpIgnore: 1, arpAnnounce: 2 };
  const loose = { name: 'eth0', arpIgnore: 0, arpAnnounce: 0 };
  const all0 = { name: 'all', arpIgnore: 0, arpAnnounce: 0 };
  it('warns about kube-proxy IPVS without strictARP (MetalLB #153)', () => {
    const warnings = arpHazards({ kubeIpvs: true, all: all0, devices: [loose], foreignLocal: [] });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/IPVS mode without strictARP.*arp_ignore=0 on eth0.*MetalLB #153/);
  });
  it('is quiet with strictARP set on the device or on "all"', () => {
    expect(arpHazards({ kubeIpvs: true, all: all0, devices: [strict], foreignLocal: [] })).toEqual([]);
    expect(
      arpHazards({
        kubeIpvs: true,
        all: { name: 'all', arpIgnore: 1, arpAnnounce: 2 },
        devices: [loose],
        foreignLocal: [],
      }),
    ).toEqual([]);
  });
  it('is quiet without IPVS, and warns about a foreign IP configured locally', () => {
    expect(arpHazards({ kubeIpvs: false, all: all0, devices: [loose], foreignLocal: [] })).toEqual([]);
    expect(
      arpHazards({
        kubeIpvs: false,
        all: all0,
        devices: [],
        foreignLocal: [{ ip: '192.0.2.10', device: 'eth0' }],
      }),
    ).toEqual([
      '192.0.2.10 is owned by another node but is a local address on eth0 here: the kernel answers ARP/NDP for it too',
    ]);
  });
});

describe('diffLocalRoutes', () => {
  it('adds missing and removes unwanted routes of ours, in canonical form', () => {
    expect(diffLocalRoutes(['192.0.2.10', '2001:db8::10'], ['192.0.2.10', '2001:DB8::0:11'])).toEqual({
      add: ['2001:db8::11'],
      remove: ['2001:db8::10'],
    });
  });
});

describe('bonds', () => {
  it('keys a bond’s entries by its members’ ifindexes too, since XDP on a bond runs on them', () => {
    const facts = withBondMembers(
      [
        nic('bond0', 4),
        nic('eth2', 5, { bondSlave: true }),
        nic('eth3', 6, { bondSlave: true }),
        nic('eth0', 2),
      ],
      (name) => (name === 'eth2' || name === 'eth3' ? 'bond0' : undefined),
    );
    expect(facts[0]!.members).toEqual([5, 6]);
    const plan = planL2([{ ips: ['192.0.2.10'], interfaces: ['^bond0$'] }], new Set(['192.0.2.10']), facts);
    expect(plan.entries).toEqual([
      { ip: '192.0.2.10', ifname: 'bond0', ifindex: 4, mac: '02:00:00:00:00:04' },
      { ip: '192.0.2.10', ifname: 'bond0', ifindex: 5, mac: '02:00:00:00:00:04', viaMember: true },
      { ip: '192.0.2.10', ifname: 'bond0', ifindex: 6, mac: '02:00:00:00:00:04', viaMember: true },
    ]);
    expect(plan.devices).toEqual(['bond0']);
  });
});

describe('planAttachments with L2 devices', () => {
  const xdp = (ifname: string, object: string, program: string) => ({
    object,
    program,
    ifname,
    hook: 'xdp',
    pinName: `xdp-${ifname}`,
    tcPriority: 0,
    legacyPinNames: [`xdp-${ifname}-nw_l2_respond`, `xdp-${ifname}-nw_dsr_xdp`],
  });

  it('adds the XDP responder beside the tcx programs, one pinned link per device', () => {
    const plan = planAttachments(['eth0'], ['eth1', 'eth0', 'eth1']);
    expect(plan.filter((p) => p.hook === 'xdp')).toEqual([
      xdp('eth0', 'l2_responder', 'nw_l2_respond'),
      xdp('eth1', 'l2_responder', 'nw_l2_respond'),
    ]);
    expect(plan.filter((p) => p.ifname === 'eth0')).toHaveLength(5);
    expect(new Set(plan.map((p) => p.pinName)).size).toBe(plan.length);
  });

  it('with DSR, every device and every announcing interface gets one XDP program that does both', () => {
    const plan = planAttachments(['eth0', 'eth2'], ['eth1', 'eth0'], { dsr: true });
    expect(plan.filter((p) => p.hook === 'xdp')).toEqual([
      xdp('eth0', 'dsr', 'nw_dsr_xdp'),
      xdp('eth1', 'dsr', 'nw_dsr_xdp'),
      xdp('eth2', 'dsr', 'nw_dsr_xdp'),
    ]);
    for (const ifname of ['eth0', 'eth1', 'eth2'])
      expect(plan.filter((p) => p.ifname === ifname && p.hook === 'xdp')).toHaveLength(1);
    // The decapsulation stays on the firewall's devices only, after the firewall.
    expect(plan.filter((p) => p.program === 'nw_dsr_decap').map((p) => [p.ifname, p.tcPriority])).toEqual([
      ['eth0', 3],
      ['eth2', 3],
    ]);
    expect(new Set(plan.map((p) => p.pinName)).size).toBe(plan.length);
  });

  it('keeps the pin name of a device when DSR switches on or off, so the program is swapped in place', () => {
    const pins = (dsr: boolean) =>
      planAttachments(['eth0'], ['eth0'], { dsr })
        .filter((p) => p.hook === 'xdp')
        .map((p) => [p.pinName, p.program]);
    expect(pins(false)).toEqual([['xdp-eth0', 'nw_l2_respond']]);
    expect(pins(true)).toEqual([['xdp-eth0', 'nw_dsr_xdp']]);
  });
});
