/**
 * The fixture API server inside a lab host, a curl-based client for the test's
 * own API calls, and the config of a daemon with `source: kubernetes` pointed at it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFixtureKubeconfig } from '../k8s-fixture/kubeconfig.js';
import type { KubeObject } from '../k8s-fixture/server.js';
import type { Host, LabProcess } from '../lab/index.js';
import type { DaemonFiles } from './daemon.js';

export type FixtureApi = (
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ code: number; body: KubeObject }>;

export interface LabFixture {
  process: LabProcess;
  server: string;
  /** Calls the fixture inside the host's namespace (it listens on that namespace's loopback). */
  api: FixtureApi;
}

export async function startLabFixture(host: Host, token: string): Promise<LabFixture> {
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
  const api: FixtureApi = async (method, path, body) => {
    const args = ['curl', '-s', '-o', '-', '-w', '\\n%{http_code}', '-X', method];
    args.push('-H', `authorization: Bearer ${token}`);
    if (body !== undefined)
      args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
    const out = (await host.exec([...args, server + path])).stdout;
    const nl = out.lastIndexOf('\n');
    return { code: Number(out.slice(nl + 1)), body: JSON.parse(out.slice(0, nl) || 'null') };
  };
  return { process, server, api };
}

/** config.yaml for a daemon on node `lab-node` that reads the fixture. */
export function writeKubernetesDaemonConfig(
  files: DaemonFiles,
  server: string,
  token: string,
  devices: string[],
): void {
  const kubeconfig = writeFixtureKubeconfig(server, token);
  writeFileSync(
    files.configPath,
    [
      'nodeName: lab-node',
      `devices: [${devices.join(', ')}]`,
      'source: kubernetes',
      'kubernetes:',
      `  kubeconfig: ${kubeconfig}`,
      '  idleTimeoutSeconds: 5',
      `policies: { directory: ${join(files.dir, 'policies.d')} }`,
    ].join('\n'),
  );
}
