import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostPolicy } from '../../host-policies/model.js';
import {
  loadPolicyDirectory,
  type PolicyMode,
  parsePolicyFiles,
  parsePolicyText,
} from '../../host-policies/parse.js';
import { InputError } from '../../model/input-errors.js';

const F = 'policies.d/test.yaml';
const P = 'CiliumClusterwideNetworkPolicy/p';
const FIXTURES = join(import.meta.dirname, '../fixtures/policies');
const EXAMPLES = join(import.meta.dirname, '../../host-policies/examples');

/** Lines 1–6 of every `spec()` document; its body starts on line 7. */
const HEAD = [
  'apiVersion: cilium.io/v2',
  'kind: CiliumClusterwideNetworkPolicy',
  'metadata:',
  '  name: p',
  'spec:',
  '  nodeSelector: {}',
];

/** A policy named p selecting every node, with `lines` as the rest of its spec (line 7 on). */
function spec(...lines: string[]): string {
  return [...HEAD, ...lines.map((l) => `  ${l}`), ''].join('\n');
}

function doc(...lines: string[]): string {
  return [...lines, ''].join('\n');
}

function parse(text: string, mode: PolicyMode = 'standalone'): HostPolicy[] {
  return parsePolicyText(F, text, { mode });
}

function one(text: string, mode: PolicyMode = 'standalone'): HostPolicy {
  const policies = parse(text, mode);
  expect(policies).toHaveLength(1);
  return policies[0]!;
}

function errorOf(fn: () => unknown): InputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error('expected an InputError');
}

/** Every problem message, in order, as the CLI prints them. */
function problems(text: string, mode: PolicyMode = 'standalone'): string[] {
  return errorOf(() => parse(text, mode)).message.split('\n');
}

/** One expected message for policy p in F. */
function at(line: number, path: string, message: string): string {
  return `${F}:${line}: ${P} ${path}: ${message}`;
}

const ANY_PORT = (protocol: 'TCP' | 'UDP' | 'SCTP') => ({ kind: 'ports', protocol, port: 0, endPort: 65535 });
const PORT = (protocol: 'TCP' | 'UDP' | 'SCTP', port: number, endPort = port) => ({
  kind: 'ports',
  protocol,
  port,
  endPort,
});

describe("Cilium's own host policy examples parse unchanged", () => {
  it("a policy in the host firewall tutorial's layout", () => {
    const file = join(FIXTURES, 'tutorial-style-host-policy.yaml');
    expect(parsePolicyFiles([file], { mode: 'standalone' })).toEqual([
      {
        name: 'ssh-and-ping-for-admins',
        source: file,
        audit: false,
        nodeSelector: { matchLabels: { 'admin-access': 'ssh' }, matchExpressions: [] },
        ingress: [
          { index: 0, peers: [{ kind: 'entity', entity: 'cluster' }], l4: 'any' },
          { index: 1, peers: 'any', l4: [PORT('TCP', 22)] },
          { index: 2, peers: 'any', l4: [{ kind: 'icmp', family: 'IPv4', type: 8 }] },
        ],
        ingressDeny: [],
        egress: [],
        egressDeny: [],
        defaultDeny: { ingress: true, egress: false },
        warnings: [],
      },
    ]);
  });

  it('allow-extended-protocols: VRRP without a port', () => {
    const file = join(FIXTURES, 'portless-protocols.yaml');
    const [policy] = parsePolicyFiles([file], { mode: 'standalone' });
    expect(policy!.name).toBe('edge-router-egress');
    expect(policy!.egress).toEqual([
      {
        index: 0,
        peers: 'any',
        l4: [
          PORT('TCP', 6443),
          PORT('TCP', 443),
          PORT('TCP', 2379),
          PORT('TCP', 4240),
          PORT('UDP', 8472),
          { kind: 'protocol', protocol: 112 },
        ],
      },
    ]);
    expect(policy!.defaultDeny).toEqual({ ingress: false, egress: true });
    expect(policy!.warnings).toEqual([]);
  });

  it('a lock-down policy in the style of lock-down-dev-vms, with the Kubernetes source', () => {
    const file = join(FIXTURES, 'lock-down-cluster-nodes.yaml');
    const [policy] = parsePolicyFiles([file], { mode: 'kubernetes' });
    const kubeDns = {
      kind: 'endpoints',
      selector: {
        matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s-app': 'kube-dns' },
        matchExpressions: [],
      },
    };
    expect(policy!.nodeSelector).toEqual({ matchLabels: {}, matchExpressions: [] });
    expect(policy!.ingress).toEqual([
      { index: 0, peers: [{ kind: 'entity', entity: 'remote-node' }], l4: 'any' },
      { index: 1, peers: [{ kind: 'cidr', cidr: '192.168.33.0/24', except: [] }], l4: 'any' },
      { index: 2, peers: [{ kind: 'entity', entity: 'world' }], l4: [PORT('TCP', 22)] },
      { index: 3, peers: [kubeDns], l4: [PORT('TCP', 6443)] },
    ]);
    expect(policy!.egress).toEqual([
      { index: 0, peers: [{ kind: 'entity', entity: 'remote-node' }], l4: 'any' },
      { index: 1, peers: [kubeDns], l4: [PORT('UDP', 53)] },
      { index: 2, peers: [{ kind: 'entity', entity: 'world' }], l4: [PORT('UDP', 123)] },
    ]);
    expect(policy!.warnings).toEqual([
      `${file}:15: CiliumClusterwideNetworkPolicy/lock-down-cluster-nodes spec.ingress[0].fromEntities[1]: entity health has no meaning on a host and matches nothing here; the rule keeps its other peers`,
      `${file}:35: CiliumClusterwideNetworkPolicy/lock-down-cluster-nodes spec.egress[0].toEntities[1]: entity health has no meaning on a host and matches nothing here; the rule keeps its other peers`,
    ]);
  });

  it('the same lock-down policy on a standalone node: fromEndpoints and toEndpoints are rejected by name', () => {
    const file = join(FIXTURES, 'lock-down-cluster-nodes.yaml');
    const error = errorOf(() => parsePolicyFiles([file], { mode: 'standalone' }));
    expect(error.message).toBe(
      [
        `${file}:24: CiliumClusterwideNetworkPolicy/lock-down-cluster-nodes spec.ingress[3].fromEndpoints: fromEndpoints needs the Kubernetes source; standalone nodes have no pods`,
        `${file}:36: CiliumClusterwideNetworkPolicy/lock-down-cluster-nodes spec.egress[1].toEndpoints: toEndpoints needs the Kubernetes source; standalone nodes have no pods`,
      ].join('\n'),
    );
  });

  it("lock-down-ingress's placeholder port name is rejected, as Cilium's example intends", () => {
    expect(
      problems(
        spec(
          'ingress:',
          '- toPorts:',
          '  - ports:',
          '    - port: "22"',
          '      protocol: TCP',
          '    - port: "REMOVE_ME_AFTER_DOUBLE_CHECKING_PORTS"',
          '      protocol: TCP',
        ),
      ),
    ).toEqual([
      at(
        12,
        'spec.ingress[0].toPorts[0].ports[1].port',
        'named port "REMOVE_ME_AFTER_DOUBLE_CHECKING_PORTS" is not supported: a host has no container ports to name; use the port number',
      ),
    ]);
  });
});

