/**
 * The host firewall in a lab, with the real daemon: SSH lockdown against a
 * real sshd, egress rules with a port range, CIDR except, deny precedence,
 * IPv6 with neighbour discovery, audit mode, trace, rejection of bad input
 * with the last good policy kept, and conntrack across a SIGKILL restart.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Host, type Lab } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, daemonFiles, startDaemon } from '../support/daemon.js';
import {
  pings,
  type Sshd,
  startFlows,
  startSshd,
  startTcpServer,
  tcpBanner,
  tcpConnects,
} from '../support/net.js';
import { CLI_BUNDLE } from '../support/paths.js';

const NODE = { v4: '10.80.0.1', v6: 'fd80::1' };
const MGMT = { v4: '10.80.0.10', v6: 'fd80::10' };
const OTHER = { v4: '10.80.0.20', v6: 'fd80::20' };

const SSH_LOCKDOWN = `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: ssh-lockdown
spec:
  description: SSH and ping from the management host only
  nodeSelector: {}
  ingress:
    - fromCIDR: [${MGMT.v4}/32, ${MGMT.v6}/128]
      toPorts:
        - ports: [{ port: "22", protocol: TCP }]
    - fromCIDR: [${MGMT.v4}/32]
      icmps:
        - fields: [{ type: EchoRequest, family: IPv4 }]
    - fromCIDRSet: [{ cidr: 10.80.0.0/24, except: [${OTHER.v4}/32] }]
      toPorts:
        - ports: [{ port: "8080", protocol: TCP }]
  egress:
    - toCIDR: [${MGMT.v4}/32, ${MGMT.v6}/128]
    - toCIDR: [${OTHER.v4}/32]
      toPorts:
        - ports: [{ port: "9000", endPort: 9100, protocol: TCP }]
`;

let lab: Lab;
let node: Host;
let mgmt: Host;
let other: Host;
let bpffs: TempBpffs;
let files: DaemonFiles;
let policyDir: string;
let daemon: DaemonInstance;
let sshd: Sshd;

function writePolicy(name: string, yaml: string | undefined): void {
  const path = join(policyDir, name);
  if (yaml === undefined) rmSync(path, { force: true });
  else writeFileSync(path, yaml);
}

/**
 * Runs `nodewarden monitor --count 1` and repeats `trigger` until it prints an
 * event: the monitor's subscription may start after the first trigger.
 */
async function firstMonitorEvent(trigger: () => Promise<unknown>): Promise<Record<string, unknown>> {
  const monitor = node.spawn(['node', CLI_BUNDLE, 'monitor', '--count', '1', '--run-dir', files.runDir]);
  const deadline = Date.now() + 20_000;
  while (!monitor.stdout.includes('{') && Date.now() < deadline) await trigger();
  if (!monitor.stdout.includes('{')) {
    monitor.kill('SIGKILL');
    throw new Error(`nodewarden monitor printed no event in 20 s; output: ${monitor.output}`);
  }
  await monitor.exited;
  return JSON.parse(monitor.stdout.trim().split('\n')[0]!) as Record<string, unknown>;
}

/** Reloads through the control socket, which answers once the reload is done. */
async function reload(): Promise<void> {
  await daemon.reload();
}

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  node = await lab.host('node');
  mgmt = await lab.host('mgmt');
  other = await lab.host('other');
  const lan = await lab.bridge('lan');
  await lan.attach(node, { dev: 'eth0', addrs: [`${NODE.v4}/24`, `${NODE.v6}/64`] });
  await lan.attach(mgmt, { dev: 'eth0', addrs: [`${MGMT.v4}/24`, `${MGMT.v6}/64`] });
  await lan.attach(other, { dev: 'eth0', addrs: [`${OTHER.v4}/24`, `${OTHER.v6}/64`] });
  sshd = await startSshd(node);
  await startTcpServer(node, 8080);
  await startTcpServer(other, 9050);
  await startTcpServer(other, 8081);
  await startTcpServer(mgmt, 7000);
  files = daemonFiles('');
  policyDir = join(files.dir, 'policies.d');
  mkdirSync(policyDir);
  files.writeConfig(`nodeName: fw-node\ndevices: [eth0]\npolicies:\n  directory: ${policyDir}\n`);
  daemon = await startDaemon(node, files, `${bpffs.dir}/fw`);
});

afterAll(async () => {
  await lab?.destroy();
  sshd?.destroy();
  bpffs?.destroy();
  files?.destroy();
});

