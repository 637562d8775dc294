/**
 * healthCheckNodePort servers in the real daemon: real HTTP requests from
 * another namespace over IPv4 and IPv6, endpoint changes flip 200 and 503
 * within a second, a port another process holds is reported while the others
 * serve (and taken over once freed), ports close when their service goes away,
 * and a default-deny host policy still lets the health ports in.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Host, type Lab, type LabProcess } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';
import { startTcpServer, tcpConnects } from '../support/net.js';

const NODE = { v4: '10.79.0.1', v6: 'fd79::1' };
const LB = { v4: '10.79.0.2', v6: 'fd79::2' };
const MGMT = '10.79.0.3';

const DENY_INGRESS = `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: mgmt-only
spec:
  nodeSelector: {}
  ingress:
    - fromCIDR: [${MGMT}/32]
`;

let lab: Lab;
let node: Host;
let lb: Host;
let bpffs: TempBpffs;
let files: DaemonFiles;
let policyDir: string;
let daemon: DaemonInstance;
let squatter: LabProcess;

interface Svc {
  name: string;
  port: number;
  endpoints: number;
}

function writeConfig(services: Svc[]): void {
  const items = services
    .map(
      (s) =>
        `    - { name: ${s.name}, loadBalancerIPs: [192.0.2.1], ports: [{ port: 80 }], externalTrafficPolicy: Local, healthCheckNodePort: ${s.port}, localReadyEndpoints: ${s.endpoints} }`,
    )
    .join('\n');
  files.writeConfig(
    [
      'nodeName: svc-node',
      'devices: [eth0]',
      `policies:\n  directory: ${policyDir}`,
      services.length > 0 ? `services:\n  items:\n${items}` : '',
      '',
    ].join('\n'),
  );
}

interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One real HTTP request from `host` with curl; undefined when it cannot connect. */
async function httpGet(host: Host, url: string): Promise<HttpAnswer | undefined> {
  const r = await host.exec(['curl', '-sS', '-g', '-i', '--max-time', '2', url], { allowFailure: true });
  if (r.code !== 0) return undefined;
  const [head = '', body = ''] = r.stdout.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(':');
    headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  node = await lab.host('node');
  lb = await lab.host('lb');
  await lab.link(node, lb, {
    aDev: 'eth0',
    bDev: 'eth0',
    aAddrs: [`${NODE.v4}/24`, `${NODE.v6}/64`],
    bAddrs: [`${LB.v4}/24`, `${LB.v6}/64`],
  });
  // Another process (think kube-proxy) holds 32002 before the daemon starts.
  squatter = await startTcpServer(node, 32002, 'squatter\n');
  await startTcpServer(node, 8080);
  files = daemonFiles('');
  policyDir = join(files.dir, 'policies.d');
  mkdirSync(policyDir);
  writeConfig([
    { name: 'web', port: 32000, endpoints: 2 },
    { name: 'api', port: 32001, endpoints: 0 },
    { name: 'held', port: 32002, endpoints: 1 },
  ]);
  daemon = await startDaemon(node, files, `${bpffs.dir}/svc`);
});

afterAll(async () => {
  await lab?.destroy();
  bpffs?.destroy();
  files?.destroy();
});

