/**
 * The DSR lab: a client behind a router, and on the router's LAN a
 * load-balancer node and two backend nodes. The router routes the VIPs to the
 * load-balancer node (as a BGP route would). Backend 1 serves the VIP itself
 * (a hostNetwork backend); backend 2 hands VIP traffic to a pod namespace
 * through a kube-proxy-like nftables DNAT, which also serves a NodePort.
 * Every server answers JSON naming itself and the client address it saw.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bridge, Host, Lab } from '../lab/index.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from './daemon.js';
import { FIXTURE_BPF } from './paths.js';

export const ADDR = {
  client: { v4: '10.90.1.2', v6: 'fd90:1::2' },
  routerOut: { v4: '10.90.1.1', v6: 'fd90:1::1' },
  routerLan: { v4: '10.90.0.1', v6: 'fd90::1' },
  lb: { v4: '10.90.0.10', v6: 'fd90::10' },
  be1: { v4: '10.90.0.11', v6: 'fd90::11' },
  be2: { v4: '10.90.0.12', v6: 'fd90::12' },
  be2Pods: { v4: '10.90.2.1', v6: 'fd90:2::1' },
  pod: { v4: '10.90.2.2', v6: 'fd90:2::2' },
  vip: { v4: '192.0.2.80', v6: '2001:db8:90::80' },
} as const;

export const NODE_PORT = 30080;

export interface DsrTopology {
  client: Host;
  router: Host;
  lb: Host;
  be1: Host;
  be2: Host;
  pod: Host;
  lan: Bridge;
  /** The LAN switch's port towards the load-balancer node (capture there). */
  lbPort: string;
  scriptDir: string;
  destroy(): void;
}

/** An HTTP server on `ports` and a UDP server on `udpPort`, both answering {backend, client, local}. */
const SERVER = `
const http = require('node:http');
const dgram = require('node:dgram');
const [name, udpPort, udpAddresses, ...ports] = process.argv.slice(2);
const plain = (a) => a.replace(/^::ffff:/, '');
for (const port of ports) {
  const server = http.createServer((req, res) => {
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ backend: name, client: plain(req.socket.remoteAddress), local: plain(req.socket.localAddress) }));
  });
  server.keepAliveTimeout = 120000;
  server.listen(Number(port), '::');
}
// A UDP reply leaves from the address the socket is bound to, or else from the route's
// preferred source: a host that answers on a VIP binds it (or uses IP_PKTINFO).
for (const address of udpAddresses.split(',')) {
  const sock = dgram.createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', ipv6Only: address.includes(':'), reuseAddr: true });
  sock.on('message', (msg, rinfo) => {
    sock.send(JSON.stringify({ backend: name, client: rinfo.address, asked: msg.toString() }), rinfo.port, rinfo.address);
  });
  sock.bind(Number(udpPort), address);
}
setTimeout(() => console.log('serving'), 200);
`;

/** A temporary directory with the JSON server script, for `serve` (remove it when done). */
export function serverScriptDir(): string {
  const scriptDir = mkdtempSync(join(tmpdir(), 'nw-dsr-'));
  writeFileSync(join(scriptDir, 'server.cjs'), SERVER);
  return scriptDir;
}

