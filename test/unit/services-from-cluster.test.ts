import { describe, expect, it } from 'vitest';
import {
  configWithClusterServices,
  DSR_ANNOTATION,
  DSR_ANNOTATION_PATH,
  servicesFromCluster,
} from '../../daemon/services/from-cluster.js';
import { projectService } from '../../daemon/sources/kubernetes/projections.js';
import type { NodeInfo, ServiceInfo } from '../../model/cluster.js';

const NODES: NodeInfo[] = [
  { name: 'a', labels: {}, addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] },
  {
    name: 'b',
    labels: {},
    addresses: [
      { type: 'ExternalIP', address: '198.51.100.2' },
      { type: 'InternalIP', address: '10.0.0.2' },
    ],
  },
  { name: 'c', labels: {}, addresses: [{ type: 'ExternalIP', address: '198.51.100.3' }] },
];

const web: ServiceInfo = {
  namespace: 'shop',
  name: 'web',
  labels: {},
  annotations: {},
  clusterIPs: ['10.96.0.10'],
  ingressIPs: ['192.0.2.10', '2001:db8::10'],
  externalIPs: ['203.0.113.5'],
  ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }],
  externalTrafficPolicy: 'Local',
  healthCheckNodePort: 32000,
};

const ready = (entries: Record<string, Record<string, number>>) =>
  new Map(Object.entries(entries).map(([k, v]) => [k, new Map(Object.entries(v))]));

describe('servicesFromCluster', () => {
  it('counts ready endpoints on this node and lists the nodes with ready endpoints as DSR backends', () => {
    const model = servicesFromCluster(
      { services: [web], nodes: NODES, readyEndpoints: ready({ 'shop/web': { a: 2, b: 1, c: 0, '': 4 } }) },
      'a',
      false,
    );
    expect(model.services).toEqual([
      {
        namespace: 'shop',
        name: 'web',
        type: 'LoadBalancer',
        loadBalancerIPs: ['192.0.2.10', '2001:db8::10'],
        externalIPs: ['203.0.113.5'],
        ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }],
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 32000,
        localReadyEndpoints: 2,
        dsr: false,
        // b by its InternalIP; c has none ready; endpoints without a node have no backend.
        backendNodes: ['10.0.0.1', '10.0.0.2'],
      },
    ]);
  });

  it('gives 0 local endpoints on a node without any, and without slices', () => {
    const input = { services: [web], nodes: NODES, readyEndpoints: ready({ 'shop/web': { b: 3 } }) };
    expect(servicesFromCluster(input, 'a', false).services[0]).toMatchObject({
      localReadyEndpoints: 0,
      backendNodes: ['10.0.0.2'],
    });
    const none = servicesFromCluster({ ...input, readyEndpoints: new Map() }, 'a', false).services[0];
    expect(none).toMatchObject({ localReadyEndpoints: 0, backendNodes: [] });
  });

  it('takes DSR from the annotation, else the global default', () => {
    const svc = (name: string, dsr?: string): ServiceInfo => ({
      ...web,
      name,
      annotations: dsr === undefined ? {} : { [DSR_ANNOTATION]: dsr },
    });
    const input = {
      services: [svc('on', 'true'), svc('off', 'false'), svc('unset')],
      nodes: NODES,
      readyEndpoints: new Map(),
    };
    const dsrOf = (dflt: boolean) =>
      Object.fromEntries(servicesFromCluster(input, 'a', dflt).services.map((s) => [s.name, s.dsr]));
    expect(dsrOf(false)).toEqual({ off: false, on: true, unset: false });
    expect(dsrOf(true)).toEqual({ off: false, on: true, unset: true });
    expect(servicesFromCluster(input, 'a', false).warnings).toEqual([]);
  });

  it('keeps a Service with any other DSR value on the default and warns, naming the Service and the field path', () => {
    const svc = (namespace: string, name: string, dsr: string): ServiceInfo => ({
      ...web,
      namespace,
      name,
      annotations: { [DSR_ANNOTATION]: dsr },
    });
    const input = {
      // Out of order: warnings come sorted like the services.
      services: [
        svc('shop', 'web', 'yes'),
        svc('a', 'one', '1'),
        svc('a', 'caps', 'True'),
        svc('a', 'empty', ''),
      ],
      nodes: NODES,
      readyEndpoints: new Map(),
    };
    const off = servicesFromCluster(input, 'a', false);
    expect(off.services.map((s) => [`${s.namespace}/${s.name}`, s.dsr])).toEqual([
      ['a/caps', false],
      ['a/empty', false],
      ['a/one', false],
      ['shop/web', false],
    ]);
    expect(off.warnings).toEqual([
      'Service a/caps: metadata.annotations["nodewarden.io/dsr"]: must be "true" or "false", got "True"; using services.dsr.enabled (false)',
      'Service a/empty: metadata.annotations["nodewarden.io/dsr"]: must be "true" or "false", got ""; using services.dsr.enabled (false)',
      'Service a/one: metadata.annotations["nodewarden.io/dsr"]: must be "true" or "false", got "1"; using services.dsr.enabled (false)',
      'Service shop/web: metadata.annotations["nodewarden.io/dsr"]: must be "true" or "false", got "yes"; using services.dsr.enabled (false)',
    ]);
    const on = servicesFromCluster(input, 'a', true);
    expect(on.services.every((s) => s.dsr)).toBe(true);
    expect(on.warnings[3]).toBe(
      `Service shop/web: ${DSR_ANNOTATION_PATH}: must be "true" or "false", got "yes"; using services.dsr.enabled (true)`,
    );
  });

  it('shows the DSR value JSON-quoted (one line) and cuts a long one short', () => {
    const long = 'x'.repeat(100);
    const { warnings } = servicesFromCluster(
      {
        services: [{ ...web, annotations: { [DSR_ANNOTATION]: long } }],
        nodes: NODES,
        readyEndpoints: new Map(),
      },
      'a',
      false,
    );
    expect(warnings).toEqual([
      `Service shop/web: ${DSR_ANNOTATION_PATH}: must be "true" or "false", got "${'x'.repeat(64)}…"; using services.dsr.enabled (false)`,
    ]);
    const quoted = servicesFromCluster(
      {
        services: [{ ...web, annotations: { [DSR_ANNOTATION]: 'a"b\n' } }],
        nodes: NODES,
        readyEndpoints: new Map(),
      },
      'a',
      false,
    );
    expect(quoted.warnings[0]).toContain('got "a\\"b\\n";');
  });

  it('uses ExternalIPs of a node without InternalIPs and sorts services by namespace/name', () => {
    const model = servicesFromCluster(
      {
        services: [{ ...web, name: 'z' }, web],
        nodes: NODES,
        readyEndpoints: ready({ 'shop/web': { c: 1 } }),
      },
      'c',
      false,
    );
    expect(model.services.map((s) => [s.name, s.backendNodes, s.localReadyEndpoints])).toEqual([
      ['web', ['198.51.100.3'], 1],
      ['z', [], 0],
    ]);
  });
});

