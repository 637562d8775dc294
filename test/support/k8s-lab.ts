/**
 * The fixture API server inside a lab host (see test/k8s-fixture/lab-api.ts) and the
 * config of a daemon on node `lab-node` with `source: kubernetes` pointed at it.
 */
import { writeFileSync } from 'node:fs';
import { kubernetesModeConfig, type LabApi, startLabFixture } from '../k8s-fixture/lab-api.js';
import type { DaemonFiles } from './daemon.js';

export { startLabFixture };
export type FixtureApi = LabApi;

export function writeKubernetesDaemonConfig(
  files: DaemonFiles,
  server: string,
  token: string,
  devices: string[],
): void {
  writeFileSync(
    files.configPath,
    kubernetesModeConfig('lab-node', server, token, files.dir, devices).join('\n'),
  );
}
