/** A kubeconfig file that points at a fixture API server, as an operator's would point at a real one. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** Written into `dir` (the caller removes it), else into a temporary directory of its own. */
export function writeFixtureKubeconfig(
  server: string,
  token: string,
  dir = mkdtempSync(join(tmpdir(), 'nw-kubeconfig-')),
): string {
  const file = join(dir, 'kubeconfig');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // client-node refuses plain http unless TLS verification is off; the fixture speaks no TLS.
      clusters: [{ name: 'fixture', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'nodewarden', user: { token } }],
      contexts: [{ name: 'fixture', context: { cluster: 'fixture', user: 'nodewarden' } }],
      'current-context': 'fixture',
    }),
    { mode: 0o600 },
  );
  return file;
}
