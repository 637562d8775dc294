/**
 * BGP from Kubernetes: the real daemon with `source: kubernetes` (fixture API
 * server in the node's namespace) peers with a real BIRD named by a MetalLB
 * BGPPeer and advertises a LoadBalancer Service's IP by a BGPAdvertisement.
 * With externalTrafficPolicy Local the route is withdrawn when the node's last
 * ready endpoint goes, and comes back with it. A BGPAdvertisement that chooses
 * a labelled IPAddressPool by ipAddressPoolSelectors adds its community.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  endpointSlice,
  kubernetesModeConfig,
  type LabApi,
  localLoadBalancerService,
  startLabFixture,
} from '../k8s-fixture/lab-api.js';
import { createLab, type Host, type Lab, type LabProcess } from '../lab/index.js';
import { BirdPeer } from '../peers/bird.js';
import { waitEstablished, waitFor } from '../peers/types.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';

const TOKEN = 'bgp-test-token';
const NODE = '10.98.0.1';
const BIRD = '10.98.0.2';
const VIP = '192.0.2.77';
let lab: Lab;
let node: Host;
let birdHost: Host;
let bird: BirdPeer;
let bpffs: TempBpffs;
let files: DaemonFiles;
let fixture: LabProcess;
let api: LabApi;
let daemon: DaemonInstance;

const SLICE_PATH = '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices';
const slice = (ready: boolean) => endpointSlice('shop', 'web', [{ nodeName: 'lab-node', ready }]);

const v4Routes = () => bird.routes('ipv4');

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  [node, birdHost] = await lab.pair('node', 'bird', [`${NODE}/24`], [`${BIRD}/24`]);
  bird = await BirdPeer.start(birdHost, {
    asn: 65002,
    routerId: BIRD,
    neighbors: [{ address: NODE, asn: 65001, holdTime: 9, families: ['ipv4'] }],
  });
  let server: string;
  ({ process: fixture, server, api } = await startLabFixture(node, TOKEN));
  await api('POST', '/fixture/seed', [
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'lab-node', labels: { rack: 'r1' } },
      status: { addresses: [{ type: 'InternalIP', address: NODE }] },
    },
    {
      apiVersion: 'metallb.io/v1beta2',
      kind: 'BGPPeer',
      metadata: { namespace: 'metallb-system', name: 'bird' },
      spec: { myASN: 65001, peerASN: 65002, peerAddress: BIRD, holdTime: '9s', connectTime: '1s' },
    },
    {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'BGPAdvertisement',
      metadata: { namespace: 'metallb-system', name: 'public' },
      spec: { communities: ['65001:100'], nodeSelectors: [{ matchLabels: { rack: 'r1' } }] },
    },
  ]);
  files = daemonFiles('');
  files.writeConfig(
    [
      ...kubernetesModeConfig('lab-node', server, TOKEN, files.dir),
      'bgp:',
      '  asn: 65001',
      `  routerID: ${NODE}`,
    ].join('\n'),
  );
  daemon = await startDaemon(node, files, bpffs.dir);
});

afterAll(async () => {
  await daemon?.process.stop();
  await bird?.stop();
  await fixture?.stop();
  await lab?.destroy();
  bpffs?.destroy();
  files?.destroy();
});

describe('BGP from Kubernetes', () => {
  it('advertises a Service IP to the BGPPeer and withdraws it within a second of the last local endpoint going', async () => {
    await waitEstablished(bird, NODE);
    const created = await api(
      'POST',
      '/api/v1/namespaces/shop/services',
      localLoadBalancerService('shop', 'web', 32200),
    );
    expect(created.code).toBe(201);
    expect((await api('POST', SLICE_PATH, slice(true))).code).toBe(201);
    const withIp = await api('PUT', '/api/v1/namespaces/shop/services/web/status', {
      ...created.body,
      status: { loadBalancer: { ingress: [{ ip: VIP }] } },
    });
    expect(withIp.code).toBe(200);
    const held = await waitFor(
      'BIRD holds the VIP',
      v4Routes,
      (r) => r.some((x) => x.prefix === `${VIP}/32`),
      10_000,
      50,
    );
    expect(held.find((x) => x.prefix === `${VIP}/32`)).toMatchObject({
      nextHop: NODE,
      communities: ['65001:100'],
    });

    const current = await api('GET', `${SLICE_PATH}/web-abcde`);
    const start = performance.now();
    expect(
      (await api('PUT', `${SLICE_PATH}/web-abcde`, { ...slice(false), metadata: current.body.metadata }))
        .code,
    ).toBe(200);
    await waitFor('BIRD loses the VIP', v4Routes, (r) => !r.some((x) => x.prefix === `${VIP}/32`), 5000, 20);
    const withdrawMs = performance.now() - start;
    console.log(
      `VIP withdrawn from BIRD after the last local endpoint went not ready: ${withdrawMs.toFixed(0)} ms`,
    );
    expect(withdrawMs).toBeLessThan(3000);

    const again = await api('GET', `${SLICE_PATH}/web-abcde`);
    expect(
      (await api('PUT', `${SLICE_PATH}/web-abcde`, { ...slice(true), metadata: again.body.metadata })).code,
    ).toBe(200);
    await waitFor(
      'BIRD holds the VIP again',
      v4Routes,
      (r) => r.some((x) => x.prefix === `${VIP}/32`),
      5000,
      50,
    );
  });

  it('a BGPAdvertisement with ipAddressPoolSelectors advertises the addresses of pools whose labels match', async () => {
    await api('POST', '/fixture/seed', [
      {
        apiVersion: 'metallb.io/v1beta1',
        kind: 'IPAddressPool',
        metadata: { namespace: 'metallb-system', name: 'internet', labels: { exposure: 'internet' } },
        spec: { addresses: ['192.0.2.64/27'] },
      },
      ...[
        // 'dark' first: once 'internet' shows, the daemon has seen both.
        ['dark', 'none', '65001:300'],
        ['internet', 'internet', '65001:200'],
      ].map(([name, exposure, community]) => ({
        apiVersion: 'metallb.io/v1beta1',
        kind: 'BGPAdvertisement',
        metadata: { namespace: 'metallb-system', name },
        spec: { ipAddressPoolSelectors: [{ matchLabels: { exposure } }], communities: [community] },
      })),
    ]);
    const held = await waitFor(
      'the VIP with the labelled pool’s community',
      v4Routes,
      (r) => r.some((x) => x.prefix === `${VIP}/32` && x.communities.includes('65001:200')),
      10_000,
      50,
    );
    // 'public' chooses every address; 'dark' selects no pool, so it adds nothing.
    expect([...held.find((x) => x.prefix === `${VIP}/32`)!.communities].sort()).toEqual([
      '65001:100',
      '65001:200',
    ]);
  });
});
