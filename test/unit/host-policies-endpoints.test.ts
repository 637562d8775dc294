import { describe, expect, it } from 'vitest';
import { projectPod } from '../../daemon/sources/kubernetes/pods.js';
import {
  endpointResolver,
  type PodAddresses,
  podWatchPlans,
  resolveEndpoints,
  selectorKey,
  summarizeEndpoints,
} from '../../host-policies/endpoints.js';
import { parsePolicyText } from '../../host-policies/parse.js';

function policies(...rules: string[]) {
  const text = [
    'apiVersion: cilium.io/v2',
    'kind: CiliumClusterwideNetworkPolicy',
    'metadata: {name: p}',
    'spec:',
    '  nodeSelector: {}',
    ...rules.map((r) => `  ${r}`),
  ].join('\n');
  return parsePolicyText('kubernetes', text, { mode: 'kubernetes' });
}

const pod = (namespace: string, name: string, labels: Record<string, string>, ...addresses: string[]) =>
  ({ namespace, name, labels, addresses }) satisfies PodAddresses;

describe('pod watches planned from the policies', () => {
  it('one watch per distinct selector, whatever the order or the k8s: source prefix; the namespace label makes it namespaced', () => {
    const plans = podWatchPlans(
      policies(
        'ingress:',
        '- fromEndpoints:',
        '  - matchLabels: {app: admin, tier: ops}',
        '  - matchLabels: {k8s:app: web, k8s:io.kubernetes.pod.namespace: shop}',
        '- fromEndpoints:',
        '  - matchLabels: {tier: ops, k8s:app: admin}',
        'egress:',
        '- toEndpoints:',
        '  - matchExpressions:',
        '    - {key: role, operator: In, values: [db, cache]}',
        '    - {key: canary, operator: DoesNotExist}',
        '    - {key: io.kubernetes.pod.namespace, operator: NotIn, values: [kube-system]}',
        'egressDeny:',
        '- toEndpoints: [{}]',
      ),
    );
    expect(plans.map(({ key, namespace, labelSelector }) => ({ key, namespace, labelSelector }))).toEqual([
      { key: '', namespace: undefined, labelSelector: '' },
      {
        key: '!canary,io.kubernetes.pod.namespace notin (kube-system),role in (cache,db)',
        namespace: undefined,
        labelSelector: '!canary,role in (cache,db)',
      },
      { key: 'app=admin,tier=ops', namespace: undefined, labelSelector: 'app=admin,tier=ops' },
      { key: 'app=web,io.kubernetes.pod.namespace=shop', namespace: 'shop', labelSelector: 'app=web' },
    ]);
  });

  it('no endpoint selector, no pod watch', () => {
    expect(podWatchPlans(policies('ingress:', '- fromEntities: [cluster]'))).toEqual([]);
  });
});

describe('endpoint selectors resolved to pod addresses', () => {
  const pods = [
    pod('shop', 'web-1', { app: 'web' }, '10.1.0.5', 'fd00::5'),
    pod('shop', 'web-2', { app: 'web' }, '10.1.0.6'),
    pod('other', 'web-3', { app: 'web' }, '10.2.0.7'),
    pod('shop', 'db-1', { app: 'db' }, '10.1.0.9'),
    pod('shop', 'web-new', { app: 'web' }),
  ];

  it('IPv4 and IPv6 of the matching pods, the namespace matched as its pseudo-label', () => {
    const inShop = {
      matchLabels: { 'k8s:app': 'web', 'k8s:io.kubernetes.pod.namespace': 'shop' },
      matchExpressions: [],
    };
    expect(resolveEndpoints(inShop, pods)).toEqual(['10.1.0.5', '10.1.0.6', 'fd00::5']);
    const anyNamespace = { matchLabels: { app: 'web' }, matchExpressions: [] };
    expect(resolveEndpoints(anyNamespace, pods)).toEqual(['10.1.0.5', '10.1.0.6', '10.2.0.7', 'fd00::5']);
    const notShop = {
      matchLabels: {},
      matchExpressions: [
        { key: 'io.kubernetes.pod.namespace', operator: 'NotIn' as const, values: ['shop'] },
      ],
    };
    expect(resolveEndpoints(notShop, pods)).toEqual(['10.2.0.7']);
    expect(resolveEndpoints({ matchLabels: { app: 'none' }, matchExpressions: [] }, pods)).toEqual([]);
  });

  it('the compile hook finds a peer by its selector in any key order; status and trace count per selector', () => {
    const selector = { matchLabels: { tier: 'ops', app: 'admin' }, matchExpressions: [] };
    const resolve = endpointResolver({ [selectorKey(selector)]: ['10.0.0.1', 'fd00::1'] });
    expect(
      resolve({
        kind: 'endpoints',
        selector: { matchLabels: { 'k8s:app': 'admin', tier: 'ops' }, matchExpressions: [] },
      }),
    ).toEqual(['10.0.0.1', 'fd00::1']);
    expect(
      resolve({ kind: 'endpoints', selector: { matchLabels: { app: 'admin' }, matchExpressions: [] } }),
    ).toEqual([]);
    expect(summarizeEndpoints({ 'app=b': [], 'app=a': ['10.0.0.1'] }, '10.0.0.1')).toEqual([
      { selector: 'app=a', addresses: 1, includesPeer: true },
      { selector: 'app=b', addresses: 0, includesPeer: false },
    ]);
  });
});

describe('Pod projection', () => {
  const object = (spec: object, status: object) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'a', namespace: 'n', labels: { app: 'x' }, annotations: { big: 'y' } },
    spec,
    status,
  });

  it('keeps name, namespace, labels and both address families', () => {
    expect(
      projectPod(
        object(
          { containers: [] },
          { phase: 'Running', podIP: '10.0.0.1', podIPs: [{ ip: '10.0.0.1' }, { ip: 'fd00::1' }] },
        ),
      ),
    ).toEqual({
      ok: true,
      value: { namespace: 'n', name: 'a', labels: { app: 'x' }, addresses: ['10.0.0.1', 'fd00::1'] },
    });
    expect(projectPod(object({}, { phase: 'Pending' }))).toEqual({
      ok: true,
      value: { namespace: 'n', name: 'a', labels: { app: 'x' }, addresses: [] },
    });
  });

  it('skips finished pods (their IPs can be reused) and hostNetwork pods (their IP is the node)', () => {
    for (const phase of ['Succeeded', 'Failed'])
      expect(projectPod(object({}, { phase, podIPs: [{ ip: '10.0.0.1' }] }))).toEqual({ ok: 'skip' });
    expect(
      projectPod(object({ hostNetwork: true }, { phase: 'Running', podIPs: [{ ip: '192.0.2.1' }] })),
    ).toEqual({
      ok: 'skip',
    });
  });
});
