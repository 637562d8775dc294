import { describe, expect, it } from 'vitest';
import { planDsr } from '../../services/dsr-plan.js';
import { MAGLEV_SIZE } from '../../services/maglev.js';
import { sampleService } from '../support/services.js';

const svc = sampleService;

const facts = { addresses: ['10.0.0.1'], loadBalancerNodes: ['10.0.0.1'] };

describe('planDsr', () => {
  it('gives each service and family a Maglev table over the backends of that family', () => {
    const plan = planDsr([svc({})], facts);
    expect(plan.tables.map((t) => [t.key, t.slot, t.backends])).toEqual([
      ['default/web/IPv4', 0, ['10.0.0.2', '10.0.0.3']],
      ['default/web/IPv6', 1, ['fd00::2']],
    ]);
    expect(plan.tables[0]!.entries).toHaveLength(MAGLEV_SIZE);
    expect(new Set(plan.tables[1]!.entries)).toEqual(new Set(['fd00::2']));
    expect(plan.vips).toEqual([
      { vip: '192.0.2.10', port: 80, protocol: 'TCP', slot: 0, backends: 2 },
      { vip: '192.0.2.10', port: 53, protocol: 'UDP', slot: 0, backends: 2 },
      { vip: '2001:db8::10', port: 80, protocol: 'TCP', slot: 1, backends: 1 },
      { vip: '2001:db8::10', port: 53, protocol: 'UDP', slot: 1, backends: 1 },
    ]);
    expect(plan.backendNodes).toEqual(['10.0.0.2', '10.0.0.3', 'fd00::2']);
    expect(plan.localVips).toEqual([]);
  });

  it('leaves services without DSR on the normal path', () => {
    const plan = planDsr([svc({ dsr: false }), svc({ name: 'cip', type: 'ClusterIP' })], facts);
    expect(plan.vips).toEqual([]);
    expect(plan.tables).toEqual([]);
  });

  it('includes externalIPs, and a VIP without backends of its family gets an entry with none', () => {
    const plan = planDsr(
      [
        svc({
          loadBalancerIPs: [],
          externalIPs: ['198.51.100.1'],
          backendNodes: ['fd00::2'],
          ports: [{ port: 80, protocol: 'TCP' }],
        }),
      ],
      facts,
    );
    expect(plan.vips).toEqual([{ vip: '198.51.100.1', port: 80, protocol: 'TCP', slot: 0, backends: 0 }]);
    expect(plan.tables[0]!.entries).toEqual([]);
  });

  it('holds the VIPs as local on a backend node, and names the load-balancer nodes to decapsulate from', () => {
    const plan = planDsr([svc({})], {
      addresses: ['10.0.0.3'],
      loadBalancerNodes: ['10.0.0.9', '10.0.0.1', '10.0.0.9'],
    });
    expect(plan.localVips).toEqual(['192.0.2.10', '2001:db8::10']);
    expect(plan.loadBalancerNodes).toEqual(['10.0.0.1', '10.0.0.9']);
  });

  it('keeps each table in its slot when services come and go', () => {
    const a = svc({ name: 'a', loadBalancerIPs: ['192.0.2.1'] });
    const b = svc({ name: 'b', loadBalancerIPs: ['192.0.2.2'] });
    const c = svc({ name: 'c', loadBalancerIPs: ['192.0.2.3'] });
    const first = planDsr([b, c], facts);
    expect([...first.slots]).toEqual([
      ['default/b/IPv4', 0],
      ['default/c/IPv4', 1],
    ]);
    const second = planDsr([a, c], facts, first.slots);
    expect([...second.slots].sort()).toEqual([
      ['default/a/IPv4', 0],
      ['default/c/IPv4', 1],
    ]);
    expect(() => planDsr([a, b, c], facts, new Map(), 2)).toThrow(/more than 2 DSR service tables/);
  });
});