describe('healthCheckNodePort', () => {
  it('answers like kube-proxy over IPv4 and IPv6: 200 with local endpoints, 503 without', async () => {
    for (const url of [`http://${NODE.v4}:32000/`, `http://[${NODE.v6}]:32000/any/path`]) {
      const web = await httpGet(lb, url);
      expect(web).toBeDefined();
      expect(web!.status).toBe(200);
      expect(web!.headers['content-type']).toBe('application/json');
      expect(web!.headers['x-content-type-options']).toBe('nosniff');
      expect(web!.headers['x-load-balancing-endpoint-weight']).toBe('2');
      expect(JSON.parse(web!.body)).toEqual({
        service: { namespace: 'default', name: 'web' },
        localEndpoints: 2,
        serviceProxyHealthy: true,
      });
    }
    const api = await httpGet(lb, `http://${NODE.v4}:32001/`);
    expect(api!.status).toBe(503);
    expect(api!.headers['x-load-balancing-endpoint-weight']).toBe('0');
    expect(JSON.parse(api!.body).localEndpoints).toBe(0);
  });

  it('reports a port another process holds, keeps serving the others, and takes the port once it is free', async () => {
    const status = await daemon.status();
    expect(status.services!.healthCheckNodePorts).toEqual([
      expect.objectContaining({ port: 32000, service: 'default/web', state: 'serving' }),
      expect.objectContaining({ port: 32001, service: 'default/api', state: 'serving' }),
      expect.objectContaining({ port: 32002, service: 'default/held', state: 'failed' }),
    ]);
    expect(status.services!.healthCheckNodePorts[2]!.error).toMatch(/^EADDRINUSE/);
    expect(daemon.process.output).toMatch(/cannot serve healthCheckNodePort 32002: another process/);
    const text = await daemon.cli(['status']);
    expect(text.stdout).toMatch(/32002\s+default\/held .*FAILED: EADDRINUSE/);
    expect((await httpGet(lb, `http://${NODE.v4}:32000/`))!.status).toBe(200);

    squatter.kill('SIGTERM');
    await squatter.exited;
    // The daemon retries every 5 s.
    const deadline = Date.now() + 8_000;
    let answer: HttpAnswer | undefined;
    while (Date.now() < deadline) {
      answer = await httpGet(lb, `http://${NODE.v4}:32002/`);
      if (answer) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(answer?.status).toBe(200);
    expect((await daemon.status()).services!.healthCheckNodePorts[2]!.state).toBe('serving');
  });

  it('flips 200/503 within a second of an endpoint change, keeping the same server', async () => {
    writeConfig([
      { name: 'web', port: 32000, endpoints: 0 },
      { name: 'api', port: 32001, endpoints: 3 },
      { name: 'held', port: 32002, endpoints: 1 },
    ]);
    const sinceBefore = (await daemon.status()).services!.healthCheckNodePorts[0]!.since;
    const started = Date.now();
    expect((await daemon.reload()).ok).toBe(true);
    const web = await httpGet(lb, `http://${NODE.v4}:32000/`);
    const api = await httpGet(lb, `http://[${NODE.v6}]:32001/`);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(web!.status).toBe(503);
    expect(api!.status).toBe(200);
    expect(api!.headers['x-load-balancing-endpoint-weight']).toBe('3');
    expect((await daemon.status()).services!.healthCheckNodePorts[0]!.since).toBe(sinceBefore);
  });

  it('under a default-deny ingress host policy, health ports stay reachable and other ports are not', async () => {
    writeFileSync(join(policyDir, 'mgmt-only.yaml'), DENY_INGRESS);
    expect((await daemon.reload()).ok).toBe(true);
    expect(await tcpConnects(lb, NODE.v4, 8080)).toBe(false);
    expect((await httpGet(lb, `http://${NODE.v4}:32001/`))!.status).toBe(200);
    expect((await httpGet(lb, `http://[${NODE.v6}]:32000/`))!.status).toBe(503);
    const status = await daemon.status();
    expect(status.firewall.defaults.ingress).toBe('deny');
    expect(status.firewall.systemAllows).toContain('ingress healthCheckNodePort 32001/TCP of default/api');
    const trace = await daemon.cli([
      'policy',
      'trace',
      '--from',
      LB.v4,
      '--to',
      NODE.v4,
      '--port',
      '32001/tcp',
      '-o',
      'json',
    ]);
    expect(JSON.parse(trace.stdout)).toMatchObject({
      verdict: 'allow-system',
      decidedBy: 'system: healthCheckNodePort 32001/TCP of default/api',
    });
  });

  it('closes the port of a service that goes away, and the daemon reports its own health on /healthz', async () => {
    writeConfig([
      { name: 'web', port: 32000, endpoints: 1 },
      { name: 'held', port: 32002, endpoints: 1 },
    ]);
    expect((await daemon.reload()).ok).toBe(true);
    // Asked from the node itself: the firewall (on eth0 only) cannot be what refuses it.
    expect(await httpGet(node, 'http://127.0.0.1:32001/')).toBeUndefined();
    expect(await httpGet(node, 'http://[::1]:32001/')).toBeUndefined();
    expect((await httpGet(node, 'http://[::1]:32000/'))!.status).toBe(200);
    expect((await httpGet(lb, `http://${NODE.v4}:32000/`))!.status).toBe(200);
    expect((await daemon.status()).services!.healthCheckNodePorts.map((p) => p.port)).toEqual([32000, 32002]);

    const healthz = await httpGet(node, 'http://127.0.0.1:9469/healthz');
    expect(healthz!.status).toBe(200);
    expect(JSON.parse(healthz!.body)).toEqual({
      healthy: true,
      bpfAttached: true,
      sourcesSynced: true,
      lastReloadOk: true,
    });
    files.writeConfig('nodeName: svc-node\nbogus: 1\n');
    expect((await daemon.reload()).ok).toBe(false);
    const unhealthy = await httpGet(node, 'http://127.0.0.1:9469/healthz');
    expect(unhealthy!.status).toBe(503);
    expect(JSON.parse(unhealthy!.body)).toMatchObject({ healthy: false, lastReloadOk: false });
    // The last good services stay served.
    expect((await httpGet(lb, `http://${NODE.v4}:32000/`))!.status).toBe(200);
  });

  it('closes every port when the services section goes away', async () => {
    writeConfig([]);
    expect((await daemon.reload()).ok).toBe(true);
    expect(await httpGet(node, 'http://127.0.0.1:32000/')).toBeUndefined();
    expect(await httpGet(node, 'http://127.0.0.1:32002/')).toBeUndefined();
    expect((await daemon.status()).services!.healthCheckNodePorts).toEqual([]);
    expect((await daemon.status()).firewall.systemAllows).toEqual([]);
  });
});