describe('servicesFromCluster: DSR backends per address family', () => {
  it("takes a node's InternalIPs of each family, else its ExternalIPs of that family", () => {
    const nodes: NodeInfo[] = [
      {
        name: 'dual',
        labels: {},
        addresses: [
          { type: 'InternalIP', address: '10.0.0.1' },
          { type: 'InternalIP', address: 'fd00::1' },
          { type: 'ExternalIP', address: '2001:db8::1' },
        ],
      },
      {
        name: 'v6-external',
        labels: {},
        addresses: [
          { type: 'ExternalIP', address: '198.51.100.2' },
          { type: 'InternalIP', address: '10.0.0.2' },
          { type: 'ExternalIP', address: '2001:db8::2' },
        ],
      },
    ];
    const model = servicesFromCluster(
      { services: [web], nodes, readyEndpoints: ready({ 'shop/web': { dual: 1, 'v6-external': 1 } }) },
      'dual',
      false,
    );
    expect(model.services[0]!.backendNodes).toEqual(['10.0.0.1', 'fd00::1', '10.0.0.2', '2001:db8::2']);
  });
});

describe('projectService keeps what services need', () => {
  it('keeps the DSR annotation and externalIPs, and drops unrelated annotations', () => {
    const projected = projectService({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        namespace: 'shop',
        name: 'web',
        annotations: { [DSR_ANNOTATION]: 'true', 'example.com/other': 'x' },
      },
      spec: { type: 'LoadBalancer', externalIPs: ['203.0.113.5'], ports: [{ port: 80 }] },
    });
    expect(projected).toMatchObject({
      ok: true,
      value: { annotations: { [DSR_ANNOTATION]: 'true' }, externalIPs: ['203.0.113.5'] },
    });
  });
});

describe('configWithClusterServices', () => {
  it('adds the cluster services before the config file’s, and leaves a config alone when there are none', () => {
    const cluster = servicesFromCluster(
      { services: [web], nodes: NODES, readyEndpoints: new Map() },
      'a',
      false,
    );
    const merged = configWithClusterServices({ services: undefined }, cluster);
    expect(merged.services).toMatchObject({
      healthCheckBindAddress: '::',
      items: [{ name: 'web', healthCheckNodePort: 32000 }],
    });
    const none = { services: undefined };
    expect(configWithClusterServices(none, { services: [] })).toBe(none);
  });
});
