/**
 * The README's main-job command. Builds a two-host lab (node, client), runs the
 * real daemon in the node namespace, sends traffic, and shows `nodewarden
 * status`; then kills the daemon with SIGKILL to show the pinned datapath
 * keeps working, and starts it again to show it adopts the pinned state.
 * Every change happens inside the lab's own namespaces and bpffs mount.
 */
import { withLab } from '../test/lab/index.js';
import { mountTempBpffs } from '../test/support/bpffs.js';
import { daemonFiles, startDaemon } from '../test/support/daemon.js';

const NODE_IP = '10.99.0.1';

function section(title: string): void {
  process.stdout.write(`\n=== ${title}\n`);
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`demo check failed: ${what}`);
  process.stdout.write(`ok: ${what}\n`);
}

const bpffs = mountTempBpffs();
const files = daemonFiles(
  'nodeName: demo-node\n# devices: empty, so the daemon picks the default-route device\nlog:\n  level: info\n',
);
try {
  await withLab(async (lab) => {
    const node = await lab.host('node');
    const client = await lab.host('client');
    await lab.link(node, client, {
      aDev: 'eth0',
      bDev: 'eth0',
      aAddrs: [`${NODE_IP}/24`, 'fd00:99::1/64'],
      bAddrs: ['10.99.0.2/24', 'fd00:99::2/64'],
    });
    await node.addRoute('default', '10.99.0.2');
    const ping = (n: number) =>
      client.exec(['ping', '-q', '-c', String(n), '-i', '0.05', '-W', '1', NODE_IP]);
    const pinDir = `${bpffs.dir}/nodewarden`;

    section(`starting nodewarden in namespace ${node.netns} (pin dir ${pinDir})`);
    const first = await startDaemon(node, files, pinDir);
    await ping(5);
    const status = await first.cli(['status']);
    process.stdout.write(status.stdout);
    const s1 = await first.status();
    check(s1.devices.join() === 'eth0', 'the default-route device eth0 was detected');
    check(
      s1.attachments.every((a) => a.state === 'attached'),
      'tc ingress and egress programs attached and pinned',
    );
    const before = BigInt(s1.packetCounters.tcIngress.packets);
    check(before >= 5n, `ingress program counted the client's ping (${before} packets)`);

    section('SIGKILL the daemon: the pinned programs keep running without it');
    first.process.kill('SIGKILL');
    await first.process.exited;
    await ping(5);

    section('start it again: it adopts the pinned maps and links');
    const second = await startDaemon(node, files, pinDir);
    process.stdout.write((await second.cli(['status'])).stdout);
    const s2 = await second.status();
    check(
      s2.attachments.every((a) => a.adopted === true),
      'the new daemon adopted the pinned links',
    );
    const after = BigInt(s2.packetCounters.tcIngress.packets);
    check(
      after >= before + 5n,
      `counters kept their values and counted while no daemon ran (${before} -> ${after})`,
    );

    section('stop and clean up');
    second.process.kill('SIGTERM');
    await second.process.exited;
    process.stdout.write((await second.cli(['cleanup'])).stdout);
  });
} finally {
  files.destroy();
  bpffs.destroy();
}
process.stdout.write('\ndemo finished: the lab namespaces and the bpffs mount are gone\n');