describe('the examples shipped with nodewarden', () => {
  const files = readdirSync(EXAMPLES)
    .filter((f) => f.endsWith('.yaml'))
    .sort();

  it('are the three documented ones', () => {
    expect(files).toEqual([
      'deny-metadata-and-smtp.yaml',
      'ipv6-web-frontends.yaml',
      'ssh-from-management.yaml',
    ]);
  });

  it.each(files)('%s parses cleanly on a standalone node, without warnings', (name) => {
    const policies = parsePolicyFiles([join(EXAMPLES, name)], { mode: 'standalone' });
    expect(policies).toHaveLength(1);
    expect(policies[0]!.warnings).toEqual([]);
  });

  it('load together from their directory, in name order', () => {
    const policies = loadPolicyDirectory(EXAMPLES, { mode: 'standalone' });
    expect(policies.map((p) => p.name)).toEqual([
      'deny-metadata-and-smtp',
      'ipv6-web-frontends',
      'ssh-from-management',
    ]);
  });

  it('ssh-from-management: SSH from the management CIDR, ICMP echo, in audit mode', () => {
    const [policy] = parsePolicyFiles([join(EXAMPLES, 'ssh-from-management.yaml')], { mode: 'standalone' });
    expect(policy!.audit).toBe(true);
    expect(policy!.nodeSelector).toEqual({ matchLabels: { role: 'edge' }, matchExpressions: [] });
    expect(policy!.ingress).toEqual([
      { index: 0, peers: [{ kind: 'cidr', cidr: '192.0.2.0/24', except: [] }], l4: [PORT('TCP', 22)] },
      {
        index: 1,
        peers: 'any',
        l4: [
          { kind: 'icmp', family: 'IPv4', type: 8 },
          { kind: 'icmp', family: 'IPv6', type: 128 },
          { kind: 'icmp', family: 'IPv6', type: 135 },
          { kind: 'icmp', family: 'IPv6', type: 136 },
        ],
      },
    ]);
    expect(policy!.defaultDeny).toEqual({ ingress: true, egress: false });
  });

  it('deny-metadata-and-smtp: deny rules that leave both directions open otherwise', () => {
    const [policy] = parsePolicyFiles([join(EXAMPLES, 'deny-metadata-and-smtp.yaml')], {
      mode: 'standalone',
    });
    expect(policy!.defaultDeny).toEqual({ ingress: false, egress: false });
    expect(policy!.egressDeny).toEqual([
      { index: 0, peers: [{ kind: 'cidr', cidr: '169.254.169.254/32', except: [] }], l4: 'any' },
      { index: 1, peers: [{ kind: 'entity', entity: 'world' }], l4: [PORT('TCP', 25)] },
    ]);
    expect(policy!.ingressDeny).toEqual([
      {
        index: 0,
        peers: [{ kind: 'cidr', cidr: '10.0.0.0/8', except: ['10.20.0.0/16'] }],
        l4: [PORT('TCP', 10250)],
      },
    ]);
  });

  it('ipv6-web-frontends: IPv6 CIDR with except, ANY on 443, ICMPv6 by name', () => {
    const [policy] = parsePolicyFiles([join(EXAMPLES, 'ipv6-web-frontends.yaml')], { mode: 'standalone' });
    expect(policy!.nodeSelector.matchExpressions).toEqual([
      { key: 'role', operator: 'In', values: ['web', 'edge'] },
    ]);
    expect(policy!.ingress[0]!.l4).toEqual([
      PORT('TCP', 80),
      PORT('TCP', 443),
      PORT('UDP', 443),
      PORT('SCTP', 443),
    ]);
    expect(policy!.ingress[1]!.peers).toEqual([
      { kind: 'cidr', cidr: '2001:db8:100::/48', except: ['2001:db8:100:ff::/64'] },
    ]);
    expect(policy!.ingress[2]!.l4).toEqual([
      { kind: 'icmp', family: 'IPv6', type: 135 },
      { kind: 'icmp', family: 'IPv6', type: 136 },
      { kind: 'icmp', family: 'IPv6', type: 134 },
      { kind: 'icmp', family: 'IPv6', type: 2 },
      { kind: 'icmp', family: 'IPv6', type: 128 },
    ]);
  });
});

