/** Calls a fixture API server that runs inside a lab namespace (it listens on that namespace's loopback). */
import { join } from 'node:path';
import type { Host, LabProcess } from '../lab/index.js';
import { writeFixtureKubeconfig } from './kubeconfig.js';
import type { KubeObject } from './server.js';

export type LabApi = (
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ code: number; body: KubeObject }>;

export function labApi(host: Host, server: string, token: string): LabApi {
  return async (method, path, body) => {
    const args = ['curl', '-s', '-o', '-', '-w', '\\n%{http_code}', '-X', method];
    args.push('-H', `authorization: Bearer ${token}`);
    if (body !== undefined)
      args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
    const out = (await host.exec([...args, server + path])).stdout;
    const nl = out.lastIndexOf('\n');
    return { code: Number(out.slice(nl + 1)), body: JSON.parse(out.slice(0, nl) || 'null') };
  };
}

/**
 * Starts the fixture API server inside `host`'s namespace (bookmarks every 500 ms), on its
 * loopback or, for daemons in other namespaces, on `listen` (an address of `host`).
 */
export async function startLabFixture(
  host: Host,
  token: string,
  listen = '127.0.0.1',
): Promise<{ process: LabProcess; server: string; api: LabApi }> {
  const process = host.spawn([
    'node',
    '--import',
    'tsx',
    'test/k8s-fixture/main.ts',
    '--host',
    listen,
    '--token',
    token,
    '--bookmark-ms',
    '500',
  ]);
  const server = (await process.waitForOutput(/listening on (http:\S+)/, 20_000))[1]!;
  return { process, server, api: labApi(host, server, token) };
}

/** config.yaml lines for a daemon with `source: kubernetes` against that fixture. */
export function kubernetesModeConfig(
  nodeName: string,
  server: string,
  token: string,
  dir: string,
  devices: readonly string[] = ['eth0'],
): string[] {
  return [
    `nodeName: ${nodeName}`,
    `devices: [${devices.join(', ')}]`,
    'source: kubernetes',
    'kubernetes:',
    `  kubeconfig: ${writeFixtureKubeconfig(server, token, dir)}`,
    '  idleTimeoutSeconds: 5',
    `policies: { directory: ${join(dir, 'policies.d')} }`,
  ];
}

/** A LoadBalancer Service with externalTrafficPolicy Local, as tests create it. */
export function localLoadBalancerService(
  namespace: string,
  name: string,
  healthCheckNodePort: number,
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace, name },
    spec: {
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort,
      ports: [{ port: 80, protocol: 'TCP', nodePort: 30080 }],
    },
  };
}

/**
 * An EndpointSlice with one endpoint per entry of `endpoints`: `<service>-abcde` for IPv4,
 * `<service>-v6abc` for IPv6 (a dual-stack Service has one slice per family, naming the same pods).
 */
export function endpointSlice(
  namespace: string,
  service: string,
  endpoints: { nodeName: string; ready: boolean }[],
  addressType: 'IPv4' | 'IPv6' = 'IPv4',
): KubeObject {
  const v6 = addressType === 'IPv6';
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace,
      name: `${service}-${v6 ? 'v6abc' : 'abcde'}`,
      labels: { 'kubernetes.io/service-name': service },
    },
    addressType,
    endpoints: endpoints.map((e, i) => ({
      addresses: [v6 ? `fd00:244:${i}::5` : `10.244.${i}.5`],
      targetRef: { kind: 'Pod', namespace, name: `${service}-${i}` },
      conditions: { ready: e.ready },
      nodeName: e.nodeName,
    })),
    ports: [{ port: 8080, protocol: 'TCP' }],
  };
}
