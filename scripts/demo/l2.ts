/**
 * The L2 part of the README demo: two nodes running the real daemon and a
 * client on one bridge. The client's arping for a LoadBalancer IP is answered
 * by the owner's XDP responder, the IP moves to the other node by config
 * reload and the client's neighbour entry follows from gratuitous ARP, then
 * `nodewarden l2 status` and `nodewarden status`. Own lab, own bpffs mount.
 */
import { withLab } from '../../test/lab/index.js';
import { mountTempBpffs } from '../../test/support/bpffs.js';
import { daemonFiles, startDaemon } from '../../test/support/daemon.js';
import { l2NodeConfig } from '../../test/support/l2.js';

const LB_IP = '10.98.0.50';

function say(title: string): void {
  process.stdout.write(`\n=== ${title}\n`);
}

function ok(condition: boolean, what: string): void {
  if (!condition) throw new Error(`demo check failed: ${what}`);
  process.stdout.write(`ok: ${what}\n`);
}

export async function demoL2(): Promise<void> {
  const bpffs = mountTempBpffs();
  const files = [daemonFiles(l2NodeConfig('node-a', [LB_IP])), daemonFiles(l2NodeConfig('node-b', []))];
  try {
    await withLab(async (lab) => {
      const lan = await lab.bridge('lan');
      const client = await lab.host('client');
      await lan.attach(client, { dev: 'eth0', addrs: ['10.98.0.100/24'] });
      const a = await lab.host('node-a');
      const b = await lab.host('node-b');
      const macA = (await lan.attach(a, { dev: 'eth0', addrs: ['10.98.0.1/24'] })).mac;
      const macB = (await lan.attach(b, { dev: 'eth0', addrs: ['10.98.0.2/24'] })).mac;

      say(`L2 announcements: node-a (${macA}) announces ${LB_IP}; node-b (${macB}) stands by`);
      const daemonA = await startDaemon(a, files[0]!, `${bpffs.dir}/a`);
      const daemonB = await startDaemon(b, files[1]!, `${bpffs.dir}/b`);
      const arping = await client.exec(['arping', '-c', '2', '-w', '3', '-I', 'eth0', LB_IP]);
      process.stdout.write(arping.stdout);
      ok(
        arping.stdout.toLowerCase().includes(macA.toLowerCase()),
        "the client's arping is answered with node-a's MAC",
      );

      say('the IP moves to node-b by config reload; the client asks nothing');
      await client.exec(['ping', '-c', '1', '-W', '2', LB_IP]);
      await new Promise((r) => setTimeout(r, 1100)); // Linux ignores updates within 1 s of the last
      files[0]!.writeConfig(l2NodeConfig('node-a', []));
      files[1]!.writeConfig(l2NodeConfig('node-b', [LB_IP]));
      const started = Date.now();
      await daemonA.reload();
      await daemonB.reload();
      let lladdr = '';
      while (Date.now() - started < 5000 && lladdr !== macB.toLowerCase()) {
        const [entry] = JSON.parse((await client.ip(['-j', 'neigh', 'show', LB_IP])).stdout || '[]') as {
          lladdr?: string;
        }[];
        lladdr = entry?.lladdr?.toLowerCase() ?? '';
        await new Promise((r) => setTimeout(r, 20));
      }
      ok(
        lladdr === macB.toLowerCase(),
        `the client's neighbour entry moved to node-b from gratuitous ARP after ${Date.now() - started} ms`,
      );

      const after = await client.exec(['arping', '-c', '2', '-w', '3', '-I', 'eth0', LB_IP]);
      process.stdout.write(after.stdout);
      ok(after.stdout.toLowerCase().includes(macB.toLowerCase()), "node-b's responder answers now");

      say('nodewarden l2 status (node-b)');
      process.stdout.write((await daemonB.cli(['l2', 'status'])).stdout);
      say('nodewarden status (node-b)');
      process.stdout.write((await daemonB.cli(['status'])).stdout);
    });
  } finally {
    for (const f of files) f.destroy();
    bpffs.destroy();
  }
}
