/**
 * The .deb installed with dpkg on a Debian 12 machine booted with a real
 * systemd as PID 1 (systemd-nspawn), inside a lab network namespace: the unit
 * reaches active through READY=1, reload applies new policies, the watchdog
 * restarts a frozen daemon, an upgrade keeps the conffiles and the pinned
 * firewall enforcing throughout, and purge removes everything. The machine has
 * no Node.js: the single executable brings its own runtime.
 */
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLab, type Host, type Lab, type LabProcess } from '../lab/index.js';
import { type BuiltPackages, buildPackages, packageVersion } from '../package/build.js';
import { Container } from '../package/container.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { startTcpServer, tcpConnects } from '../support/net.js';

const NODE_IP = '10.88.0.1';
const OPEN_PORT = 8080;
const CLOSED_PORT = 8081;
const UNIT = 'nodewarden.service';

// Only 8080/tcp from the peer's network may come in; selecting the node with an
// ingress rule makes everything else default-deny.
const POLICY = `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: web-only
spec:
  nodeSelector: {}
  ingress:
  - fromCIDR: [10.88.0.0/24]
    toPorts:
    - ports:
      - port: "${OPEN_PORT}"
        protocol: TCP
`;
const CONFIG_EDIT = '\n# edited by the operator\nnodeName: machine-a\ndevices: [eth0]\n';

let lab: Lab;
let peer: Host;
let bpffs: TempBpffs;
let machine: Container;
let v1: BuiltPackages;
let v2: BuiltPackages;
const servers: LabProcess[] = [];

beforeAll(async () => {
  v1 = await buildPackages();
  v2 = await buildPackages(`${packageVersion()}+upgrade1`);
  bpffs = mountTempBpffs();
  lab = await createLab();
  const node = await lab.host('node');
  peer = await lab.host('peer');
  await lab.link(node, peer, {
    aDev: 'eth0',
    bDev: 'eth0',
    aAddrs: [`${NODE_IP}/24`],
    bAddrs: ['10.88.0.2/24'],
  });
  servers.push(await startTcpServer(node, OPEN_PORT), await startTcpServer(node, CLOSED_PORT));
  machine = await Container.boot({ netns: node.netns, bpffsDir: bpffs.dir, name: `nwpkg-${process.pid}` });
  await machine.exec(['mkdir', '-p', '/root/packages']);
  for (const pkg of [v1, v2]) copyFileSync(pkg.deb, `${machine.root}${debIn(pkg)}`);
}, 600_000);

afterAll(async () => {
  await machine?.destroy();
  await lab?.destroy();
  bpffs?.destroy();
});

const debIn = (pkg: BuiltPackages) => `/root/packages/${basename(pkg.deb)}`;

async function unitState(): Promise<Record<string, string>> {
  return machine.show(UNIT, ['ActiveState', 'SubState', 'MainPID', 'NRestarts', 'StatusText', 'Result']);
}

async function waitActive(what: string, extra: (s: Record<string, string>) => boolean = () => true) {
  await machine.waitFor(
    what,
    async () => {
      const s = await unitState();
      return s.ActiveState === 'active' && extra(s);
    },
    30_000,
    async () => `${JSON.stringify(await unitState())}\n${await machine.journal(UNIT)}`,
  );
}

// 2 s: the timeout includes starting bash, which a loaded CI machine can make slow.
const opens = (port: number) => tcpConnects(peer, NODE_IP, port, 2);

it('has no Node.js: the single executable runs on its own and reports the package version', async () => {
  await machine.exec(['dpkg', '-i', debIn(v1)], { timeoutMs: 120_000 });
  expect((await machine.sh('command -v node || echo none')).stdout.trim()).toBe('none');
  expect((await machine.exec(['nodewarden', '--version'])).stdout.trim()).toBe(v1.version);
  // Installed but neither enabled nor started: the operator writes policies first.
  expect((await machine.systemctl(['is-enabled', UNIT], { allowFailure: true })).stdout.trim()).toBe(
    'disabled',
  );
  expect((await unitState()).ActiveState).toBe('inactive');
  const verify = await machine.exec(
    ['systemd-analyze', 'verify', '--man=no', `/lib/systemd/system/${UNIT}`],
    {
      allowFailure: true,
    },
  );
  expect(`${verify.stdout}${verify.stderr}`.trim()).toBe('');
  expect(verify.code).toBe(0);
}, 180_000);

it('reaches active through READY=1 and enforces the policies', async () => {
  await machine.sh(`printf '%s' '${CONFIG_EDIT}' >> /etc/nodewarden/config.yaml`);
  await machine.sh(`cat > /etc/nodewarden/policies.d/web-only.yaml <<'EOF'\n${POLICY}EOF`);
  // Type=notify: `systemctl start` returns only once READY=1 arrived.
  await machine.systemctl(['enable', '--now', UNIT], { timeoutMs: 60_000 });
  const state = await unitState();
  expect(state.ActiveState, await machine.journal(UNIT)).toBe('active');
  expect(state.StatusText).toMatch(/^devices eth0; policy generation \d+ \(1 policies\)/);
  expect(await opens(OPEN_PORT)).toBe(true);
  expect(await opens(CLOSED_PORT)).toBe(false);
  // The pins are on the machine's bpffs, which the test mounted.
  expect(readdirSync(`${bpffs.dir}/nodewarden/links`).length).toBeGreaterThan(0);
  // The control socket, root only.
  const socket = await machine.exec(['stat', '-c', '%a', '/run/nodewarden/nodewarden.sock']);
  expect(socket.stdout.trim()).toBe('600');
  expect((await machine.exec(['nodewarden', 'status', '-o', 'json'])).stdout).toContain('"machine-a"');
}, 120_000);

