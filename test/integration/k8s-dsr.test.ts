/**
 * DSR chosen per Service in Kubernetes mode, with IPv4 and IPv6 VIPs: the DSR
 * lab of dsr.test.ts (client, router, load-balancer node, two backends) with
 * the real daemon on all three nodes in `source: kubernetes`, against the
 * fixture API server on the LAN. Everything comes from the API: Nodes with
 * dual-stack InternalIPs, a dual-stack Service `shop/web` annotated
 * `nodewarden.io/dsr: "true"` (ingress IPv4 and IPv6 from its status, an IPv6
 * externalIP, externalTrafficPolicy Local with a healthCheckNodePort), its
 * IPv4 and IPv6 EndpointSlices, and a Service `shop/plain` without the
 * annotation. Checked with real traffic: the annotated VIPs reach both
 * backends, which see the client, and replies never cross the load-balancer
 * node; the plain Service stays on the normal path (nothing encapsulated);
 * the health port answers over IPv6 and IPv4 and counts a dual-stack pod
 * once; removing the annotation takes the Service off DSR, and setting it
 * back puts it on again. An invalid value ("yes") keeps the Service on its
 * fallback path with a warning in status, logged once, gone when fixed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../daemon/daemon.js';
import { DSR_ANNOTATION, DSR_ANNOTATION_PATH } from '../../daemon/services/from-cluster.js';
import type { DsrStatus } from '../../daemon/services/manager.js';
import { endpointSlice, kubernetesModeConfig, type LabApi, startLabFixture } from '../k8s-fixture/lab-api.js';
import type { KubeObject } from '../k8s-fixture/server.js';
import { createLab, type Lab, type LabProcess } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';
import {
  ADDR,
  buildDsrTopology,
  captureOnPort,
  type DsrTopology,
  getAnswer,
  NODE_PORT,
  startHostBackend,
} from '../support/dsr-topology.js';
import { waitFor } from '../support/l2.js';

const TOKEN = 'k8s-dsr-token';
const API_IP = '10.90.0.200';
const HEALTH_PORT = 32180;
/** `shop/plain`'s VIPs: the load-balancer node serves them itself, as the normal (non-DSR) path would. */
const PLAIN = { v4: '192.0.2.81', v6: '2001:db8:90::81' } as const;
/** `shop/web`'s spec.externalIPs. */
const EXTERNAL_V6 = '2001:db8:90::82';
const WEB_VIPS = [ADDR.vip.v4, ADDR.vip.v6, EXTERNAL_V6];
const NODES = [
  ['lb', ADDR.lb],
  ['be1', ADDR.be1],
  ['be2', ADDR.be2],
] as const;

let lab: Lab;
let topo: DsrTopology;
let bpffs: TempBpffs;
let fixture: LabProcess;
let api: LabApi;
const files: DaemonFiles[] = [];
const daemons = new Map<string, DaemonInstance>();

const daemon = (node: string) => daemons.get(node)!;
const dsrOf = async (node: string) => (await daemon(node).status()).services?.dsr;
const httpGet = (url: string) => getAnswer(topo.client, url);

/** Waits (10 s at most) until `check` holds for the DSR status of each of `nodes`. */
async function waitForDsr(nodes: string[], what: string, check: (dsr: DsrStatus) => boolean) {
  for (const name of nodes) {
    const probe = async () => {
      const dsr = await dsrOf(name);
      return dsr && check(dsr) ? true : undefined;
    };
    await waitFor(`${what} on ${name}`, probe, 10_000);
  }
}

/** Packets tcpdump saw on the switch port towards the load-balancer node. */
const captureAtLb = (filter: string, during: () => Promise<void>) =>
  captureOnPort(topo.lan, topo.lbPort, filter, during);
const ENCAPSULATED = 'ip proto 4 or ip6 proto 41';

const SERVICES = '/api/v1/namespaces/shop/services';
const SLICES = '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices';

