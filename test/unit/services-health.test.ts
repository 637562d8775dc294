import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../daemon/config/load.js';
import { systemAllows } from '../../daemon/firewall/manager.js';
import { servicesFromConfig } from '../../daemon/services/from-config.js';
import { InputError } from '../../model/input-errors.js';
import { healthCheckSystemAllows, healthResponse, planHealthPorts } from '../../services/health-plan.js';
import type { Service } from '../../services/model.js';
import { sampleService } from '../support/services.js';

const dir = mkdtempSync(join(tmpdir(), 'nw-services-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const configOf = (yaml: string) => {
  const file = join(dir, `c${++n}.yaml`);
  writeFileSync(file, yaml);
  return { file, load: () => loadConfig(file) };
};

const svc = (over: Partial<Service>): Service =>
  sampleService({
    loadBalancerIPs: ['192.0.2.10'],
    ports: [{ port: 80, protocol: 'TCP' }],
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 32000,
    localReadyEndpoints: 1,
    dsr: false,
    backendNodes: [],
    ...over,
  });

describe('planHealthPorts', () => {
  it('serves only LoadBalancer services with externalTrafficPolicy Local and a healthCheckNodePort', () => {
    const plan = planHealthPorts([
      svc({ name: 'b', healthCheckNodePort: 32002, localReadyEndpoints: 0 }),
      svc({ name: 'a', healthCheckNodePort: 32001, localReadyEndpoints: 3 }),
      svc({ name: 'cluster', externalTrafficPolicy: 'Cluster', healthCheckNodePort: 32003 }),
      svc({ name: 'nodeport', type: 'NodePort', healthCheckNodePort: 32004 }),
      svc({ name: 'none', healthCheckNodePort: undefined }),
    ]);
    expect(plan).toEqual({
      ports: [
        { port: 32001, namespace: 'default', name: 'a', localEndpoints: 3 },
        { port: 32002, namespace: 'default', name: 'b', localEndpoints: 0 },
      ],
      conflicts: [],
    });
  });

  it('gives a port claimed twice to the first service by name, whatever the input order, and reports the other', () => {
    const x = svc({ namespace: 'x', name: 'one' });
    const y = svc({ namespace: 'a', name: 'two' });
    for (const input of [
      [x, y],
      [y, x],
    ]) {
      expect(planHealthPorts(input)).toEqual({
        ports: [{ port: 32000, namespace: 'a', name: 'two', localEndpoints: 1 }],
        conflicts: [{ service: 'x/one', port: 32000, heldBy: 'a/two' }],
      });
    }
  });

  it('allows every health port in the host firewall, TCP from anywhere', () => {
    const allows = healthCheckSystemAllows(planHealthPorts([svc({ healthCheckNodePort: 31000 })]));
    expect(allows).toEqual([
      {
        reason: 'healthCheckNodePort 31000/TCP of default/web',
        direction: 'ingress',
        peers: 'any',
        l4: [{ kind: 'ports', protocol: 'TCP', port: 31000, endPort: 31000 }],
      },
    ]);
  });
});

describe('healthResponse (kube-proxy compatible)', () => {
  const port = { port: 32000, namespace: 'shop', name: 'cart', localEndpoints: 2 };

  it('answers 200 with the endpoint count as weight while there are local endpoints', () => {
    const r = healthResponse(port, true);
    expect(r.status).toBe(200);
    expect(r.headers).toEqual({
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      'X-Load-Balancing-Endpoint-Weight': '2',
    });
    expect(JSON.parse(r.body)).toEqual({
      service: { namespace: 'shop', name: 'cart' },
      localEndpoints: 2,
      serviceProxyHealthy: true,
    });
  });

  it('answers 503 without local endpoints, and 503 while the proxy is unhealthy', () => {
    const none = healthResponse({ ...port, localEndpoints: 0 }, true);
    expect(none.status).toBe(503);
    expect(none.headers['X-Load-Balancing-Endpoint-Weight']).toBe('0');
    const sick = healthResponse(port, false);
    expect(sick.status).toBe(503);
    expect(JSON.parse(sick.body).serviceProxyHealthy).toBe(false);
  });
});

describe('services config', () => {
  it('validates into the services model; the global DSR flag fills in per-service dsr', () => {
    const { load } = configOf(`
services:
  dsr: { enabled: true }
  items:
    - name: web
      loadBalancerIPs: [192.0.2.10, "2001:db8::10"]
      ports: [{ port: 80 }, { port: 53, protocol: UDP, nodePort: 30053 }]
      externalTrafficPolicy: Local
      healthCheckNodePort: 32000
      localReadyEndpoints: 2
      backendNodes: [10.0.0.2]
    - namespace: kube-system
      name: dns
      dsr: false
`);
    const model = servicesFromConfig(load().services);
    expect(model.services).toEqual([
      {
        namespace: 'default',
        name: 'web',
        type: 'LoadBalancer',
        loadBalancerIPs: ['192.0.2.10', '2001:db8::10'],
        externalIPs: [],
        ports: [
          { port: 80, protocol: 'TCP' },
          { port: 53, protocol: 'UDP', nodePort: 30053 },
        ],
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 32000,
        localReadyEndpoints: 2,
        dsr: true,
        backendNodes: ['10.0.0.2'],
      },
      expect.objectContaining({ namespace: 'kube-system', name: 'dns', dsr: false }),
    ]);
    expect(servicesFromConfig(undefined)).toEqual({ services: [] });
  });

  it('puts configured health ports into the firewall system allows', () => {
    const { load } = configOf(`
services:
  items:
    - { name: web, externalTrafficPolicy: Local, healthCheckNodePort: 32000 }
`);
    expect(systemAllows(load()).map((a) => a.reason)).toEqual([
      'healthCheckNodePort 32000/TCP of default/web',
    ]);
  });

  it('names the file, line and field of a bad service', () => {
    const { file, load } = configOf(`services:
  items:
    - { name: web }
    - { name: api }
    - { name: cl }
    - { name: db, ports: [{ port: 70000 }] }
    - { name: Bad_Name }
`);
    let error: unknown;
    try {
      load();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message.split('\n')).toEqual([
      `${file}:6: services.items[3].ports[0].port: Too big: expected number to be <=65535`,
      `${file}:7: services.items[4].name: must be a Kubernetes name (lower case, digits, - and .)`,
    ]);
  });

  it('reports duplicate names and ports once the items are valid', () => {
    const { file, load } = configOf(`services:
  items:
    - { name: web, externalTrafficPolicy: Local, healthCheckNodePort: 32000 }
    - { name: api, externalTrafficPolicy: Local, healthCheckNodePort: 32000 }
    - { name: cl, healthCheckNodePort: 32001 }
    - { name: web }
`);
    expect(() => load()).toThrow(
      [
        `${file}:4: services.items[1].healthCheckNodePort: port 32000 is already the healthCheckNodePort of items[0]`,
        `${file}:5: services.items[2].healthCheckNodePort: only a LoadBalancer service with externalTrafficPolicy Local has a healthCheckNodePort`,
        `${file}:6: services.items[3].name: default/web is already items[0]`,
      ].join('\n'),
    );
  });
});