describe('without a policy', () => {
  it('allows everything', async () => {
    expect(await tcpBanner(other, NODE.v4, 22)).toMatch(/^SSH-2.0-OpenSSH/);
    expect(await tcpConnects(other, NODE.v4, 8080)).toBe(true);
    expect(await pings(other, NODE.v4)).toBe(true);
  });
});

describe('SSH lockdown', () => {
  beforeAll(async () => {
    writePolicy('ssh.yaml', SSH_LOCKDOWN);
    await reload();
    expect((await daemon.status()).firewall).toMatchObject({
      policies: ['ssh-lockdown'],
      defaults: { ingress: 'deny', egress: 'deny' },
    });
  });

  it('lets the management host reach the real sshd over IPv4 and IPv6 (NDP keeps working)', async () => {
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toMatch(/^SSH-2.0-OpenSSH/);
    expect(await tcpBanner(mgmt, NODE.v6, 22)).toMatch(/^SSH-2.0-OpenSSH/);
  });

  it('refuses SSH from another host, on both families', async () => {
    expect(await tcpBanner(other, NODE.v4, 22)).toBeUndefined();
    expect(await tcpBanner(other, NODE.v6, 22)).toBeUndefined();
  });

  it('closes ports no rule opens', async () => {
    expect(await tcpConnects(mgmt, NODE.v4, 8081)).toBe(false);
  });

  it('follows the icmps rules for ping', async () => {
    expect(await pings(mgmt, NODE.v4)).toBe(true);
    expect(await pings(other, NODE.v4)).toBe(false);
    // No ICMPv6 echo rule: the IPv6 ping is dropped even from the management host.
    expect(await pings(mgmt, NODE.v6)).toBe(false);
  });

  it('applies CIDR except: the /24 may reach 8080, the excepted host may not', async () => {
    expect(await tcpConnects(mgmt, NODE.v4, 8080)).toBe(true);
    expect(await tcpConnects(other, NODE.v4, 8080)).toBe(false);
  });

  it('enforces egress: a port range towards one host, everything towards another', async () => {
    expect(await tcpConnects(node, OTHER.v4, 9050)).toBe(true);
    expect(await tcpConnects(node, OTHER.v4, 8081)).toBe(false);
    expect(await tcpConnects(node, MGMT.v4, 7000)).toBe(true);
  });

  it('reports drops on nodewarden monitor as JSON lines, and counts them in metrics', async () => {
    const event = await firstMonitorEvent(() => tcpConnects(other, NODE.v4, 22, 0.3));
    expect(event).toMatchObject({
      interface: 'eth0',
      direction: 'ingress',
      verdict: 'deny',
      reason: 'default',
      protocol: 'TCP',
      src: OTHER.v4,
      dst: NODE.v4,
      dport: 22,
      rule: 'default ingress',
    });
    expect(Date.now() - Date.parse(String(event.time))).toBeLessThan(30_000);

    await tcpBanner(mgmt, NODE.v4, 22);
    const metrics = await node.exec([
      'node',
      '-e',
      "fetch('http://127.0.0.1:9469/metrics').then(r => r.text()).then(t => process.stdout.write(t))",
    ]);
    const value = (pattern: RegExp) => Number(metrics.stdout.match(pattern)?.[1] ?? Number.NaN);
    expect(
      value(
        /nodewarden_firewall_events_total\{direction="ingress",verdict="deny",reason="default",policy=""\} (\d+)/,
      ),
    ).toBeGreaterThan(0);
    expect(
      value(
        /nodewarden_firewall_rule_packets\{policy="ssh-lockdown",rule="ssh-lockdown ingress\[0\]"\} (\d+)/,
      ),
    ).toBeGreaterThan(0);
    expect(value(/nodewarden_firewall_generation (\d+)/)).toBe((await daemon.status()).firewall.generation);
  });

  it('traces verdicts with the rule that decided, from the live maps', async () => {
    const allowed = JSON.parse(
      (
        await daemon.cli([
          'policy',
          'trace',
          '--from',
          MGMT.v4,
          '--to',
          NODE.v4,
          '--port',
          '22/tcp',
          '-o',
          'json',
        ])
      ).stdout,
    );
    expect(allowed).toMatchObject({ verdict: 'allow', decidedBy: 'ssh-lockdown ingress[0]' });
    const denied = await daemon.cli([
      'policy',
      'trace',
      '--from',
      OTHER.v4,
      '--to',
      NODE.v4,
      '--port',
      '22/tcp',
    ]);
    expect(denied.stdout).toContain(`ingress ${OTHER.v4} -> ${NODE.v4} 22/tcp: DENY`);
    expect(denied.stdout).toContain('decided by: default deny: no rule allows it (ingress)');
    const egress = JSON.parse(
      (
        await daemon.cli([
          'policy',
          'trace',
          '--egress',
          '--from',
          NODE.v4,
          '--to',
          OTHER.v4,
          '--port',
          '9100/tcp',
          '-o',
          'json',
        ])
      ).stdout,
    );
    expect(egress).toMatchObject({ verdict: 'allow', decidedBy: 'ssh-lockdown egress[1]' });
  });
});