async function created(path: string, body: KubeObject): Promise<KubeObject> {
  const r = await api('POST', path, body);
  if (r.code !== 201) throw new Error(`POST ${path}: ${r.code} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Creates a LoadBalancer Service, then sets its ingress IPs through /status as a LB controller does. */
async function loadBalancerService(name: string, spec: KubeObject, ingress: string[], annotations = {}) {
  const service = await created(SERVICES, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'shop', name, annotations },
    spec: { type: 'LoadBalancer', ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'], ...spec },
  });
  const status = { loadBalancer: { ingress: ingress.map((ip) => ({ ip })) } };
  const r = await api('PUT', `${SERVICES}/${name}/status`, { ...service, status });
  expect(r.code).toBe(200);
}

/** Sets `shop/web`'s DSR annotation to `value`, or removes it (a PUT of the Service, as kubectl does). */
async function setDsrAnnotation(value: string | undefined): Promise<void> {
  const current = (await api('GET', `${SERVICES}/web`)).body;
  const { [DSR_ANNOTATION]: _, ...others } = (current.metadata.annotations ?? {}) as Record<string, string>;
  const annotations = value === undefined ? others : { ...others, [DSR_ANNOTATION]: value };
  const updated = await api('PUT', `${SERVICES}/web`, {
    ...current,
    metadata: { ...current.metadata, annotations },
  });
  expect(updated.code).toBe(200);
}

/** The health port's answer, from the client; undefined when nothing answers. */
async function healthCheck(address: string): Promise<{ code: number; body: unknown } | undefined> {
  const host = address.includes(':') ? `[${address}]` : address;
  const r = await topo.client.exec(
    ['curl', '-s', '-g', '-w', '\\n%{http_code}', '--max-time', '2', `http://${host}:${HEALTH_PORT}/`],
    { allowFailure: true },
  );
  if (r.code !== 0) return undefined;
  const nl = r.stdout.lastIndexOf('\n');
  return { code: Number(r.stdout.slice(nl + 1)), body: JSON.parse(r.stdout.slice(0, nl)) };
}

const vipPorts = (dsr: DsrStatus) => dsr.vips.map((v) => `${v.vip}:${v.port}/${v.protocol}`).sort();

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  topo = await buildDsrTopology(lab);
  const apiHost = await lab.host('api');
  await topo.lan.attach(apiHost, { dev: 'eth0', addrs: [`${API_IP}/24`] });
  let server: string;
  ({ process: fixture, server, api } = await startLabFixture(apiHost, TOKEN, API_IP));
  await api(
    'POST',
    '/fixture/seed',
    NODES.map(([name, addr]) => ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name },
      status: {
        addresses: [
          { type: 'InternalIP', address: addr.v4 },
          { type: 'InternalIP', address: addr.v6 },
          { type: 'Hostname', address: name },
        ],
      },
    })),
  );

  for (const vip of [PLAIN.v4, PLAIN.v6, EXTERNAL_V6])
    await topo.router.addRoute(vip, vip.includes(':') ? ADDR.lb.v6 : ADDR.lb.v4);
  await topo.lb.addAddress('lo', `${PLAIN.v4}/32`);
  await topo.lb.addAddress('lo', `${PLAIN.v6}/128`);
  // kube-proxy's part for the externalIP on backend 2, as for the ingress VIPs.
  await topo.be2.exec([
    'nft',
    `add rule inet nwtest pre ip6 daddr ${EXTERNAL_V6} tcp dport 80 dnat ip6 to [${ADDR.pod.v6}]:8080`,
  ]);

  for (const [name] of NODES) {
    const f = daemonFiles('');
    files.push(f);
    // No services section: DSR is off by default and only the annotation turns it on.
    f.writeConfig(kubernetesModeConfig(name, server, TOKEN, f.dir).join('\n'));
    daemons.set(name, await startDaemon(topo[name], f, `${bpffs.dir}/${name}`));
  }

  // The Services arrive through the watch, after the daemons synced.
  await loadBalancerService(
    'web',
    {
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: HEALTH_PORT,
      externalIPs: [EXTERNAL_V6],
      ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: NODE_PORT }],
    },
    [ADDR.vip.v4, ADDR.vip.v6],
    { [DSR_ANNOTATION]: 'true' },
  );
  await loadBalancerService('plain', { ports: [{ port: NODE_PORT, protocol: 'TCP', nodePort: 30081 }] }, [
    PLAIN.v4,
    PLAIN.v6,
  ]);
  const ready = [
    { nodeName: 'be1', ready: true },
    { nodeName: 'be2', ready: true },
  ];
  await created(SLICES, endpointSlice('shop', 'web', ready, 'IPv4'));
  await created(SLICES, endpointSlice('shop', 'web', ready, 'IPv6'));
  await created(SLICES, endpointSlice('shop', 'plain', ready, 'IPv4'));

  await waitForDsr(['lb', 'be1', 'be2'], 'both tables', (dsr) => dsr.tables.length === 2);
  await waitForDsr(['be1', 'be2'], 'the VIPs local', (dsr) => dsr.localVips.length === 3);
  // Its UDP sockets bind the VIPs, which are local from now on.
  await startHostBackend(topo);
}, 120_000);

