import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KubeClient } from '../../daemon/sources/kubernetes/client.js';
import { podsPath } from '../../daemon/sources/kubernetes/pods.js';
import { KubernetesWatcher } from '../../daemon/sources/kubernetes/watcher.js';
import { FIXTURE_RESOURCES } from '../k8s-fixture/resources.js';
import type { KubeObject } from '../k8s-fixture/server.js';

const MANIFESTS = join(import.meta.dirname, '../../manifests');
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const load = (file: string): KubeObject[] =>
  parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS();
  });

function watcherPaths(): string[] {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://192.0.2.1:6443' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const client = new KubeClient({ config, qps: 1, burst: 1 });
  return new KubernetesWatcher({
    client,
    nodeName: 'n',
    namespace: 'nodewarden',
    idleTimeoutMs: 1000,
  })
    .paths()
    .concat(podsPath());
}

describe('manifests', () => {
  const rbac = load(join(MANIFESTS, 'rbac.yaml'));
  const clusterRole = rbac.find((d) => d.kind === 'ClusterRole')!;
  const role = rbac.find((d) => d.kind === 'Role')!;

  const allows = (rules: Rule[], group: string, resource: string, verb: string) =>
    rules.some(
      (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
    );

  it('lets the daemon list and watch every collection the watcher reads, and nothing more', () => {
    const paths = watcherPaths();
    expect(paths.length).toBeGreaterThan(5);
    for (const path of paths) {
      const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)$/.exec(path);
      expect(m, path).not.toBeNull();
      const [, group = '', namespace, resource] = m!;
      const rules = namespace ? role.rules : clusterRole.rules;
      for (const verb of ['list', 'watch'])
        expect(allows(rules, group, resource!, verb), `${verb} ${path}`).toBe(true);
    }
    const granted = clusterRole.rules
      .filter((r: Rule) => r.verbs.includes('list'))
      .flatMap((r: Rule) => r.resources.map((res: string) => `${r.apiGroups[0]}/${res}`));
    expect(granted.length).toBe(paths.filter((p) => !p.includes('/namespaces/')).length);
  });

  it('lets a node write only Leases, Events, the status of our kinds and Services’ status', () => {
    for (const verb of ['create', 'update', 'delete', 'get'])
      expect(allows(role.rules, 'coordination.k8s.io', 'leases', verb)).toBe(true);
    expect(role.metadata.namespace).toBe('nodewarden');
    expect(allows(clusterRole.rules, '', 'events', 'create')).toBe(true);
    expect(allows(clusterRole.rules, 'nodewarden.io', 'loadbalancerpools/status', 'patch')).toBe(true);
    const writes = clusterRole.rules.filter((r: Rule) =>
      r.verbs.some((v: string) => !['list', 'watch', 'get'].includes(v)),
    );
    expect(writes.flatMap((r: Rule) => r.resources).sort()).toEqual([
      'events',
      'l2announcements/status',
      'loadbalancerpools/status',
      'services/status',
    ]);
  });

  it('defines CRDs for our kinds that match what the fixture serves', () => {
    const crds = readdirSync(join(MANIFESTS, 'crds')).flatMap((f) => load(join(MANIFESTS, 'crds', f)));
    const ours = FIXTURE_RESOURCES.filter((r) => r.group === 'nodewarden.io');
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(ours.map((r) => `${r.plural}.${r.group}`).sort());
    for (const crd of crds) {
      const served = ours.find((r) => `${r.plural}.${r.group}` === crd.metadata.name)!;
      expect(crd.spec.names.kind).toBe(served.kind);
      expect(crd.spec.scope).toBe(served.namespaced ? 'Namespaced' : 'Cluster');
      expect(crd.spec.versions.map((v: KubeObject) => v.name)).toEqual([served.version]);
      expect(Boolean(crd.spec.versions[0].subresources?.status)).toBe(served.statusSubresource);
    }
    expect(load(join(MANIFESTS, 'namespace.yaml'))[0]).toMatchObject({
      kind: 'Namespace',
      metadata: { name: 'nodewarden' },
    });
  });
});
