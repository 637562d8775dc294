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

/** Starts the fixture API server inside `host`'s namespace (bookmarks every 500 ms). */
export async function startLabFixture(
  host: Host,
  token: string,
): Promise<{ process: LabProcess; server: string; api: LabApi }> {
  const process = host.spawn([
    'node',
    '--import',
    'tsx',
    'test/k8s-fixture/main.ts',
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
    `  kubeconfig: ${writeFixtureKubeconfig(server, token)}`,
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

/** An EndpointSlice `<service>-abcde` with one endpoint on `nodeName` and any more given. */
export function endpointSlice(
  namespace: string,
  service: string,
  endpoints: { nodeName: string; ready: boolean }[],
): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace, name: `${service}-abcde`, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: endpoints.map((e, i) => ({
      addresses: [`10.244.${i}.5`],
      conditions: { ready: e.ready },
      nodeName: e.nodeName,
    })),
    ports: [{ port: 8080, protocol: 'TCP' }],
  };
}