export async function buildDsrTopology(lab: Lab): Promise<DsrTopology> {
  const scriptDir = serverScriptDir();
  const client = await lab.host('client');
  const router = await lab.host('router');
  const lb = await lab.host('lb');
  const be1 = await lab.host('be1');
  const be2 = await lab.host('be2');
  const pod = await lab.host('pod');
  await lab.link(client, router, {
    aDev: 'eth0',
    bDev: 'eth0',
    aAddrs: [`${ADDR.client.v4}/24`, `${ADDR.client.v6}/64`],
    bAddrs: [`${ADDR.routerOut.v4}/24`, `${ADDR.routerOut.v6}/64`],
  });
  const lan = await lab.bridge('lan');
  await lan.attach(router, { dev: 'eth1', addrs: [`${ADDR.routerLan.v4}/24`, `${ADDR.routerLan.v6}/64`] });
  const lbEnd = await lan.attach(lb, { dev: 'eth0', addrs: [`${ADDR.lb.v4}/24`, `${ADDR.lb.v6}/64`] });
  await lan.attach(be1, { dev: 'eth0', addrs: [`${ADDR.be1.v4}/24`, `${ADDR.be1.v6}/64`] });
  await lan.attach(be2, { dev: 'eth0', addrs: [`${ADDR.be2.v4}/24`, `${ADDR.be2.v6}/64`] });
  await lab.link(be2, pod, {
    aDev: 'eth1',
    bDev: 'eth0',
    aAddrs: [`${ADDR.be2Pods.v4}/24`, `${ADDR.be2Pods.v6}/64`],
    bAddrs: [`${ADDR.pod.v4}/24`, `${ADDR.pod.v6}/64`],
  });

  await client.addRoute('default', ADDR.routerOut.v4);
  await client.addRoute('default', ADDR.routerOut.v6);
  for (const node of [lb, be1, be2]) {
    await node.addRoute('default', ADDR.routerLan.v4);
    await node.addRoute('default', ADDR.routerLan.v6);
  }
  await pod.addRoute('default', ADDR.be2Pods.v4);
  await pod.addRoute('default', ADDR.be2Pods.v6);
  // The VIPs' routes point at the load-balancer node, as BGP would announce them.
  await router.addRoute(`${ADDR.vip.v4}/32`, ADDR.lb.v4);
  await router.addRoute(`${ADDR.vip.v6}/128`, ADDR.lb.v6);
  for (const node of [router, lb, be2]) {
    await node.sysctl('net.ipv4.conf.all.forwarding', 1);
    await node.sysctl('net.ipv6.conf.all.forwarding', 1);
  }
  // veth leaves checksums to the receiver (CHECKSUM_PARTIAL); XDP_TX sends what it has.
  // A real NIC has filled them in by the time XDP sees a packet.
  await client.exec(['ethtool', '-K', 'eth0', 'tx', 'off']);
  // veth delivers XDP_TX frames only to a peer that runs XDP itself (its NAPI is scheduled then).
  await lan.switchHost.ip([
    'link',
    'set',
    'dev',
    lbEnd.port,
    'xdpdrv',
    'obj',
    FIXTURE_BPF('xdp_pass'),
    'sec',
    'xdp',
  ]);
  // kube-proxy's part on backend 2: VIP and NodePort traffic goes to the pod.
  await be2.exec(['nft', '-f', '-'], {
    input: `
table inet nwtest {
  chain pre {
    type nat hook prerouting priority dstnat;
    ip daddr ${ADDR.vip.v4} tcp dport 80 dnat ip to ${ADDR.pod.v4}:8080
    ip daddr ${ADDR.vip.v4} udp dport 53 dnat ip to ${ADDR.pod.v4}:5353
    ip6 daddr ${ADDR.vip.v6} tcp dport 80 dnat ip6 to [${ADDR.pod.v6}]:8080
    ip6 daddr ${ADDR.vip.v6} udp dport 53 dnat ip6 to [${ADDR.pod.v6}]:5353
    ip daddr ${ADDR.be2.v4} tcp dport ${NODE_PORT} dnat ip to ${ADDR.pod.v4}:8080
  }
}
`,
  });

  await serve(scriptDir, pod, 'be2-pod', '5353@0.0.0.0,::', [8080]);
  await serve(scriptDir, lb, 'lb', '5300@0.0.0.0', [NODE_PORT]);

  return {
    client: client,
    router: router,
    lb: lb,
    be1: be1,
    be2: be2,
    pod: pod,
    lan,
    lbPort: lbEnd.port,
    scriptDir,
    destroy: () => rmSync(scriptDir, { recursive: true, force: true }),
  };
}