describe('semantics', () => {
  it('an L4-only rule matches every peer, an L3-only rule every port, and `{}` nothing', () => {
    const policy = one(
      spec(
        'ingress:',
        '- toPorts: [{ports: [{port: "22", protocol: TCP}]}]',
        '- fromCIDR: [10.0.0.0/8]',
        '- {}',
        '- fromCIDR: []',
        '  toPorts: []',
      ),
    );
    expect(policy.ingress).toEqual([
      { index: 0, peers: 'any', l4: [PORT('TCP', 22)] },
      { index: 1, peers: [{ kind: 'cidr', cidr: '10.0.0.0/8', except: [] }], l4: 'any' },
      { index: 2, peers: [], l4: 'any' },
      // Empty lists are absent lists, as in Cilium.
      { index: 3, peers: [], l4: 'any' },
    ]);
    expect(policy.defaultDeny).toEqual({ ingress: true, egress: false });
  });

  it('ANY, or no protocol, expands to TCP, UDP and SCTP; port 0 or no port means every port', () => {
    const policy = one(
      spec(
        'egress:',
        '- toPorts:',
        '  - ports:',
        '    - port: "53"',
        '    - port: 123',
        '      protocol: ANY',
        '    - port: "0"',
        '      protocol: TCP',
        '    - protocol: UDP',
        '    - port: 8000',
        '      endPort: 8080',
        '      protocol: SCTP',
        '    - port: 9000',
        '      endPort: 0',
        '      protocol: TCP',
        '    - port: 0',
      ),
    );
    expect(policy.egress[0]!.l4).toEqual([
      PORT('TCP', 53),
      PORT('UDP', 53),
      PORT('SCTP', 53),
      PORT('TCP', 123),
      PORT('UDP', 123),
      PORT('SCTP', 123),
      ANY_PORT('TCP'),
      ANY_PORT('UDP'),
      PORT('SCTP', 8000, 8080),
      // endPort 0 is Cilium's "not set".
      PORT('TCP', 9000),
      // Port 0 with no protocol: every port of every port protocol (TCP already listed).
      ANY_PORT('SCTP'),
    ]);
  });

  it('bare protocols map to their IANA numbers; port 0 is allowed on them', () => {
    const policy = one(
      spec(
        'ingress:',
        '- fromCIDR: [192.0.2.0/24]',
        '  toPorts:',
        '  - ports:',
        '    - protocol: VRRP',
        '    - protocol: IGMP',
        '      port: "0"',
        '    - protocol: GRE',
        '    - protocol: IPIP',
        '    - protocol: IPV6',
        '    - protocol: ESP',
        '    - protocol: AH',
      ),
    );
    expect(policy.ingress[0]!.l4).toEqual([
      { kind: 'protocol', protocol: 112 },
      { kind: 'protocol', protocol: 2 },
      { kind: 'protocol', protocol: 47 },
      { kind: 'protocol', protocol: 4 },
      { kind: 'protocol', protocol: 41 },
      { kind: 'protocol', protocol: 50 },
      { kind: 'protocol', protocol: 51 },
    ]);
  });

  it('ICMP types by number, numeric string or Cilium name; IPv4 is the default family', () => {
    const policy = one(
      spec(
        'ingress:',
        '- icmps:',
        '  - fields:',
        '    - type: 0',
        '    - type: "3"',
        '    - type: Echo',
        '    - type: EchoRequest',
        '    - type: EchoRequest',
        '      family: IPv6',
        '    - type: 255',
        '      family: IPv6',
        '  - fields:',
        '    - type: RouterSolicitation',
        '      family: IPv6',
      ),
    );
    expect(policy.ingress[0]!.l4).toEqual([
      { kind: 'icmp', family: 'IPv4', type: 0 },
      { kind: 'icmp', family: 'IPv4', type: 3 },
      // Echo and EchoRequest are both 8: listed once.
      { kind: 'icmp', family: 'IPv4', type: 8 },
      { kind: 'icmp', family: 'IPv6', type: 128 },
      { kind: 'icmp', family: 'IPv6', type: 255 },
      { kind: 'icmp', family: 'IPv6', type: 133 },
    ]);
  });

  it('CIDRs are canonical: host bits cleared (with a warning), bare addresses are /32 and /128', () => {
    const policy = one(
      spec(
        'ingress:',
        '- fromCIDR:',
        '  - 10.1.2.3/8',
        '  - 192.0.2.7',
        '  - 2001:DB8:0:0:0:0:0:1',
        '  - 2001:db8:0:0:1:0:0:1/64',
        '  - "::ffff:198.51.100.0/120"',
        '  - 10.0.0.0/8',
        '- fromCIDRSet:',
        '  - cidr: 10.0.0.0/8',
        '    except:',
        '    - 10.9.9.9/16',
        '    - 10.9.0.0/16',
        '  - cidr: ::/0',
      ),
    );
    expect(policy.ingress[0]!.peers).toEqual([
      { kind: 'cidr', cidr: '10.0.0.0/8', except: [] },
      { kind: 'cidr', cidr: '192.0.2.7/32', except: [] },
      { kind: 'cidr', cidr: '2001:db8::1/128', except: [] },
      { kind: 'cidr', cidr: '2001:db8::/64', except: [] },
      { kind: 'cidr', cidr: '198.51.100.0/24', except: [] },
    ]);
    expect(policy.ingress[1]!.peers).toEqual([
      { kind: 'cidr', cidr: '10.0.0.0/8', except: ['10.9.0.0/16'] },
      { kind: 'cidr', cidr: '::/0', except: [] },
    ]);
    expect(policy.warnings).toEqual([
      at(
        9,
        'spec.ingress[0].fromCIDR[0]',
        '10.1.2.3/8 has host bits set; it means 10.0.0.0/8 (as in Cilium)',
      ),
      at(
        12,
        'spec.ingress[0].fromCIDR[3]',
        '2001:db8:0:0:1:0:0:1/64 has host bits set; it means 2001:db8::/64 (as in Cilium)',
      ),
      at(
        13,
        'spec.ingress[0].fromCIDR[4]',
        '::ffff:198.51.100.0/120 is an IPv4-mapped IPv6 address; it is matched as the IPv4 198.51.100.0/24',
      ),
      at(
        18,
        'spec.ingress[1].fromCIDRSet[0].except[0]',
        '10.9.9.9/16 has host bits set; it means 10.9.0.0/16 (as in Cilium)',
      ),
    ]);
  });

  it('inert entities in allow rules match nothing, with a warning; alone they leave the rule matching nothing', () => {
    const policy = one(
      spec(
        'ingress:',
        '- fromEntities: [health]',
        '  toPorts: [{ports: [{port: "4240", protocol: TCP}]}]',
        '- fromEntities: [init, ingress, unmanaged, host, host]',
        'egress:',
        '- toEntities: [none]',
        '- toEntities: [all, world, cluster, remote-node, kube-apiserver]',
      ),
    );
    expect(policy.ingress).toEqual([
      { index: 0, peers: [], l4: [PORT('TCP', 4240)] },
      { index: 1, peers: [{ kind: 'entity', entity: 'host' }], l4: 'any' },
    ]);
    expect(policy.egress).toEqual([
      // `none` is Cilium's entity that never exists: nothing, and no warning.
      { index: 0, peers: [], l4: 'any' },
      {
        index: 1,
        peers: ['all', 'world', 'cluster', 'remote-node', 'kube-apiserver'].map((entity) => ({
          kind: 'entity',
          entity,
        })),
        l4: 'any',
      },
    ]);
    expect(policy.warnings).toEqual([
      at(
        8,
        'spec.ingress[0].fromEntities[0]',
        'entity health has no meaning on a host and matches nothing here; with no other peer, this rule matches nothing',
      ),
      at(
        10,
        'spec.ingress[1].fromEntities[0]',
        'entity init has no meaning on a host and matches nothing here; the rule keeps its other peers',
      ),
      at(
        10,
        'spec.ingress[1].fromEntities[1]',
        'entity ingress has no meaning on a host and matches nothing here; the rule keeps its other peers',
      ),
      at(
        10,
        'spec.ingress[1].fromEntities[2]',
        'entity unmanaged has no meaning on a host and matches nothing here; the rule keeps its other peers',
      ),
    ]);
  });

  it('fromEndpoints and toEndpoints become endpoint selectors with the Kubernetes source', () => {
    const policy = one(
      spec(
        'ingress:',
        '- fromEndpoints:',
        '  - {}',
        '  - matchLabels: {app: prometheus}',
        '    matchExpressions:',
        '    - {key: tier, operator: NotIn, values: [batch]}',
        '    - {key: canary, operator: DoesNotExist}',
        '  toPorts: [{ports: [{port: "9100", protocol: TCP}]}]',
        'egress:',
        '- toEndpoints: [{matchLabels: {app: api}}]',
      ),
      'kubernetes',
    );
    expect(policy.ingress[0]!.peers).toEqual([
      { kind: 'endpoints', selector: { matchLabels: {}, matchExpressions: [] } },
      {
        kind: 'endpoints',
        selector: {
          matchLabels: { app: 'prometheus' },
          matchExpressions: [
            { key: 'tier', operator: 'NotIn', values: ['batch'] },
            { key: 'canary', operator: 'DoesNotExist', values: [] },
          ],
        },
      },
    ]);
    expect(policy.egress[0]!.peers).toEqual([
      { kind: 'endpoints', selector: { matchLabels: { app: 'api' }, matchExpressions: [] } },
    ]);
  });

  describe('default deny (Cilium: a direction with at least one rule, unless enableDefaultDeny says no)', () => {
    it('allow rules or deny rules turn their direction default-deny', () => {
      expect(one(spec('ingress: [{}]')).defaultDeny).toEqual({ ingress: true, egress: false });
      expect(one(spec('egressDeny: [{}]')).defaultDeny).toEqual({ ingress: false, egress: true });
      expect(one(spec('ingressDeny: [{}]', 'egress: [{}]')).defaultDeny).toEqual({
        ingress: true,
        egress: true,
      });
    });

    it('enableDefaultDeny false keeps a direction open; true is the default', () => {
      const policy = one(
        spec('ingress: [{}]', 'egress: [{}]', 'enableDefaultDeny: {ingress: false, egress: true}'),
      );
      expect(policy.defaultDeny).toEqual({ ingress: false, egress: true });
      expect(policy.warnings).toEqual([]);
    });

    it('an empty list is no rule, with a warning that says how to deny everything', () => {
      const policy = one(spec('ingress: []', 'ingressDeny:', 'egress: [{}]'));
      expect(policy.defaultDeny).toEqual({ ingress: false, egress: true });
      expect(policy.warnings).toEqual([
        at(
          7,
          'spec.ingress',
          'an empty list: as in Cilium, it does not make ingress default-deny; write `ingress: [{}]` to deny all ingress',
        ),
        at(
          8,
          'spec.ingressDeny',
          'an empty list: as in Cilium, it does not make ingress default-deny; write `ingressDeny: [{}]` to deny all ingress',
        ),
      ]);
    });

    it('enableDefaultDeny true without rules for its direction has no effect, with a warning', () => {
      const policy = one(spec('egress: [{}]', 'enableDefaultDeny:', '  ingress: true'));
      expect(policy.defaultDeny).toEqual({ ingress: false, egress: true });
      expect(policy.warnings).toEqual([
        at(
          9,
          'spec.enableDefaultDeny.ingress',
          'has no effect without ingress or ingressDeny rules (as in Cilium); add `ingress: [{}]` to deny all ingress',
        ),
      ]);
    });
  });

  it('audit comes from the nodewarden.io/audit annotation', () => {
    const withAudit = (value: string) =>
      doc(
        'apiVersion: cilium.io/v2',
        'kind: CiliumClusterwideNetworkPolicy',
        'metadata:',
        '  name: p',
        '  annotations:',
        `    nodewarden.io/audit: ${value}`,
        '    other.example/annotation: anything',
        'spec:',
        '  nodeSelector: {}',
        '  ingress: [{}]',
      );
    expect(one(withAudit('"true"')).audit).toBe(true);
    expect(one(withAudit('"false"')).audit).toBe(false);
    expect(one(spec('ingress: [{}]')).audit).toBe(false);
  });

  it('specs: one HostPolicy per spec, named <name>/specs[i]; spec and specs together', () => {
    const policies = parse(
      doc(
        'apiVersion: cilium.io/v2',
        'kind: CiliumClusterwideNetworkPolicy',
        'metadata:',
        '  name: multi',
        '  annotations: {nodewarden.io/audit: "true"}',
        'spec:',
        '  nodeSelector: {matchLabels: {role: db}}',
        '  ingress: [{}]',
        'specs:',
        '- nodeSelector: {matchLabels: {role: web}}',
        '  ingress:',
        '  - toPorts: [{ports: [{port: "443", protocol: TCP}]}]',
        '- nodeSelector: {matchLabels: {role: web}}',
        '  egress:',
        '  - fromCIDR: [10.0.0.1/8]',
      ).replace('fromCIDR', 'toCIDR'),
    );
    expect(policies.map((p) => [p.name, p.audit, p.nodeSelector.matchLabels])).toEqual([
      ['multi', true, { role: 'db' }],
      ['multi/specs[0]', true, { role: 'web' }],
      ['multi/specs[1]', true, { role: 'web' }],
    ]);
    expect(policies[2]!.warnings).toEqual([
      `${F}:15: CiliumClusterwideNetworkPolicy/multi specs[1].egress[0].toCIDR[0]: 10.0.0.1/8 has host bits set; it means 10.0.0.0/8 (as in Cilium)`,
    ]);
  });

  it('several documents, empty ones skipped, in order', () => {
    const policies = parse(
      [
        '# host policies for the edge',
        '---',
        spec('ingress: [{}]').replace('name: p', 'name: first'),
        '---',
        '# nothing here',
        '---',
        spec('egress: [{}]').replace('name: p', 'name: second'),
        '---',
      ].join('\n'),
    );
    expect(policies.map((p) => p.name)).toEqual(['first', 'second']);
    expect(parse('')).toEqual([]);
    expect(parse('# only a comment\n---\n')).toEqual([]);
  });

  it('tolerates what the cluster writes: extra metadata and status', () => {
    const policy = one(
      doc(
        'apiVersion: cilium.io/v2',
        'kind: CiliumClusterwideNetworkPolicy',
        'metadata:',
        '  name: p',
        '  uid: 0c4e1b5a-0000-4000-8000-000000000000',
        '  resourceVersion: "12345"',
        '  generation: 2',
        '  creationTimestamp: "2024-01-01T00:00:00Z"',
        '  labels: {team: net}',
        'spec:',
        '  description: from kubectl get -o yaml',
        '  labels: [{key: io.cilium.k8s.policy.name, value: p, source: k8s}]',
        '  nodeSelector: {}',
        '  ingress: [{}]',
        'status:',
        '  conditions: [{type: Valid, status: "True"}]',
      ),
    );
    expect(policy.name).toBe('p');
  });
});