afterAll(async () => {
  await fixture?.stop();
  await lab?.destroy();
  topo?.destroy();
  bpffs?.destroy();
  for (const f of files) f.destroy();
});

describe('DSR per Service from Kubernetes, IPv4 and IPv6', () => {
  it('puts only the annotated Service on the DSR path: its ingress IPs and externalIP, both families', async () => {
    const status = JSON.parse((await daemon('lb').cli(['status', '-o', 'json'])).stdout) as DaemonStatus;
    const dsr = status.services!.dsr!;
    expect(dsr.tables).toEqual([
      { service: 'shop/web/IPv4', backends: [ADDR.be1.v4, ADDR.be2.v4] },
      { service: 'shop/web/IPv6', backends: [ADDR.be1.v6, ADDR.be2.v6] },
    ]);
    expect(vipPorts(dsr)).toEqual(WEB_VIPS.map((v) => `${v}:80/TCP`).sort());
    expect(dsr.localVips).toEqual([]);
    expect(dsr.warnings).toEqual([]);
    expect(status.attachments.filter((a) => a.hook === 'xdp')).toEqual([
      expect.objectContaining({ ifname: 'eth0', program: 'nw_dsr_xdp', state: 'attached' }),
    ]);

    for (const name of ['be1', 'be2']) {
      const be = (await dsrOf(name))!;
      expect(be.localVips).toEqual([...WEB_VIPS].sort());
      // Without services.dsr.loadBalancerNodes: every other node of the cluster, both families.
      expect(be.loadBalancerNodes).toEqual(expect.arrayContaining([ADDR.lb.v4, ADDR.lb.v6]));
    }
    const routes = await topo.be1.exec(['ip', '-6', 'route', 'show', 'table', 'local', 'proto', '78']);
    expect(routes.stdout).toContain(`local ${EXTERNAL_V6} dev lo`);
    expect(routes.stdout).not.toContain(PLAIN.v6);
  });

  it('HTTP to the IPv4 and IPv6 VIPs reaches both backends, which see the client; replies do not cross the load-balancer node', async () => {
    const before = (await dsrOf('lb'))!.stats!;
    const answers: { url: string; backend: string; client: string }[] = [];
    let replies = -1;
    const encapsulated = await captureAtLb(ENCAPSULATED, async () => {
      // TCP only: a backend's ARP request may carry the VIP as sender (arp_announce 0) and is flooded.
      const fromVips = WEB_VIPS.map((v) => `src host ${v}`).join(' or ');
      replies = await captureAtLb(`tcp and (${fromVips})`, async () => {
        for (let i = 0; i < 10; i++)
          for (const url of [
            `http://${ADDR.vip.v4}/`,
            `http://[${ADDR.vip.v6}]/`,
            `http://[${EXTERNAL_V6}]/`,
          ])
            answers.push({ url, ...(await httpGet(url)) });
      });
    });
    for (const url of new Set(answers.map((a) => a.url))) {
      const of = answers.filter((a) => a.url === url);
      expect(new Set(of.map((a) => a.backend)), url).toEqual(new Set(['be1', 'be2-pod']));
      expect(new Set(of.map((a) => a.client)), url).toEqual(
        new Set([url.includes('[') ? ADDR.client.v6 : ADDR.client.v4]),
      );
    }
    // At least SYN, ACK with the request, and the final ACK of every request went through the tunnel.
    expect(encapsulated).toBeGreaterThanOrEqual(answers.length * 3);
    expect(replies).toBe(0);
    const after = (await dsrOf('lb'))!.stats!;
    expect(Number(after.forwarded) - Number(before.forwarded)).toBeGreaterThanOrEqual(answers.length * 3);
    expect(Number((await dsrOf('be1'))!.stats!.decapsulated)).toBeGreaterThan(0);
    expect(Number((await dsrOf('be2'))!.stats!.decapsulated)).toBeGreaterThan(0);
  });

  it('the Service without the annotation stays on the normal path: nothing is encapsulated', async () => {
    const before = (await dsrOf('lb'))!.stats!;
    const answers: string[] = [];
    const encapsulated = await captureAtLb(ENCAPSULATED, async () => {
      for (let i = 0; i < 4; i++) {
        const a = await httpGet(`http://${PLAIN.v4}:${NODE_PORT}/`);
        expect(a.client).toBe(ADDR.client.v4);
        const a6 = await httpGet(`http://[${PLAIN.v6}]:${NODE_PORT}/`);
        expect(a6.client).toBe(ADDR.client.v6);
        answers.push(a.backend, a6.backend);
      }
    });
    // The load-balancer node's own stack answered: the backends (which serve this port too) saw nothing.
    expect(new Set(answers)).toEqual(new Set(['lb']));
    expect(encapsulated).toBe(0);
    expect((await dsrOf('lb'))!.stats!.forwarded).toBe(before.forwarded);
  });

  it('the healthCheckNodePort of the dual-stack Service answers over IPv6 and IPv4, counting a dual-stack pod once', async () => {
    const ready = {
      code: 200,
      body: { service: { namespace: 'shop', name: 'web' }, localEndpoints: 1, serviceProxyHealthy: true },
    };
    for (const address of [ADDR.be1.v6, ADDR.be1.v4, ADDR.be2.v6])
      expect(await healthCheck(address)).toEqual(ready);
    const notReady = { code: 503, body: { ...ready.body, localEndpoints: 0 } };
    expect(await healthCheck(ADDR.lb.v6)).toEqual(notReady);
    expect(await healthCheck(ADDR.lb.v4)).toEqual(notReady);
  });

  it('removing the annotation takes the Service off DSR: no VIP entries, no local VIPs, no DSR programs', async () => {
    await setDsrAnnotation(undefined);
    const start = performance.now();
    await waitForDsr(['lb'], 'no VIP entries', (dsr) => dsr.vips.length === 0);
    await waitForDsr(['be1', 'be2'], 'no local VIPs', (dsr) => dsr.localVips.length === 0);
    console.log(`DSR off everywhere after the Service update: ${(performance.now() - start).toFixed(0)} ms`);
    const lb = await daemon('lb').status();
    expect(lb.services!.dsr!.tables).toEqual([]);
    expect(lb.attachments.filter((a) => a.program.startsWith('nw_dsr'))).toEqual([]);
    const routes = await topo.be1.exec(['ip', 'route', 'show', 'table', 'local', 'proto', '78']);
    const routes6 = await topo.be1.exec(['ip', '-6', 'route', 'show', 'table', 'local', 'proto', '78']);
    expect(routes.stdout + routes6.stdout).toBe('');

    // The VIP now gets what an unannotated Service gets on this node: no tunnel.
    const encapsulated = await captureAtLb(ENCAPSULATED, async () => {
      const r = await topo.client.exec(['curl', '-sS', '--max-time', '1', `http://${ADDR.vip.v4}/`], {
        allowFailure: true,
      });
      expect(r.code).not.toBe(0);
    });
    expect(encapsulated).toBe(0);
    // The health port does not depend on DSR.
    expect((await healthCheck(ADDR.be1.v6))?.code).toBe(200);
  });

  it('setting it back to "true" puts the Service on DSR again: the programs attach, IPv6 traffic is tunnelled', async () => {
    await setDsrAnnotation('true');
    await waitForDsr(['lb'], 'both tables', (dsr) => dsr.tables.length === 2);
    await waitForDsr(['be1', 'be2'], 'the VIPs local', (dsr) => dsr.localVips.length === 3);
    const lb = await daemon('lb').status();
    expect(lb.attachments.filter((a) => a.hook === 'xdp')).toEqual([
      expect.objectContaining({ ifname: 'eth0', program: 'nw_dsr_xdp', state: 'attached' }),
    ]);
    const backends = new Set<string>();
    const encapsulated = await captureAtLb(ENCAPSULATED, async () => {
      for (let i = 0; i < 8; i++) {
        const a = await httpGet(`http://[${ADDR.vip.v6}]/`);
        expect(a.client).toBe(ADDR.client.v6);
        backends.add(a.backend);
      }
    });
    expect(backends).toEqual(new Set(['be1', 'be2-pod']));
    expect(encapsulated).toBeGreaterThanOrEqual(8 * 3);
  });
});