describe('deny rules, audit mode and bad input', () => {
  afterAll(async () => {
    writePolicy('deny.yaml', undefined);
    writePolicy('audit.yaml', undefined);
    writePolicy('broken.yaml', undefined);
    await reload();
  });

  it('a deny rule beats an allow rule', async () => {
    writePolicy(
      'deny.yaml',
      `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: no-ssh-from-mgmt
spec:
  nodeSelector: {}
  ingressDeny:
    - fromCIDR: [${MGMT.v4}/32]
      toPorts:
        - ports: [{ port: "20", endPort: 25, protocol: TCP }]
`,
    );
    await reload();
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toBeUndefined();
    // IPv6 is not denied.
    expect(await tcpBanner(mgmt, NODE.v6, 22)).toMatch(/^SSH-2.0/);
    const trace = await daemon.cli([
      'policy',
      'trace',
      '--from',
      MGMT.v4,
      '--to',
      NODE.v4,
      '--port',
      '22/tcp',
    ]);
    expect(trace.stdout).toContain('DENY');
    expect(trace.stdout).toContain('no-ssh-from-mgmt ingressDeny[0]');
    writePolicy('deny.yaml', undefined);
    await reload();
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toMatch(/^SSH-2.0/);
  });

  it('an audit policy reports what it would drop and drops nothing', async () => {
    writePolicy(
      'audit.yaml',
      `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: audit-deny-8080
  annotations:
    nodewarden.io/audit: "true"
spec:
  nodeSelector: {}
  ingressDeny:
    - fromCIDR: [${MGMT.v4}/32]
      toPorts:
        - ports: [{ port: "8080", protocol: TCP }]
`,
    );
    await reload();
    expect(await tcpConnects(mgmt, NODE.v4, 8080)).toBe(true);
    const trace = JSON.parse(
      (
        await daemon.cli([
          'policy',
          'trace',
          '--from',
          MGMT.v4,
          '--to',
          NODE.v4,
          '--port',
          '8080/tcp',
          '-o',
          'json',
        ])
      ).stdout,
    );
    expect(trace).toMatchObject({ verdict: 'audit', decidedBy: 'audit-deny-8080 ingressDeny[0]' });
    expect(await firstMonitorEvent(() => tcpConnects(mgmt, NODE.v4, 8080, 0.3))).toMatchObject({
      verdict: 'audit',
      reason: 'rule',
      policy: 'audit-deny-8080',
      rule: 'audit-deny-8080 ingressDeny[0]',
      src: MGMT.v4,
      dport: 8080,
    });
  });

  it('rejects an invalid policy file whole and keeps the last good policy in force', async () => {
    const before = (await daemon.status()).firewall.generation;
    writePolicy(
      'broken.yaml',
      SSH_LOCKDOWN.replace('name: ssh-lockdown', 'name: broken').replace(
        'fromCIDR: [10.80.0.10/32]',
        'fromCIDR: [10.80.0.999/32]',
      ),
    );
    await reload();
    const status = await daemon.status();
    expect(status.firewall.generation).toBe(before);
    expect(status.firewall.lastError?.message).toContain('broken.yaml');
    expect(status.lastReload.ok).toBe(false);
    expect(await tcpBanner(other, NODE.v4, 22)).toBeUndefined();
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toMatch(/^SSH-2.0/);
  });
});