describe('rejections name file, line, object and field', () => {
  it('apiVersion and kind', () => {
    expect(problems(spec('ingress: [{}]').replace('cilium.io/v2', 'cilium.io/v1'))).toEqual([
      at(1, 'apiVersion', 'must be cilium.io/v2'),
    ]);
    expect(problems(spec('ingress: [{}]').replace('apiVersion: cilium.io/v2\n', ''))).toEqual([
      `${F}:1: ${P} apiVersion: required`,
    ]);
    expect(
      problems(spec('ingress: [{}]').replace('CiliumClusterwideNetworkPolicy', 'CiliumNetworkPolicy')),
    ).toEqual([
      at(
        2,
        'kind',
        'host policies must be cluster-wide: use kind CiliumClusterwideNetworkPolicy (a CiliumNetworkPolicy is namespaced and cannot select nodes)',
      ),
    ]);
    expect(
      problems(spec('ingress: [{}]').replace('CiliumClusterwideNetworkPolicy', 'NetworkPolicy')),
    ).toEqual([at(2, 'kind', 'must be CiliumClusterwideNetworkPolicy')]);
  });

  it('metadata: name, namespace, annotations', () => {
    const base = (...metadata: string[]) =>
      doc(
        'apiVersion: cilium.io/v2',
        'kind: CiliumClusterwideNetworkPolicy',
        ...metadata,
        'spec:',
        '  nodeSelector: {}',
        '  ingress: [{}]',
      );
    expect(problems(base('metadata:', '  labels: {a: b}'))).toEqual([
      `${F}:3: document 1 metadata.name: required`,
    ]);
    expect(problems(base())).toEqual([`${F}:1: document 1 metadata: required`]);
    expect(problems(base('metadata:', '  name: Web_Policy'))).toEqual([
      `${F}:4: CiliumClusterwideNetworkPolicy/Web_Policy metadata.name: "Web_Policy" is not a Kubernetes object name (lower-case letters, digits, '-' and '.')`,
    ]);
    expect(problems(base('metadata:', '  name: p', '  namespace: kube-system'))).toEqual([
      at(5, 'metadata.namespace', 'a CiliumClusterwideNetworkPolicy is cluster-scoped and has no namespace'),
    ]);
    expect(
      problems(base('metadata:', '  name: p', '  annotations:', '    nodewarden.io/audit: "yes"')),
    ).toEqual([at(6, 'metadata.annotations.nodewarden.io/audit', 'must be "true" or "false"')]);
    expect(
      problems(base('metadata:', '  name: p', '  annotations:', '    nodewarden.io/audit: true')),
    ).toEqual([at(6, 'metadata.annotations.nodewarden.io/audit', 'must be a string (quote it)')]);
  });

  it('spec: needs spec or specs, nodeSelector, at least one rule; endpointSelector is for pods', () => {
    expect(problems(HEAD.slice(0, 4).join('\n'))).toEqual([`${F}:1: ${P} (root): needs spec or specs`]);
    expect(problems(`${HEAD.slice(0, 4).join('\n')}\nspecs: []\n`)).toEqual([
      `${F}:1: ${P} (root): needs spec or specs`,
    ]);
    expect(problems(spec())).toEqual([
      at(
        5,
        'spec',
        'needs at least one rule in ingress, ingressDeny, egress or egressDeny (Cilium rejects it too)',
      ),
    ]);
    expect(problems(spec('ingress: []', 'egressDeny:'))).toEqual([
      at(
        5,
        'spec',
        'needs at least one rule in ingress, ingressDeny, egress or egressDeny (Cilium rejects it too)',
      ),
    ]);
    expect(problems(spec('ingress: [{}]').replace('  nodeSelector: {}', '  endpointSelector: {}'))).toEqual([
      at(6, 'spec.endpointSelector', 'endpointSelector selects pods; host policies use nodeSelector'),
    ]);
    expect(problems(spec('ingress: [{}]').replace('  nodeSelector: {}\n', ''))).toEqual([
      at(5, 'spec.nodeSelector', 'required: host policies select nodes with nodeSelector'),
    ]);
    expect(problems(spec('ingress: [{}]', 'log: {value: policy-log}'))).toEqual([
      at(8, 'spec.log', 'log (policy verdict logging) is not supported'),
    ]);
  });

  it('unknown fields, wrong types and YAML errors', () => {
    expect(
      problems(
        doc(
          'apiVersion: cilium.io/v2',
          'kind: CiliumClusterwideNetworkPolicy',
          'metadata: {name: p}',
          'extra: 1',
          'spec:',
          '  nodeSelector: {}',
          '  ingres: [{}]',
          '  ingress:',
          '  - fromCidr: [10.0.0.0/8]',
          '  egress: {toCIDR: [10.0.0.0/8]}',
        ),
      ),
    ).toEqual([
      at(4, 'extra', 'unknown field; nodewarden does not support it'),
      at(7, 'spec.ingres', 'unknown field; nodewarden does not support it'),
      at(9, 'spec.ingress[0].fromCidr', 'unknown field; nodewarden does not support it'),
      at(10, 'spec.egress', 'must be a list'),
    ]);
    expect(problems('- a\n- b\n')).toEqual([
      `${F}:1: document 1 (root): a policy document must be a mapping`,
    ]);
    expect(
      problems(spec('ingress: [{}]').replace('nodeSelector: {}', 'nodeSelector: {matchLabels: {ssh: true}}')),
    ).toEqual([at(6, 'spec.nodeSelector.matchLabels.ssh', 'must be a string')]);
    expect(problems('spec: [\n')).toEqual([
      `${F}:2: document 1 (root): YAML: Flow sequence in block collection must be sufficiently indented and end with a ]`,
    ]);
  });

  it('wrong types say what was expected', () => {
    expect(
      problems(
        spec(
          'ingress:',
          '- toPorts: [{ports: [{port: "80", endPort: "90", protocol: TCP}]}]',
          'enableDefaultDeny: {ingress: yes}',
          'description: 42',
        ).replace('nodeSelector: {}', 'nodeSelector: {matchLabels: {"": x}}'),
      ),
    ).toEqual([
      at(6, 'spec.nodeSelector.matchLabels.', 'must not be empty'),
      at(8, 'spec.ingress[0].toPorts[0].ports[0].endPort', 'must be a port number 0–65535'),
      at(9, 'spec.enableDefaultDeny.ingress', 'must be true or false'),
      at(10, 'spec.description', 'must be a string'),
    ]);
    expect(problems(`${HEAD.slice(0, 4).join('\n')}\nspec: []\n`)).toEqual([
      at(5, 'spec', 'must be a mapping'),
    ]);
  });

  it('fields Cilium has but nodewarden cannot enforce, each by name', () => {
    expect(
      problems(
        spec(
          'ingress:',
          '- fromRequires: [{matchLabels: {env: prod}}]',
          '- fromGroups: [{aws: {securityGroupsIds: [sg-1]}}]',
          '- fromNodes: [{matchLabels: {role: db}}]',
          '- authentication: {mode: required}',
          'egress:',
          '- toRequires: [{matchLabels: {env: prod}}]',
          '- toGroups: [{aws: {securityGroupsIds: [sg-1]}}]',
          '- toNodes: [{matchLabels: {role: db}}]',
          '- toServices: [{k8sService: {serviceName: api, namespace: default}}]',
          '- toFQDNs: [{matchName: example.com}]',
          '- authentication: {mode: required}',
        ),
      ),
    ).toEqual([
      at(
        8,
        'spec.ingress[0].fromRequires',
        'fromRequires is not supported: it constrains pod identities, which a host firewall does not have',
      ),
      at(
        9,
        'spec.ingress[1].fromGroups',
        'fromGroups (cloud provider groups) is not supported; list the CIDRs in fromCIDR',
      ),
      at(
        10,
        'spec.ingress[2].fromNodes',
        "fromNodes is not supported; use fromEntities [remote-node] or the nodes' CIDRs",
      ),
      at(11, 'spec.ingress[3].authentication', 'authentication (mutual authentication) is not supported'),
      at(
        13,
        'spec.egress[0].toRequires',
        'toRequires is not supported: it constrains pod identities, which a host firewall does not have',
      ),
      at(
        14,
        'spec.egress[1].toGroups',
        'toGroups (cloud provider groups) is not supported; list the CIDRs in toCIDR',
      ),
      at(
        15,
        'spec.egress[2].toNodes',
        "toNodes is not supported; use toEntities [remote-node] or the nodes' CIDRs",
      ),
      at(16, 'spec.egress[3].toServices', 'toServices is not supported; use toCIDR or toEndpoints'),
      at(17, 'spec.egress[4].toFQDNs', 'toFQDNs is not supported: nodewarden has no DNS proxy; use toCIDR'),
      at(18, 'spec.egress[5].authentication', 'authentication (mutual authentication) is not supported'),
    ]);
  });

  it('L7 and TLS fields of toPorts', () => {
    expect(
      problems(
        spec(
          'ingress:',
          '- toPorts:',
          '  - ports: [{port: "80", protocol: TCP}]',
          '    rules: {http: [{method: GET}]}',
          '    listener: {envoyConfig: {kind: CiliumEnvoyConfig, name: x}, name: y}',
          '    originatingTLS: {secret: {name: a}}',
          '    terminatingTLS: {secret: {name: b}}',
          '    serverNames: [example.com]',
        ),
      ),
    ).toEqual([
      at(
        10,
        'spec.ingress[0].toPorts[0].rules',
        'L7 rules (toPorts.rules) are not supported: nodewarden enforces L3/L4 only',
      ),
      at(
        11,
        'spec.ingress[0].toPorts[0].listener',
        'listener (an Envoy redirect) is not supported: nodewarden enforces L3/L4 only',
      ),
      at(
        12,
        'spec.ingress[0].toPorts[0].originatingTLS',
        'originatingTLS (TLS interception) is not supported: nodewarden enforces L3/L4 only',
      ),
      at(
        13,
        'spec.ingress[0].toPorts[0].terminatingTLS',
        'terminatingTLS (TLS interception) is not supported: nodewarden enforces L3/L4 only',
      ),
      at(
        14,
        'spec.ingress[0].toPorts[0].serverNames',
        'serverNames (TLS SNI matching) is not supported: nodewarden enforces L3/L4 only',
      ),
    ]);
  });

  it("deny rules: fields Cilium's deny rules do not have", () => {
    expect(
      problems(
        spec(
          'ingressDeny:',
          '- authentication: {mode: required}',
          '  toPorts:',
          '  - ports: [{port: "80", protocol: TCP}]',
          '    rules: {http: [{method: GET}]}',
          '    listener: {envoyConfig: {kind: CiliumEnvoyConfig, name: x}, name: y}',
          '    originatingTLS: {secret: {name: a}}',
          '    terminatingTLS: {secret: {name: b}}',
          '    serverNames: [example.com]',
          'egressDeny:',
          '- toFQDNs: [{matchName: example.com}]',
          '- authentication: {mode: required}',
        ),
      ),
    ).toEqual([
      at(
        8,
        'spec.ingressDeny[0].authentication',
        "authentication is not a field of Cilium's ingressDeny rules",
      ),
      at(11, 'spec.ingressDeny[0].toPorts[0].rules', "rules is not a field of Cilium's deny rules"),
      at(12, 'spec.ingressDeny[0].toPorts[0].listener', "listener is not a field of Cilium's deny rules"),
      at(
        13,
        'spec.ingressDeny[0].toPorts[0].originatingTLS',
        "originatingTLS is not a field of Cilium's deny rules",
      ),
      at(
        14,
        'spec.ingressDeny[0].toPorts[0].terminatingTLS',
        "terminatingTLS is not a field of Cilium's deny rules",
      ),
      at(
        15,
        'spec.ingressDeny[0].toPorts[0].serverNames',
        "serverNames is not a field of Cilium's deny rules",
      ),
      at(17, 'spec.egressDeny[0].toFQDNs', "toFQDNs is not a field of Cilium's egressDeny rules"),
      at(
        18,
        'spec.egressDeny[1].authentication',
        "authentication is not a field of Cilium's egressDeny rules",
      ),
    ]);
  });

  it('CIDRs and CIDR sets', () => {
    expect(
      problems(
        spec(
          'ingress:',
          '- fromCIDR:',
          '  - 10.0.0.256/24',
          '  - 10.0.0.0/33',
          '  - 2001:db8::/129',
          '  - "::ffff:10.0.0.0/80"',
          '  - fe80::1%eth0',
          '  - 010.0.0.1',
          '  - 10.0.0.0/08',
          '- fromCIDRSet:',
          '  - cidr: 10.0.0.0/16',
          '    except: [10.1.0.0/24, 2001:db8::/64, 10.0.0.0/8]',
          '  - except: [10.0.0.0/24]',
          '  - cidrGroupRef: office',
          '  - cidrGroupSelector: {matchLabels: {site: hq}}',
        ),
      ),
    ).toEqual([
      at(9, 'spec.ingress[0].fromCIDR[0]', '"10.0.0.256/24" is not an IP address or CIDR'),
      at(10, 'spec.ingress[0].fromCIDR[1]', '"10.0.0.0/33": prefix length /33 is too long for IPv4'),
      at(11, 'spec.ingress[0].fromCIDR[2]', '"2001:db8::/129": prefix length /129 is too long for IPv6'),
      at(
        12,
        'spec.ingress[0].fromCIDR[3]',
        '"::ffff:10.0.0.0/80": an IPv4-mapped prefix must be /96 or longer (shorter ones mix IPv4 and IPv6)',
      ),
      at(13, 'spec.ingress[0].fromCIDR[4]', '"fe80::1%eth0" is not an IP address or CIDR'),
      at(14, 'spec.ingress[0].fromCIDR[5]', '"010.0.0.1" is not an IP address or CIDR'),
      at(15, 'spec.ingress[0].fromCIDR[6]', '"10.0.0.0/08" is not an IP address or CIDR'),
      at(18, 'spec.ingress[1].fromCIDRSet[0].except[0]', '10.1.0.0/24 is not inside cidr 10.0.0.0/16'),
      at(
        18,
        'spec.ingress[1].fromCIDRSet[0].except[1]',
        '2001:db8::/64 is IPv6 but cidr 10.0.0.0/16 is IPv4',
      ),
      at(18, 'spec.ingress[1].fromCIDRSet[0].except[2]', '10.0.0.0/8 is not inside cidr 10.0.0.0/16'),
      at(19, 'spec.ingress[1].fromCIDRSet[1].cidr', 'required'),
      at(
        20,
        'spec.ingress[1].fromCIDRSet[2].cidrGroupRef',
        'cidrGroupRef (CiliumCIDRGroup) is not supported; list the CIDRs in cidr',
      ),
      at(
        21,
        'spec.ingress[1].fromCIDRSet[3].cidrGroupSelector',
        'cidrGroupSelector (CiliumCIDRGroup) is not supported; list the CIDRs in cidr',
      ),
    ]);
  });

  it('entities: unknown ones, world-ipv4/6, and inert ones in deny rules', () => {
    expect(
      problems(
        spec(
          'ingress:',
          '- fromEntities: [wrld, world-ipv4, health, none, world]',
          'ingressDeny:',
          '- fromEntities: [health, init, ingress, unmanaged, none]',
          'egressDeny:',
          '- toEntities: [world-ipv6]',
        ),
      ),
    ).toEqual([
      at(
        8,
        'spec.ingress[0].fromEntities[0]',
        'unknown entity "wrld"; Cilium\'s entities are all, world, cluster, host, remote-node, kube-apiserver, health, init, ingress, unmanaged, none',
      ),
      at(
        8,
        'spec.ingress[0].fromEntities[1]',
        "entity world-ipv4 is not supported (Cilium's CRD rejects it too); use world, which covers IPv4 and IPv6",
      ),
      ...['health', 'init', 'ingress', 'unmanaged'].map((name, i) =>
        at(
          10,
          `spec.ingressDeny[0].fromEntities[${i}]`,
          `entity ${name} has no meaning on a host, so this deny cannot be enforced (dropping a deny would silently open traffic)`,
        ),
      ),
      at(
        12,
        'spec.egressDeny[0].toEntities[0]',
        "entity world-ipv6 is not supported (Cilium's CRD rejects it too); use world, which covers IPv4 and IPv6",
      ),
    ]);
  });

  it('fromEndpoints and toEndpoints on a standalone node', () => {
    expect(
      problems(
        spec('ingress:', '- fromEndpoints: [{matchLabels: {app: x}}]', 'egressDeny:', '- toEndpoints: [{}]'),
      ),
    ).toEqual([
      at(
        8,
        'spec.ingress[0].fromEndpoints',
        'fromEndpoints needs the Kubernetes source; standalone nodes have no pods',
      ),
      at(
        10,
        'spec.egressDeny[0].toEndpoints',
        'toEndpoints needs the Kubernetes source; standalone nodes have no pods',
      ),
    ]);
  });

  it('endpoint selectors: only the k8s: and any: sources, and no label Cilium derives', () => {
    expect(
      problems(
        spec(
          'ingressDeny:',
          '- fromEndpoints:',
          '  - matchLabels: {"container:app": x}',
          '  - matchExpressions:',
          '    - {key: "k8s:io.cilium.k8s.policy.serviceaccount", operator: Exists}',
          '  - matchLabels: {"k8s:app": web, "any:tier": ops, "k8s:io.kubernetes.pod.namespace": shop}',
        ),
        'kubernetes',
      ),
    ).toEqual([
      at(
        9,
        'spec.ingressDeny[0].fromEndpoints[0].matchLabels.container:app',
        '"container:app": only the k8s: and any: label sources select pods here',
      ),
      at(
        11,
        'spec.ingressDeny[0].fromEndpoints[1].matchExpressions[0].key',
        '"k8s:io.cilium.k8s.policy.serviceaccount" is a label Cilium derives (namespace labels, service account); it is not supported here: select pods by their own labels and io.kubernetes.pod.namespace',
      ),
    ]);
  });

  it('label selectors: operators, values, reserved identities', () => {
    expect(
      problems(
        spec(
          'ingress:',
          '- fromEndpoints:',
          '  - matchLabels: {"reserved:host": ""}',
          '  - matchExpressions:',
          '    - {key: app, operator: In}',
          '    - {key: app, operator: Exists, values: [x]}',
          '    - {key: app, operator: Equals, values: [x]}',
          '    - {operator: Exists}',
          '  - matchLabels: {app: "not a value!"}',
        ).replace(
          '  nodeSelector: {}',
          '  nodeSelector:\n    matchExpressions: [{key: role, operator: NotIn, values: []}]',
        ),
        'kubernetes',
      ),
    ).toEqual([
      at(
        7,
        'spec.nodeSelector.matchExpressions[0].values',
        'must list at least one value for operator NotIn',
      ),
      at(
        10,
        'spec.ingress[0].fromEndpoints[0].matchLabels.reserved:host',
        '"reserved:host" selects a Cilium reserved identity, not pods; use fromEntities/toEntities for it',
      ),
      at(
        12,
        'spec.ingress[0].fromEndpoints[1].matchExpressions[0].values',
        'must list at least one value for operator In',
      ),
      at(
        13,
        'spec.ingress[0].fromEndpoints[1].matchExpressions[1].values',
        'must be empty for operator Exists',
      ),
      at(
        14,
        'spec.ingress[0].fromEndpoints[1].matchExpressions[2].operator',
        'must be one of In, NotIn, Exists, DoesNotExist',
      ),
      at(15, 'spec.ingress[0].fromEndpoints[1].matchExpressions[3].key', 'required'),
      at(
        16,
        'spec.ingress[0].fromEndpoints[2].matchLabels.app',
        `"not a value!" is not a label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`,
      ),
    ]);
  });

  it('ports and protocols', () => {
    const ports = 'spec.ingress[0].toPorts[0].ports';
    const protocols = 'TCP, UDP, SCTP, ANY, VRRP, IGMP, GRE, IPIP, IPV6, ESP, AH';
    expect(
      problems(
        spec(
          'ingress:',
          '- toPorts:',
          '  - ports:',
          '    - port: ssh',
          '    - port: 70000',
          '    - port: "22-25"',
          '    - port: "443"',
          '      endPort: 80',
          '    - port: 0',
          '      endPort: 1024',
          '    - endPort: 1024',
          '      protocol: TCP',
          '    - port: 22',
          '      endPort: 65536',
          '    - port: "112"',
          '      protocol: VRRP',
          '    - protocol: IGMP',
          '      endPort: 5',
          '    - {}',
          '    - port: 53',
          '      protocol: udp',
          '    - port: 1',
          '      protocol: ICMP',
          '    - port: 1',
          '      protocol: QUIC',
          '    - port: true',
          '  - ports: []',
          '  - {}',
        ),
      ),
    ).toEqual([
      at(
        10,
        `${ports}[0].port`,
        'named port "ssh" is not supported: a host has no container ports to name; use the port number',
      ),
      at(11, `${ports}[1].port`, 'must be a port number 0–65535'),
      at(12, `${ports}[2].port`, 'must be a port number 0–65535'),
      at(14, `${ports}[3].endPort`, 'must not be below port 443'),
      at(16, `${ports}[4].endPort`, 'needs a non-zero port (port 0 already means every port)'),
      at(17, `${ports}[5].endPort`, 'needs a port'),
      at(20, `${ports}[6].endPort`, 'must be a port number 0–65535'),
      at(21, `${ports}[7].port`, 'VRRP has no ports: port must be empty or 0'),
      at(24, `${ports}[8].endPort`, 'IGMP has no ports: remove endPort'),
      at(25, `${ports}[9]`, 'needs a port or a protocol'),
      at(
        27,
        `${ports}[10].protocol`,
        `unknown protocol "udp" (write UDP); Cilium's protocols are ${protocols}`,
      ),
      at(29, `${ports}[11].protocol`, 'ICMP is matched with icmps, not toPorts'),
      at(31, `${ports}[12].protocol`, `unknown protocol "QUIC"; Cilium's protocols are ${protocols}`),
      at(32, `${ports}[13].port`, 'must be a port number 0–65535'),
      at(
        33,
        'spec.ingress[0].toPorts[1].ports',
        'must list at least one port (an entry without ports would match nothing)',
      ),
      at(
        34,
        'spec.ingress[0].toPorts[2].ports',
        'must list at least one port (an entry without ports would match nothing)',
      ),
    ]);
  });

  it('ICMP types and families', () => {
    const fields = 'spec.ingress[0].icmps[0].fields';
    expect(
      problems(
        spec(
          'ingress:',
          '- icmps:',
          '  - fields:',
          '    - type: EchoRequst',
          '    - type: RouterSolicitation',
          '    - type: NeighborSolicitation',
          '      family: IPv6',
          '    - type: 256',
          '    - type: "08"',
          '    - type: 8',
          '      family: ipv4',
          '    - family: IPv6',
          '    - type: PacketTooBig',
          '      family: IPv4',
          '  - fields: []',
        ),
      ),
    ).toEqual([
      at(10, `${fields}[0].type`, 'unknown ICMP type "EchoRequst" for IPv4'),
      at(11, `${fields}[1].type`, 'unknown ICMP type "RouterSolicitation" for IPv4'),
      at(14, `${fields}[3].type`, 'must be an ICMP type 0–255 or a Cilium type name'),
      at(15, `${fields}[4].type`, 'must be an ICMP type 0–255 or a Cilium type name'),
      at(17, `${fields}[5].family`, 'must be IPv4 or IPv6'),
      at(18, `${fields}[6].type`, 'required'),
      at(19, `${fields}[7].type`, 'unknown ICMP type "PacketTooBig" for IPv4'),
      at(
        21,
        'spec.ingress[0].icmps[1].fields',
        'must list at least one ICMP type (an entry without fields would match nothing)',
      ),
    ]);
  });

  it('combinations Cilium rejects in one rule', () => {
    expect(
      problems(
        spec(
          'ingress:',
          '- fromCIDR: [10.0.0.0/8]',
          '  fromEntities: [world]',
          '- icmps: [{fields: [{type: 8}]}]',
          '  toPorts: [{ports: [{port: "22", protocol: TCP}]}]',
          'egress:',
          '- toCIDRSet: [{cidr: 10.0.0.0/8}]',
          '  toEntities: [world]',
        ),
      ),
    ).toEqual([
      at(
        9,
        'spec.ingress[0].fromEntities',
        'fromCIDR and fromEntities cannot be combined in one rule (Cilium rejects it too); use two rules',
      ),
      at(
        10,
        'spec.ingress[1].icmps',
        'icmps and toPorts cannot be combined in one rule (Cilium rejects it too); use two rules',
      ),
      at(
        14,
        'spec.egress[0].toEntities',
        'toCIDRSet and toEntities cannot be combined in one rule (Cilium rejects it too); use two rules',
      ),
    ]);
  });

  it('reports every problem of every document at once', () => {
    const text = [
      spec('ingress:', '- fromCIDR: [10.0.0.0/33]', '  toPorts: [{ports: [{port: ssh}]}]'),
      '---',
      spec('egress: [{toFQDNs: [{matchName: example.com}]}]').replace('name: p', 'name: q'),
      '---',
      'apiVersion: cilium.io/v2',
      'kind: CiliumClusterwideNetworkPolicy',
      'metadata: {}',
      'spec: {nodeSelector: {}, ingress: [{}]}',
    ].join('\n');
    expect(problems(text)).toEqual([
      at(8, 'spec.ingress[0].fromCIDR[0]', '"10.0.0.0/33": prefix length /33 is too long for IPv4'),
      at(
        9,
        'spec.ingress[0].toPorts[0].ports[0].port',
        'named port "ssh" is not supported: a host has no container ports to name; use the port number',
      ),
      `${F}:18: CiliumClusterwideNetworkPolicy/q spec.egress[0].toFQDNs: toFQDNs is not supported: nodewarden has no DNS proxy; use toCIDR`,
      `${F}:23: document 3 metadata.name: required`,
    ]);
  });

  it('a policy name used twice in one file', () => {
    const text = [spec('ingress: [{}]'), '---', spec('egress: [{}]')].join('\n');
    expect(problems(text)).toEqual([
      at(13, 'metadata.name', `duplicate policy name "p": also defined in ${F}:4`),
    ]);
  });
});

