import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type BgpFacts, bgpSystemAllows, planBgp } from '../../daemon/bgp/plan.js';
import { loadConfig } from '../../daemon/config/load.js';
import { InputError } from '../../model/input-errors.js';

const dir = mkdtempSync(join(tmpdir(), 'nw-bgp-plan-'));
let counter = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(yaml: string) {
  const file = join(dir, `config-${++counter}.yaml`);
  writeFileSync(file, yaml);
  return loadConfig(file);
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return (error as InputError).message.split('\n').map((line) => line.replace(/^.*?: /, ''));
  }
  throw new Error('did not throw');
}

const facts: BgpFacts = {
  file: 'config.yaml',
  hostAddresses: ['127.0.0.1', '::1', '169.254.1.1', '192.0.2.10', 'fd00::10'],
  readSecret: (path) => {
    if (path === '/secret') return 'from-file\n';
    throw new Error('ENOENT');
  },
};

const BASE = `
bgp:
  asn: 64512
  peers:
    - name: tor1
      peerAddress: 192.0.2.1
      peerASN: 64513
    - name: tor2
      peerAddress: 2001:db8::1
      peerASN: 64514
      holdTime: 1m30s
      keepaliveTime: 10s
      ebgpMultiHop: true
      enableGracefulRestart: true
      passwordFile: /secret
      passive: true
`;

describe('bgp config', () => {
  it('maps MetalLB BGPPeer fields onto the speaker config', () => {
    const plan = planBgp(load(BASE).bgp!, facts);
    expect(plan.speaker).toEqual({
      asn: 64512,
      routerId: '192.0.2.10',
      listen: { address: '::', port: 179 },
      peers: [
        {
          address: '192.0.2.1',
          asn: 64513,
          port: 179,
          holdTime: 90,
          connectRetryTime: 5,
          passive: false,
          families: ['ipv4-unicast'],
        },
        {
          address: '2001:db8::1',
          asn: 64514,
          port: 179,
          holdTime: 90,
          keepaliveTime: 10,
          connectRetryTime: 5,
          passive: true,
          password: 'from-file',
          ebgpMultihop: 255,
          gracefulRestart: { restartTime: 120 },
          families: ['ipv6-unicast'],
        },
      ],
    });
    expect(plan.peerNames.get('2001:db8::1')).toBe('tor2');
  });

  it('names the field path of each invalid value', () => {
    const bad = `
bgp:
  asn: 64512
  peers:
    - peerAddress: 192.0.2.300
      peerASN: 0
      holdTime: 2
      nodeSelectors: []
  advertisements:
    - communities: ["65536:1"]
`;
    expect(problems(() => load(bad))).toEqual([
      'bgp.peers[0].peerAddress: must be an IPv4 or IPv6 address',
      'bgp.peers[0].peerASN: Too small: expected number to be >=1',
      'bgp.peers[0].holdTime: must be 0 or 3–65535 seconds',
      'bgp.peers[0].nodeSelectors: unknown field; nodewarden does not support it',
      'bgp.advertisements[0].communities[0]: must be "asn:value" (16 bits each), "large:a:b:c" or one of no-export, no-advertise, no-export-subconfed, no-peer, blackhole',
    ]);
    const crossField = `
bgp:
  asn: 64512
  peers:
    - peerAddress: 192.0.2.1
      peerASN: 64513
      myASN: 1
      password: a
      passwordFile: /secret
  advertisements:
    - peers: [nobody]
`;
    expect(problems(() => load(crossField))).toEqual([
      'bgp.peers[0].myASN: must equal bgp.asn (64512): one speaker has one local ASN',
      'bgp.peers[0].passwordFile: give password or passwordFile, not both',
      'bgp.advertisements[0].peers[0]: no peer named "nobody" in bgp.peers',
    ]);
  });

  it('reports an unreadable password file and a missing router ID with their paths', () => {
    const config = load(`${BASE.replace('/secret', '/missing')}`).bgp!;
    expect(problems(() => planBgp(config, { ...facts, hostAddresses: ['::1'] }))).toEqual([
      'bgp.routerID: required: this node has no IPv4 address to take it from',
      'bgp.peers[1].passwordFile: cannot read /missing: ENOENT',
    ]);
  });
});

describe('bgp advertisements', () => {
  it('aggregates, merges communities per peer, and groups peers with the same attributes', () => {
    const config = load(`${BASE}
  advertisements:
    - prefixes: [198.51.100.7, 198.51.100.9/32, 2001:db8:5::1]
      aggregationLength: 24
      aggregationLengthV6: 64
      communities: ["65000:1", "large:64512:1:2"]
    - name: to-tor1
      prefixes: [198.51.100.7/32, 203.0.113.0/24]
      communities: [no-export]
      largeCommunities: ["64512:7:7"]
      localPref: 150
      peers: [tor1]
`).bgp!;
    expect(planBgp(config, facts).routes).toEqual([
      { prefix: '198.51.100.0/24', communities: ['65000:1'], largeCommunities: ['64512:1:2'] },
      {
        prefix: '198.51.100.7/32',
        communities: ['no-export'],
        largeCommunities: ['64512:7:7'],
        localPref: 150,
        peers: ['192.0.2.1'],
      },
      { prefix: '2001:db8:5::/64', communities: ['65000:1'], largeCommunities: ['64512:1:2'] },
      {
        prefix: '203.0.113.0/24',
        communities: ['no-export'],
        largeCommunities: ['64512:7:7'],
        localPref: 150,
        peers: ['192.0.2.1'],
      },
    ]);
  });

  it('gives one peer the union of overlapping advertisements and the other peer only its own', () => {
    const config = load(`${BASE}
  advertisements:
    - prefixes: [198.51.100.1]
      communities: ["65000:1"]
    - prefixes: [198.51.100.1]
      communities: ["65000:2"]
      peers: [tor2]
`).bgp!;
    expect(planBgp(config, facts).routes).toEqual([
      { prefix: '198.51.100.1/32', communities: ['65000:1'], peers: ['192.0.2.1'] },
      { prefix: '198.51.100.1/32', communities: ['65000:1', '65000:2'], peers: ['2001:db8::1'] },
    ]);
  });

  it('rejects two local preferences for the same prefix and peer', () => {
    const config = load(`${BASE}
  advertisements:
    - prefixes: [198.51.100.1]
      localPref: 100
    - prefixes: [198.51.100.1]
      localPref: 200
      peers: [tor1]
`).bgp!;
    expect(problems(() => planBgp(config, facts))).toEqual([
      'bgp.advertisements[1].localPref: 198.51.100.1/32 to peer tor1: localPref 200 conflicts with 100 from advertisements[0]',
    ]);
  });

  it('allows TCP 179 to and from every peer in the firewall', () => {
    const allows = bgpSystemAllows(load(BASE).bgp);
    expect(allows.map((a) => [a.direction, a.peers, a.l4[0]])).toEqual([
      ['egress', ['192.0.2.1'], { kind: 'ports', protocol: 'TCP', port: 179, endPort: 179 }],
      ['ingress', ['192.0.2.1'], { kind: 'ports', protocol: 'TCP', port: 179, endPort: 179 }],
      ['egress', ['2001:db8::1'], { kind: 'ports', protocol: 'TCP', port: 179, endPort: 179 }],
      ['ingress', ['2001:db8::1'], { kind: 'ports', protocol: 'TCP', port: 179, endPort: 179 }],
    ]);
    expect(bgpSystemAllows(undefined)).toEqual([]);
  });
});
