import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../daemon/config/load.js';
import { clusterConfig } from '../../daemon/sources/kubernetes/source.js';
import { InputError } from '../../model/input-errors.js';

const dir = mkdtempSync(join(tmpdir(), 'nw-k8s-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(text: string) {
  const file = join(dir, `c${Math.random()}.yaml`);
  writeFileSync(file, text);
  return loadConfig(file);
}

describe('config: the kubernetes section', () => {
  it('reads a full section', () => {
    const config = load(
      [
        'nodeName: n1',
        'source: kubernetes',
        'kubernetes:',
        '  kubeconfig: /etc/nodewarden/kubeconfig',
        '  qps: 5',
        '  burst: 10',
        '  heartbeat: { renewIntervalMs: 500, expirySeconds: 2 }',
        '  loadBalancerClass: { name: example.com/lb, unclassed: false }',
      ].join('\n'),
    );
    expect(config.kubernetes).toMatchObject({
      kubeconfig: '/etc/nodewarden/kubeconfig',
      qps: 5,
      burst: 10,
      namespace: 'nodewarden',
      heartbeat: { renewIntervalMs: 500, expirySeconds: 2 },
      loadBalancerClass: { name: 'example.com/lb', unclassed: false },
    });
  });

  it('names the field: unknown keys, and a renew interval not shorter than the expiry', () => {
    expect(() => load('kubernetes:\n  qsp: 5\n')).toThrow(InputError);
    expect(() => load('kubernetes:\n  qsp: 5\n')).toThrow(/qsp/);
    expect(() => load('kubernetes:\n  heartbeat: { renewIntervalMs: 3000, expirySeconds: 3 }\n')).toThrow(
      /kubernetes\.heartbeat.*renewIntervalMs must be shorter than expirySeconds/,
    );
  });
});

describe('cluster facts for the firewall', () => {
  it('adds this node’s labels, the other nodes’ addresses and the API servers to the config', () => {
    const config = load('nodeName: n1\nlabels: { site: a }\ncluster: { nodes: [10.0.0.9] }\n');
    const result = clusterConfig(
      config,
      {
        self: {
          name: 'n1',
          labels: { role: 'edge' },
          addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
        },
        nodes: [
          { name: 'n1', labels: {}, addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] },
          { name: 'n2', labels: {}, addresses: [{ type: 'InternalIP', address: '10.0.0.2' }] },
        ],
        apiServers: [{ addresses: ['10.0.0.100'], port: 6443 }],
      },
      'https://10.96.0.1:443',
    );
    expect(result.labels).toEqual({ site: 'a', role: 'edge' });
    expect(result.cluster.nodes).toEqual(['10.0.0.2', '10.0.0.9']);
    expect(result.cluster.apiServers).toEqual([
      { address: '10.96.0.1', port: 443 },
      { address: '10.0.0.100', port: 6443 },
    ]);
  });
});