it('applies changed policies on systemctl reload', async () => {
  const pid = (await unitState()).MainPID;
  await machine.sh(
    `sed 's/web-only/web-and-8081/; s/"${OPEN_PORT}"/"${CLOSED_PORT}"/' /etc/nodewarden/policies.d/web-only.yaml > /etc/nodewarden/policies.d/more.yaml`,
  );
  await machine.systemctl(['reload', UNIT]);
  await machine.waitFor('port 8081 to open after reload', () => opens(CLOSED_PORT));
  expect((await unitState()).MainPID).toBe(pid);
  await machine.exec(['rm', '/etc/nodewarden/policies.d/more.yaml']);
  await machine.systemctl(['reload', UNIT]);
  await machine.waitFor('port 8081 to close after reload', async () => !(await opens(CLOSED_PORT)));
}, 60_000);

it('restarts a daemon frozen with SIGSTOP when its watchdog pings stop', async () => {
  await machine.exec(['mkdir', '-p', `/run/systemd/system/${UNIT}.d`]);
  await machine.sh(`printf '[Service]\\nWatchdogSec=2s\\n' > /run/systemd/system/${UNIT}.d/watchdog.conf`);
  await machine.systemctl(['daemon-reload']);
  await machine.systemctl(['restart', UNIT], { timeoutMs: 60_000 });
  const before = await unitState();
  await machine.exec(['kill', '-STOP', before.MainPID!]);
  // Frozen: no daemon answers, and the kernel keeps enforcing.
  expect(await opens(CLOSED_PORT)).toBe(false);
  await waitActive(
    'systemd to restart the frozen daemon',
    (s) => s.MainPID !== before.MainPID && Number(s.NRestarts) > Number(before.NRestarts),
  );
  const journal = await machine.journal(UNIT);
  expect(journal).toMatch(/[Ww]atchdog timeout/);
  await machine.exec(['rm', '-r', `/run/systemd/system/${UNIT}.d`]);
  await machine.systemctl(['daemon-reload']);
  expect(await opens(OPEN_PORT)).toBe(true);
  expect(await opens(CLOSED_PORT)).toBe(false);
}, 90_000);

it('upgrades in place: conffiles stay, the daemon restarts, the firewall enforces throughout', async () => {
  const config = (await machine.exec(['cat', '/etc/nodewarden/config.yaml'])).stdout;
  expect(config).toContain('# edited by the operator');
  const before = await unitState();

  const probes = { open: [] as boolean[], closed: [] as boolean[] };
  let probing = true;
  const probeLoop = (async () => {
    while (probing) {
      const [open, closed] = await Promise.all([
        opens(OPEN_PORT),
        tcpConnects(peer, NODE_IP, CLOSED_PORT, 1),
      ]);
      probes.open.push(open);
      probes.closed.push(closed);
    }
  })();
  // Probe rounds before, during and after the upgrade (a round takes about a second).
  const rounds = async (n: number) => {
    while (probing && probes.open.length < n) await new Promise((r) => setTimeout(r, 50));
  };
  try {
    await rounds(2);
    // Plain dpkg -i with no input: a conffile prompt would fail it.
    await machine.exec(['dpkg', '-i', debIn(v2)], { timeoutMs: 120_000 });
    await waitActive('the upgraded daemon', (s) => s.MainPID !== before.MainPID);
    await rounds(probes.open.length + 1);
  } finally {
    probing = false;
    await probeLoop;
  }
  expect((await machine.exec(['nodewarden', '--version'])).stdout.trim()).toBe(v2.version);
  expect((await machine.exec(['cat', '/etc/nodewarden/config.yaml'])).stdout).toBe(config);
  expect((await machine.exec(['ls', '/etc/nodewarden/policies.d'])).stdout.trim()).toBe('web-only.yaml');
  expect(probes.open.length).toBeGreaterThan(2);
  expect(probes.open.every(Boolean), JSON.stringify(probes)).toBe(true);
  expect(probes.closed.some(Boolean), JSON.stringify(probes)).toBe(false);
  const status = JSON.parse((await machine.exec(['nodewarden', 'status', '-o', 'json'])).stdout);
  expect(status.version).toBe(v2.version);
  // The new daemon adopted the pinned links rather than creating new ones.
  expect(status.attachments.every((a: { adopted: boolean }) => a.adopted)).toBe(true);
}, 180_000);

it('purges everything: files, unit, pins and the attached programs', async () => {
  await machine.exec(['dpkg', '--purge', 'nodewarden'], { timeoutMs: 120_000 });
  expect((await unitState()).ActiveState).toBe('inactive');
  for (const path of [
    '/usr/bin/nodewarden',
    '/usr/lib/nodewarden',
    '/etc/nodewarden',
    `/lib/systemd/system/${UNIT}`,
    '/usr/lib/tmpfiles.d/nodewarden.conf',
    '/usr/share/doc/nodewarden',
    '/run/nodewarden',
  ]) {
    expect(existsSync(`${machine.root}${path}`), path).toBe(false);
  }
  expect(existsSync(`${machine.root}/etc/systemd/system/multi-user.target.wants/${UNIT}`)).toBe(false);
  expect(existsSync(`${bpffs.dir}/nodewarden`)).toBe(false);
  expect((await machine.exec(['dpkg-query', '-W', 'nodewarden'], { allowFailure: true })).code).not.toBe(0);
  // No program left on the interface: the port the policy closed is open again.
  expect(await opens(CLOSED_PORT)).toBe(true);
}, 120_000);