describe('files and directories', () => {
  let dir: string;
  let counter = 0;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodewarden-policies-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function freshDir(files: Record<string, string>): string {
    const d = join(dir, `d${++counter}`);
    mkdirSync(d);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
    return d;
  }

  const named = (name: string, ...lines: string[]) => spec(...lines).replace('name: p', `name: ${name}`);

  it('a missing directory holds no policies', () => {
    expect(loadPolicyDirectory(join(dir, 'absent'), { mode: 'standalone' })).toEqual([]);
  });

  it('reads *.yaml and *.yml in name order, and nothing else', () => {
    const d = freshDir({
      'b.yaml': named('b', 'ingress: [{}]'),
      'a.yml': `${named('a1', 'ingress: [{}]')}---\n${named('a2', 'egress: [{}]')}`,
      'c.txt': 'not yaml at all: [',
      '.hidden.yaml': 'not yaml at all: [',
      'README.md': '# notes',
    });
    mkdirSync(join(d, 'sub.yaml'));
    const policies = loadPolicyDirectory(d, { mode: 'standalone' });
    expect(policies.map((p) => [p.name, p.source])).toEqual([
      ['a1', join(d, 'a.yml')],
      ['a2', join(d, 'a.yml')],
      ['b', join(d, 'b.yaml')],
    ]);
  });

  it('reports the problems of every file together', () => {
    const d = freshDir({
      '10-ssh.yaml': named('ssh', 'ingress: [{fromCIDR: [10.0.0.0/33]}]'),
      '20-web.yaml': named('web', 'ingress: [{toPorts: [{ports: [{port: http}]}]}]'),
      '30-ok.yaml': named('ok', 'ingress: [{}]'),
    });
    expect(errorOf(() => loadPolicyDirectory(d, { mode: 'standalone' })).message).toBe(
      [
        `${join(d, '10-ssh.yaml')}:7: CiliumClusterwideNetworkPolicy/ssh spec.ingress[0].fromCIDR[0]: "10.0.0.0/33": prefix length /33 is too long for IPv4`,
        `${join(d, '20-web.yaml')}:7: CiliumClusterwideNetworkPolicy/web spec.ingress[0].toPorts[0].ports[0].port: named port "http" is not supported: a host has no container ports to name; use the port number`,
      ].join('\n'),
    );
  });

  it('a policy name in two files is an error naming both', () => {
    const d = freshDir({
      'a.yaml': named('ssh', 'ingress: [{}]'),
      'b.yaml': `# the same policy, copied\n${named('ssh', 'egress: [{}]')}`,
    });
    const error = errorOf(() => loadPolicyDirectory(d, { mode: 'standalone' }));
    expect(error.message).toBe(
      `${join(d, 'b.yaml')}:5: CiliumClusterwideNetworkPolicy/ssh metadata.name: duplicate policy name "ssh": also defined in ${join(d, 'a.yaml')}:4`,
    );
    expect(error.problems).toEqual([
      {
        file: join(d, 'b.yaml'),
        object: 'CiliumClusterwideNetworkPolicy/ssh',
        line: 5,
        path: ['metadata', 'name'],
        message: `duplicate policy name "ssh": also defined in ${join(d, 'a.yaml')}:4`,
      },
    ]);
  });

  it('a path that is not a directory, and files that cannot be read', () => {
    const d = freshDir({ 'a.yaml': named('a', 'ingress: [{}]') });
    const file = join(d, 'a.yaml');
    expect(errorOf(() => loadPolicyDirectory(file, { mode: 'standalone' })).message).toBe(
      `${file}: (root): cannot read: ENOTDIR`,
    );
    const missing = join(d, 'missing.yaml');
    expect(errorOf(() => parsePolicyFiles([file, missing], { mode: 'standalone' })).message).toBe(
      `${missing}: (root): cannot read: ENOENT`,
    );
  });

  it('parsePolicyFiles keeps the given order', () => {
    const d = freshDir({ 'a.yaml': named('a', 'ingress: [{}]'), 'b.yaml': named('b', 'ingress: [{}]') });
    const policies = parsePolicyFiles([join(d, 'b.yaml'), join(d, 'a.yaml')], { mode: 'kubernetes' });
    expect(policies.map((p) => p.name)).toEqual(['b', 'a']);
    expect(readFileSync(join(d, 'a.yaml'), 'utf8')).toContain('name: a');
  });
});