/** What the JSON server answers: who answered, the client address it saw, the address it answered on. */
export interface Answer {
  backend: string;
  client: string;
  local?: string;
}

/** GET `url` from `host` (curl, 3 s at most): the JSON server's answer. */
export async function getAnswer(host: Host, url: string): Promise<Answer> {
  const r = await host.exec(['curl', '-sS', '-g', '--max-time', '3', url]);
  return JSON.parse(r.stdout) as Answer;
}

/** Packets matching `filter` that tcpdump saw on `port` of `bridge` while `during` ran. */
export async function captureOnPort(
  bridge: Bridge,
  port: string,
  filter: string,
  during: () => Promise<void>,
): Promise<number> {
  const dump = bridge.switchHost.spawn(['tcpdump', '-i', port, '-n', '-l', filter]);
  await dump.waitForOutput(/listening on/);
  await during();
  await new Promise((r) => setTimeout(r, 300));
  dump.kill('SIGINT');
  await dump.exited;
  const m = /(\d+) packets? captured/.exec(dump.output);
  if (!m) throw new Error(`tcpdump printed no summary: ${dump.output}`);
  return Number(m[1]);
}

/** The JSON server on `host`: UDP as `port@address,…`, HTTP on `ports`. */
export async function serve(scriptDir: string, host: Host, name: string, udp: string, ports: number[]) {
  const [udpPort, udpAddresses] = udp.split('@') as [string, string];
  const script = join(scriptDir, 'server.cjs');
  const proc = host.spawn(['node', script, name, udpPort, udpAddresses, ...ports.map(String)]);
  await proc.waitForOutput(/serving/);
}

/**
 * Backend 1's host server (hostNetwork). Start it once its daemon runs: its
 * UDP sockets bind the VIPs, which are local only from then on.
 */
export async function startHostBackend(topo: DsrTopology): Promise<void> {
  // An IPv6 VIP is a local route, not an address: binding it needs nonlocal bind.
  await topo.be1.sysctl('net.ipv6.ip_nonlocal_bind', 1);
  return serve(topo.scriptDir, topo.be1, 'be1', `53@0.0.0.0,::,${ADDR.vip.v4},${ADDR.vip.v6}`, [
    80,
    NODE_PORT,
  ]);
}

/** The daemon config of every node: one DSR service on both backends (or those given). */
export function dsrConfig(
  nodeName: string,
  backends: string[] = [ADDR.be1.v4, ADDR.be2.v4, ADDR.be1.v6, ADDR.be2.v6],
): string {
  return `nodeName: ${nodeName}
devices: [eth0]
services:
  dsr:
    enabled: true
    loadBalancerNodes: [${ADDR.lb.v4}, ${ADDR.lb.v6}]
  items:
    - name: web
      loadBalancerIPs: [${ADDR.vip.v4}, "${ADDR.vip.v6}"]
      ports:
        - { port: 80, nodePort: ${NODE_PORT} }
        - { port: 53, protocol: UDP }
      backendNodes: [${backends.map((b) => `"${b}"`).join(', ')}]
`;
}

export interface DsrDaemon {
  daemon: DaemonInstance;
  files: DaemonFiles;
}

/**
 * The real daemon on the load-balancer node and both backends (in that order),
 * pins under `pinRoot`; then backend 1's host server. `files` collects each
 * daemon's files as soon as they exist, so the caller can remove them whatever happens.
 */
export async function startDsrDaemons(
  topo: DsrTopology,
  pinRoot: string,
  files: DaemonFiles[],
): Promise<DsrDaemon[]> {
  const out: DsrDaemon[] = [];
  for (const [host, name] of [
    [topo.lb, 'lb'],
    [topo.be1, 'be1'],
    [topo.be2, 'be2'],
  ] as const) {
    const f = daemonFiles(dsrConfig(name));
    files.push(f);
    out.push({ daemon: await startDaemon(host, f, `${pinRoot}/${name}`), files: f });
  }
  await startHostBackend(topo);
  return out;
}
