/**
 * The services part of the README demo: a healthCheckNodePort answering 200
 * and then 503 as the node's local endpoints come and go (over IPv4 and IPv6,
 * from another namespace), then DSR: a client reaches a VIP through a
 * load-balancer node and two backends, the backends see the client's address
 * and answer directly; then `nodewarden status` of the load-balancer node.
 * Everything runs in lab namespaces of its own, on its own bpffs.
 */
import { withLab } from '../../test/lab/index.js';
import { mountTempBpffs } from '../../test/support/bpffs.js';
import { type DaemonFiles, daemonFiles, startDaemon } from '../../test/support/daemon.js';
import { ADDR, buildDsrTopology, startDsrDaemons } from '../../test/support/dsr-topology.js';

const say = (text: string) => process.stdout.write(`${text}\n`);

function serviceConfig(endpoints: number): string {
  return `nodeName: svc-node
devices: [eth0]
services:
  items:
    - namespace: shop
      name: web
      loadBalancerIPs: [192.0.2.80]
      ports: [{ port: 80, nodePort: 30080 }]
      externalTrafficPolicy: Local
      healthCheckNodePort: 32000
      localReadyEndpoints: ${endpoints}
`;
}

export async function demoServices(): Promise<void> {
  const bpffs = mountTempBpffs();
  const files: DaemonFiles[] = [];
  try {
    await withLab(async (lab) => {
      say('\n=== healthCheckNodePort: shop/web on port 32000, asked by a load balancer in another namespace');
      const node = await lab.host('node');
      const lb = await lab.host('lb');
      await lab.link(node, lb, {
        aDev: 'eth0',
        bDev: 'eth0',
        aAddrs: ['10.98.0.1/24', 'fd98::1/64'],
        bAddrs: ['10.98.0.2/24', 'fd98::2/64'],
      });
      const health = daemonFiles(serviceConfig(2));
      files.push(health);
      const daemon = await startDaemon(node, health, `${bpffs.dir}/health`);
      const ask = async (url: string) => {
        const r = await lb.exec(['curl', '-sS', '-g', '-i', '--max-time', '2', url]);
        return r.stdout.replace(/\r/g, '');
      };
      say('$ curl -i http://10.98.0.1:32000/   (2 ready endpoints on this node)');
      say(await ask('http://10.98.0.1:32000/'));
      for (const endpoints of [0, 1]) {
        health.writeConfig(serviceConfig(endpoints));
        await daemon.reload();
        const answer = await ask('http://[fd98::1]:32000/');
        say(`endpoints now ${endpoints}: $ curl -i http://[fd98::1]:32000/ → ${answer.split('\n')[0]}`);
        if (!answer.startsWith(endpoints > 0 ? 'HTTP/1.1 200' : 'HTTP/1.1 503'))
          throw new Error(`demo check failed: expected ${endpoints > 0 ? 200 : 503}, got ${answer}`);
      }
      say('\n$ nodewarden status');
      say((await daemon.cli(['status'])).stdout);
    });

    await withLab(async (lab) => {
      say('\n=== DSR: client → router → load-balancer node (XDP, IPIP) → backends, which answer directly');
      const topo = await buildDsrTopology(lab);
      try {
        const [lbDaemon] = await startDsrDaemons(topo, `${bpffs.dir}/dsr`, files);
        const seen = new Map<string, string>();
        for (let i = 0; i < 8; i++) {
          const r = await topo.client.exec(['curl', '-sS', '--max-time', '2', `http://${ADDR.vip.v4}/`]);
          const answer = JSON.parse(r.stdout) as { backend: string; client: string };
          seen.set(answer.backend, answer.client);
        }
        for (const [backend, client] of seen)
          say(`curl http://${ADDR.vip.v4}/ answered by ${backend}, which saw the client as ${client}`);
        if (seen.size !== 2 || [...seen.values()].some((c) => c !== ADDR.client.v4))
          throw new Error('demo check failed: both backends answer and see the client address');
        say('\n$ nodewarden status   (on the load-balancer node)');
        say((await lbDaemon!.daemon.cli(['status'])).stdout);
      } finally {
        topo.destroy();
      }
    });
  } finally {
    for (const f of files) f.destroy();
    bpffs.destroy();
  }
}
