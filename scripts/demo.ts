/**
 * The README's main-job command. Builds a lab (a node, a management host and
 * another host on one L2 segment), runs the real daemon in the node
 * namespace, and shows the host firewall at work: SSH lockdown against a real
 * sshd, `policy trace`, `nodewarden monitor`, a commit-confirmed apply that
 * rolls itself back, established flows surviving a SIGKILL of the daemon, and
 * finally `nodewarden status`. Everything happens inside the lab's own
 * namespaces and its own bpffs mount.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withLab } from '../test/lab/index.js';
import { mountTempBpffs } from '../test/support/bpffs.js';
import { daemonFiles, startDaemon } from '../test/support/daemon.js';
import { type Sshd, startFlows, startSshd, startTcpServer, tcpBanner } from '../test/support/net.js';
import { CLI_BUNDLE } from '../test/support/paths.js';
import { demoBgp } from './demo/bgp.js';
import { demoKubernetes } from './demo/kubernetes.js';
import { demoL2 } from './demo/l2.js';
import { demoServices } from './demo/services.js';

const NODE = '10.99.0.1';
const MGMT = '10.99.0.10';
const OTHER = '10.99.0.20';

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: ssh-from-management
spec:
  nodeSelector: {}
  ingress:
  - fromCIDR: [${MGMT}/32]
    toPorts:
    - ports: [{ port: "22", protocol: TCP }]
  - icmps:
    - fields: [{ type: EchoRequest, family: IPv4 }]
`;

function section(title: string): void {
  process.stdout.write(`\n=== ${title}\n`);
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`demo check failed: ${what}`);
  process.stdout.write(`ok: ${what}\n`);
}

const sshState = (banner: string | undefined) => (banner?.startsWith('SSH-2.0') ? 'open' : 'refused');

const bpffs = mountTempBpffs();
const files = daemonFiles('');
let sshd: Sshd | undefined;
try {
  await withLab(async (lab) => {
    const node = await lab.host('node');
    const mgmt = await lab.host('mgmt');
    const other = await lab.host('other');
    const lan = await lab.bridge('lan');
    await lan.attach(node, { dev: 'eth0', addrs: [`${NODE}/24`, 'fd99::1/64'] });
    await lan.attach(mgmt, { dev: 'eth0', addrs: [`${MGMT}/24`, 'fd99::10/64'] });
    await lan.attach(other, { dev: 'eth0', addrs: [`${OTHER}/24`, 'fd99::20/64'] });
    await node.addRoute('default', MGMT);
    sshd = await startSshd(node);
    await startTcpServer(mgmt, 7000);

    const policyDir = join(files.dir, 'policies.d');
    mkdirSync(policyDir);
    files.writeConfig(`nodeName: demo-node\nlabels:\n  role: edge\npolicies:\n  directory: ${policyDir}\n`);
    const pinDir = `${bpffs.dir}/nodewarden`;

    section(`nodewarden starts in namespace ${node.netns}; no policy yet`);
    let daemon = await startDaemon(node, files, pinDir);
    check(
      (await daemon.status()).devices.join() === 'eth0',
      'the default-route device eth0 was detected and the programs attached',
    );
    check(sshState(await tcpBanner(other, NODE, 22)) === 'open', 'without a policy, any host reaches sshd');

    section('SSH lockdown: policies.d/ssh.yaml allows port 22 from the management host only');
    writeFileSync(join(policyDir, 'ssh.yaml'), POLICY);
    process.stdout.write((await daemon.cli(['policy', 'check', join(policyDir, 'ssh.yaml')])).stdout);
    await daemon.reload();
    const monitor = node.spawn(['node', CLI_BUNDLE, 'monitor', '--count', '1', '--run-dir', files.runDir]);
    check(sshState(await tcpBanner(mgmt, NODE, 22)) === 'open', `${MGMT} (management) reaches the real sshd`);
    for (let i = 0; i < 10 && !monitor.stdout.includes('{'); i++) await tcpBanner(other, NODE, 22, 0.3);
    check(sshState(await tcpBanner(other, NODE, 22)) === 'refused', `${OTHER} is refused`);
    await monitor.exited;
    process.stdout.write(`nodewarden monitor: ${monitor.stdout}`);
    process.stdout.write(
      (await daemon.cli(['policy', 'trace', '--from', OTHER, '--to', NODE, '--port', '22/tcp'])).stdout,
    );
    process.stdout.write(
      (await daemon.cli(['policy', 'trace', '--from', MGMT, '--to', NODE, '--port', '22/tcp'])).stdout,
    );

    section(
      'policy apply --confirm-within 3s of a policy that locks the management host out, never confirmed',
    );
    const lockout = join(files.dir, 'ssh.yaml');
    writeFileSync(lockout, POLICY.replace(`${MGMT}/32`, `${OTHER}/32`));
    process.stdout.write((await daemon.cli(['policy', 'apply', '--confirm-within', '3s', lockout])).stdout);
    check(
      sshState(await tcpBanner(mgmt, NODE, 22)) === 'refused',
      'the management host is locked out for now',
    );
    await new Promise((r) => setTimeout(r, 3500));
    check(
      sshState(await tcpBanner(mgmt, NODE, 22)) === 'open',
      'no confirmation came: the previous policy is back and so is access',
    );

    section(
      'established flows survive a SIGKILL of the daemon (ingress is default-deny; conntrack lets replies in)',
    );
    const flows = startFlows(node, MGMT, 7000, 20, 4000);
    await flows.waitForOutput(/all connected/);
    daemon.process.kill('SIGKILL');
    await daemon.process.exited;
    process.stdout.write('daemon killed; the pinned programs and conntrack keep working\n');
    daemon = await startDaemon(node, files, pinDir);
    const result = JSON.parse((await flows.waitForOutput(/\{"ok".*\}/, 10_000))[0]) as {
      ok: number;
      failed: number;
    };
    check(
      result.failed === 0,
      `20 flows, ${result.ok} round trips, ${result.failed} failures across the restart`,
    );
    check(
      (await daemon.status()).attachments.every((a) => a.adopted),
      'the new daemon adopted the pinned links',
    );

    const bgp = await demoBgp({ lab, lan, node, nodeAddress: NODE, nodeAddress6: 'fd99::1', daemon, files });

    section('nodewarden status');
    process.stdout.write((await daemon.cli(['status'])).stdout);

    section('stop and clean up');
    daemon.process.kill('SIGTERM');
    await daemon.process.exited;
    process.stdout.write((await daemon.cli(['cleanup'])).stdout);
    await bgp.stop();
  });
} finally {
  sshd?.destroy();
  files.destroy();
  bpffs.destroy();
}
await demoL2();
await demoServices();
section('Kubernetes: node heartbeats and rendezvous ownership (fixture API server)');
await demoKubernetes((line) => process.stdout.write(`${line}\n`));
process.stdout.write('\ndemo finished: the lab namespaces and the bpffs mount are gone\n');