describe('commit-confirmed apply', () => {
  // The same policy with SSH opened to the other host instead of the management host.
  const SSH_SWAPPED = SSH_LOCKDOWN.replace(
    `fromCIDR: [${MGMT.v4}/32, ${MGMT.v6}/128]`,
    `fromCIDR: [${OTHER.v4}/32]`,
  );
  let candidate: string;

  beforeAll(() => {
    candidate = join(files.dir, 'ssh.yaml');
    writeFileSync(candidate, SSH_SWAPPED);
  });

  const sleepUntil = (iso: string, extraMs: number) =>
    new Promise((r) => setTimeout(r, Date.parse(iso) - Date.now() + extraMs));

  // Deadlines leave room for a busy CI machine: each check before the deadline starts a CLI process.
  it('rolls back an unconfirmed apply at the deadline, and access comes back', async () => {
    const applied = JSON.parse(
      (await daemon.cli(['policy', 'apply', '--confirm-within', '8s', candidate, '-o', 'json'])).stdout,
    );
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toBeUndefined();
    expect(await tcpBanner(other, NODE.v4, 22)).toMatch(/^SSH-2.0/);
    expect((await daemon.status()).firewall.pendingApply).toEqual({
      deadline: applied.deadline,
      files: ['ssh.yaml'],
    });
    await sleepUntil(applied.deadline, 500);
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toMatch(/^SSH-2.0/);
    expect(await tcpBanner(other, NODE.v4, 22)).toBeUndefined();
    expect((await daemon.status()).firewall.pendingApply).toBeUndefined();
    await daemon.process.waitForOutput(/not confirmed in time; rolling back/);
  });

  it('keeps a confirmed apply past its deadline', async () => {
    const applied = JSON.parse(
      (await daemon.cli(['policy', 'apply', '--confirm-within', '2s', candidate, '-o', 'json'])).stdout,
    );
    expect((await daemon.cli(['policy', 'confirm'])).stdout).toContain('confirmed');
    await sleepUntil(applied.deadline, 500);
    expect(await tcpBanner(other, NODE.v4, 22)).toMatch(/^SSH-2.0/);
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toBeUndefined();
    // Nothing is pending any more.
    expect((await daemon.cli(['policy', 'confirm'], true)).code).toBe(1);
    writePolicy('ssh.yaml', SSH_LOCKDOWN);
    await reload();
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toMatch(/^SSH-2.0/);
  });

  it('rolls back even when the daemon is killed and restarted before, or only after, the deadline', async () => {
    let applied = JSON.parse(
      (await daemon.cli(['policy', 'apply', '--confirm-within', '10s', candidate, '-o', 'json'])).stdout,
    );
    daemon.process.kill('SIGKILL');
    await daemon.process.exited;
    daemon = await startDaemon(node, files, `${bpffs.dir}/fw`);
    expect((await daemon.status()).firewall.pendingApply?.deadline).toBe(applied.deadline);
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toBeUndefined();
    await sleepUntil(applied.deadline, 500);
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toMatch(/^SSH-2.0/);

    applied = JSON.parse(
      (await daemon.cli(['policy', 'apply', '--confirm-within', '1s', candidate, '-o', 'json'])).stdout,
    );
    daemon.process.kill('SIGKILL');
    await daemon.process.exited;
    await sleepUntil(applied.deadline, 500);
    // While no daemon runs, the pinned (unconfirmed) policy is still what the kernel enforces.
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toBeUndefined();
    daemon = await startDaemon(node, files, `${bpffs.dir}/fw`);
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toMatch(/^SSH-2.0/);
    expect((await daemon.status()).firewall.pendingApply).toBeUndefined();
  });

  it('rejects an invalid apply and changes nothing', async () => {
    const bad = join(files.dir, 'bad.yaml');
    writeFileSync(
      bad,
      'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: bad\nspec:\n  nodeSelector: {}\n  ingress:\n    - toFQDNs: [{ matchName: example.com }]\n',
    );
    const result = await daemon.cli(['policy', 'apply', bad], true);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${policyDir}/bad.yaml:8:`);
    expect(result.stderr).toContain('toFQDNs');
    expect(await tcpBanner(mgmt, NODE.v4, 22)).toMatch(/^SSH-2.0/);
    expect((await daemon.status()).firewall.pendingApply).toBeUndefined();
  });
});

describe('conntrack across a daemon restart', () => {
  it('keeps 100 established flows exchanging data through SIGKILL and restart, with zero failures', async () => {
    // Ingress is default-deny: only conntrack lets the replies from mgmt back in.
    const flows = startFlows(node, MGMT.v4, 7000, 100, 6000);
    await flows.waitForOutput(/all connected/);
    await new Promise((r) => setTimeout(r, 500));
    daemon.process.kill('SIGKILL');
    await daemon.process.exited;
    await new Promise((r) => setTimeout(r, 1000));
    daemon = await startDaemon(node, files, `${bpffs.dir}/fw`);
    const status = await daemon.status();
    expect(status.attachments.every((a) => a.adopted)).toBe(true);
    const match = await flows.waitForOutput(/\{"ok".*\}/, 15_000);
    const result = JSON.parse(match[0]) as { ok: number; failed: number; errors: string[] };
    expect(result.failed).toBe(0);
    expect(result.errors).toEqual([]);
    // 100 flows × ~55 round trips each.
    expect(result.ok).toBeGreaterThan(100 * 40);
    // And a new connection from a host without a rule is still refused.
    expect(await tcpBanner(other, NODE.v4, 22)).toBeUndefined();
  });
});