describe('an invalid DSR annotation', () => {
  const warning = `Service shop/web: ${DSR_ANNOTATION_PATH}: must be "true" or "false", got "yes"; using services.dsr.enabled (false)`;
  const logged = (text: string) =>
    daemon('lb')
      .process.stdout.split('\n')
      .filter((l) => l.includes(text) && l.includes('shop/web')).length;

  it('keeps the Service on its fallback path, warns in status and once in the log, and the warning goes when fixed', async () => {
    await setDsrAnnotation('yes');
    // services.dsr.enabled is false here: the fallback takes the Service off DSR, everywhere.
    await waitForDsr(['lb'], 'no VIP entries', (dsr) => dsr.vips.length === 0);
    await waitForDsr(['be1', 'be2'], 'no local VIPs', (dsr) => dsr.localVips.length === 0);
    const status = JSON.parse((await daemon('lb').cli(['status', '-o', 'json'])).stdout) as DaemonStatus;
    expect(status.services!.warnings).toEqual([warning]);
    expect(status.services!.dsr!.tables).toEqual([]);
    expect((await daemon('lb').cli(['status'])).stdout).toContain(`  warning: ${warning}`);
    // The Service itself stays: its health port still answers.
    expect((await healthCheck(ADDR.be1.v6))?.code).toBe(200);
    // Leases renew every second; two renewals later the warning is still logged only once.
    const renewals = status.kubernetes!.heartbeat.renewals;
    await waitFor(
      'two lease renewals',
      async () =>
        (await daemon('lb').status()).kubernetes!.heartbeat.renewals >= renewals + 2 ? true : undefined,
      5_000,
    );
    expect(logged('services input warning;')).toBe(1);

    await setDsrAnnotation('false');
    await waitFor(
      'the warning gone',
      async () => ((await daemon('lb').status()).services!.warnings!.length === 0 ? true : undefined),
      10_000,
    );
    expect(logged('services input warning resolved')).toBe(1);
    expect((await dsrOf('lb'))!.vips).toEqual([]);
  });
});
