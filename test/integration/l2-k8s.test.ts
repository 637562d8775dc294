/**
 * L2 announcements with `source: kubernetes`: three real daemons and one
 * fixture API server process on a shared bridge, and a client. The IP comes
 * from a LoadBalancer Service's ingress, the interfaces from a
 * CiliumL2AnnouncementPolicy, the owner from heartbeat rendezvous hashing.
 * The client resolves the IP to the owner's MAC and reaches a TCP service
 * there; when the owner's link goes down (a node powered off), another node
 * takes the IP over after the lease expiry and its gratuitous ARP moves the
 * client's neighbour entry without the client asking. Measured with the
 * default timing (renew 750 ms, expiry 2 s) and a tuned one (300 ms, 1 s).
 * With the default timing, an L2Advertisement that chooses a labelled
 * IPAddressPool by ipAddressPoolSelectors, and a CiliumL2AnnouncementPolicy
 * with externalIPs, announce their IPs too (and nothing they do not select).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEARTBEAT_DEFAULTS } from '../../daemon/config/schema.js';
import { startDaemon } from '../support/daemon.js';
import { waitFor } from '../support/l2.js';
import {
  clientNeighbours,
  clusterApi,
  clusterL2Status,
  L2_CLUSTER_PORT,
  type L2Cluster,
  L2_CLUSTER_NODES as NODES,
  proberMoves,
  settledOwners,
  startL2Cluster,
  startTcpProber,
  stopL2Cluster,
  tcpAnswer,
} from '../support/l2-cluster.js';

const VIP = '10.79.1.1';
const PORT = L2_CLUSTER_PORT;
/** In the labelled MetalLB pool; 10.79.0.61 is in no pool. */
const POOLED_IP = '10.79.0.60';
const UNPOOLED_IP = '10.79.0.61';
/** spec.externalIPs of a Service whose ingress IP (EXT_INGRESS_IP) its externalIPs-only policy leaves out. */
const EXTERNAL_IP = '10.79.0.70';
const EXT_INGRESS_IP = '10.79.0.71';

/** The node announcing the IP, once exactly one node does and the others name it as owner. */
async function announcer(c: L2Cluster, among: readonly string[] = NODES, ip = VIP): Promise<string> {
  return (await settledOwners(c, among, 15_000, [ip])).get(ip)!;
}

async function neighbourMac(c: L2Cluster): Promise<string | undefined> {
  return (await clientNeighbours(c)).get(VIP);
}

async function arpingMacs(c: L2Cluster, ip = VIP): Promise<Set<string>> {
  const { stdout } = await c.client.exec(['arping', '-c', '2', '-w', '3', '-I', 'eth0', ip], {
    allowFailure: true,
  });
  return new Set([...stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((m) => m[1]!.toLowerCase()));
}

/**
 * Owner's link down (node powered off): ms until the client's entry moves by GARP, and
 * until a TCP connect reaches the new owner (a prober connecting every 20 ms).
 */
async function linkDownFailover(c: L2Cluster, owner: string, survivors: readonly string[]) {
  const prober = startTcpProber(c, [VIP]);
  await prober.waitForOutput(new RegExp(` ${owner}\n`));
  await c.hosts.get(owner)!.ip(['link', 'set', 'eth0', 'down']);
  const since = performance.timeOrigin + performance.now();
  const start = performance.now();
  const moved = await waitFor(
    'the neighbour entry to move',
    async () => {
      const mac = await neighbourMac(c);
      return mac && mac !== c.macs.get(owner) ? mac : undefined;
    },
    15_000,
  );
  const neighbourMs = performance.now() - start;
  const reached = await waitFor(
    'TCP via the new owner',
    async () => proberMoves(prober.stdout, since, owner).get(VIP),
    5000,
  );
  prober.kill('SIGKILL');
  const next = survivors.find((n) => c.macs.get(n) === moved);
  return { next, answer: reached.node, neighbourMs, tcpMs: reached.at - since };
}

/** Objects for the pool-selector and externalIPs case (seeded into a running cluster). */
const selectionObjects = [
  {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { namespace: 'metallb-system', name: 'lan-pool', labels: { announce: 'l2' } },
    spec: { addresses: [`${POOLED_IP}/32`] },
  },
  {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'L2Advertisement',
    metadata: { namespace: 'metallb-system', name: 'by-label' },
    spec: { ipAddressPoolSelectors: [{ matchLabels: { announce: 'l2' } }], interfaces: ['eth0'] },
  },
  {
    apiVersion: 'cilium.io/v2alpha1',
    kind: 'CiliumL2AnnouncementPolicy',
    metadata: { name: 'external' },
    spec: { serviceSelector: { matchLabels: { app: 'ext' } }, interfaces: ['^eth0$'], externalIPs: true },
  },
  ...[
    ['pooled', POOLED_IP],
    ['unpooled', UNPOOLED_IP],
  ].map(([name, ip]) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'default', name, labels: { app: name } },
    spec: { type: 'LoadBalancer', ports: [{ port: PORT, protocol: 'TCP' }] },
    status: { loadBalancer: { ingress: [{ ip }] } },
  })),
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'default', name: 'ext', labels: { app: 'ext' } },
    spec: { type: 'LoadBalancer', externalIPs: [EXTERNAL_IP], ports: [{ port: PORT, protocol: 'TCP' }] },
    status: { loadBalancer: { ingress: [{ ip: EXT_INGRESS_IP }] } },
  },
];

function describeCluster(
  label: string,
  renewMs: number,
  expiryS: number,
  budgetMs: number,
  cases: { selection: boolean; restart: boolean },
) {
  describe(`L2 from the Kubernetes API (${label}: renew ${renewMs} ms, expiry ${expiryS} s)`, () => {
    let c: L2Cluster | undefined;
    beforeAll(async () => {
      c = await startL2Cluster({ renewIntervalMs: renewMs, expirySeconds: expiryS });
    }, 90_000);
    afterAll(async () => stopL2Cluster(c), 30_000);

    it("resolves the Service's ingress IP to the rendezvous owner's MAC and reaches its TCP service", async () => {
      const cl = c!;
      const owner = await announcer(cl);
      const status = await clusterL2Status(cl, owner);
      expect(status.ips).toEqual([
        expect.objectContaining({ ip: VIP, state: 'announced', owner, localRoute: true }),
      ]);
      expect(await arpingMacs(cl)).toEqual(new Set([cl.macs.get(owner)]));
      // arping does not touch the neighbour table; a TCP connect resolves through it.
      expect(await tcpAnswer(cl)).toBe(owner);
      expect(await neighbourMac(cl)).toBe(cl.macs.get(owner));
      const text = (await cl.daemons.get(NODES.find((n) => n !== owner)!)!.cli(['l2', 'status'])).stdout;
      expect(text).toContain(`owner ${owner}`);
    });

    // Only in the first cluster: the selection does not depend on the timing.
    if (cases.selection)
      it('announces a labelled pool’s IP by ipAddressPoolSelectors and a spec.externalIP by externalIPs: true, nothing else', async () => {
        const cl = c!;
        await clusterApi(cl, 'POST', '/fixture/seed', selectionObjects);
        for (const ip of [POOLED_IP, EXTERNAL_IP]) {
          const owner = await announcer(cl, NODES, ip);
          expect(await arpingMacs(cl, ip)).toEqual(new Set([cl.macs.get(owner)]));
          expect(await tcpAnswer(cl, ip)).toBe(owner);
        }
        // Outside every chosen pool, and an ingress IP under a policy without loadBalancerIPs: no node has them.
        for (const n of NODES) {
          const ips = (await clusterL2Status(cl, n)).ips.map((i) => i.ip);
          expect(ips).not.toContain(UNPOOLED_IP);
          expect(ips).not.toContain(EXT_INGRESS_IP);
        }
        const unanswered = await Promise.all([UNPOOLED_IP, EXT_INGRESS_IP].map((ip) => arpingMacs(cl, ip)));
        expect(unanswered).toEqual([new Set(), new Set()]);
      });

    // A restart keeps answering only while the killed daemon's lease still holds (at least
    // expiry − renew: 1 s by default, 0.7 s tuned); a longer one is a failover. The
    // tuned lease is shorter than a daemon start on a loaded machine, so only the default runs.
    if (cases.restart)
      it('keeps answering ARP with no gap while the owner’s daemon is SIGKILLed and restarted', async () => {
        const cl = c!;
        const owner = await announcer(cl);
        const count = 200;
        // Single-probe arpings ~20 ms apart (arping's -i takes whole seconds).
        const loop = `for i in $(seq ${count}); do arping -c 1 -w 1 -I eth0 ${VIP} >/dev/null && echo ok || echo miss; sleep 0.02; done`;
        const probes = cl.client.spawn(['sh', '-c', loop]);
        await probes.waitForOutput(/ok/);
        const old = cl.daemons.get(owner)!;
        old.process.kill('SIGKILL');
        await old.process.exited;
        // The entries' deadline is at most `expiry` ahead: the new daemon must renew them before it passes.
        const restarted = await startDaemon(
          cl.hosts.get(owner)!,
          cl.files.get(owner)!,
          `${cl.bpffs.dir}/${owner}`,
        );
        cl.daemons.set(owner, restarted);
        const restartedAt = probes.stdout.split('\n').filter(Boolean).length;
        await probes.exited;
        const results = probes.stdout.split('\n').filter(Boolean);
        console.log(
          `restart (${label}): ${results.filter((r) => r === 'ok').length}/${results.length} ARP probes answered; daemon back after probe ${restartedAt}`,
        );
        expect(results).toHaveLength(count);
        expect(restartedAt).toBeLessThan(count);
        expect(results.filter((r) => r !== 'ok')).toEqual([]);
        expect(await announcer(cl)).toBe(owner);
        expect(await arpingMacs(cl)).toEqual(new Set([cl.macs.get(owner)]));
      });

    it('moves to another node when the owner’s link goes down, by gratuitous ARP', async () => {
      const cl = c!;
      const owner = await announcer(cl);
      expect(await tcpAnswer(cl)).toBe(owner);
      const survivors = NODES.filter((n) => n !== owner);
      const result = await linkDownFailover(cl, owner, survivors);
      expect(result.next).toBeDefined();
      expect(result.answer).toBe(result.next);
      expect(await announcer(cl, survivors)).toBe(result.next);
      console.log(
        `failover (${label}, renew ${renewMs} ms, expiry ${expiryS} s): neighbour moved after ${Math.round(result.neighbourMs)} ms, TCP reached ${result.next} after ${Math.round(result.tcpMs)} ms`,
      );
      expect(result.tcpMs).toBeLessThan(budgetMs);
    });

    it('a SIGKILLed owner is replaced after the expiry, and its pinned responder falls silent', async () => {
      const cl = c!;
      // The node whose link is down (previous test) is out: two nodes remain.
      const up = [] as string[];
      for (const n of NODES) {
        const { stdout } = await cl.hosts.get(n)!.ip(['-j', 'link', 'show', 'eth0']);
        if (!(JSON.parse(stdout) as { flags: string[] }[])[0]!.flags.includes('UP')) continue;
        up.push(n);
      }
      expect(up).toHaveLength(2);
      const owner = await announcer(cl, up);
      const last = up.find((n) => n !== owner)!;
      cl.daemons.get(owner)!.process.kill('SIGKILL');
      const start = performance.now();
      await waitFor(
        'the neighbour entry to move to the last node',
        async () => ((await neighbourMac(cl)) === cl.macs.get(last) ? true : undefined),
        15_000,
      );
      const movedMs = performance.now() - start;
      expect(await tcpAnswer(cl)).toBe(last);
      // The killed daemon's entries carry a deadline at most `expiry` after its last renewal
      // of them, which came before the kill: past that, only the new owner answers.
      const silentAfter = start + expiryS * 1000 + 200;
      await new Promise((r) => setTimeout(r, Math.max(0, silentAfter - performance.now())));
      const replies = await arpingMacs(cl);
      expect(replies).toEqual(new Set([cl.macs.get(last)]));
      console.log(
        `SIGKILL (${label}): neighbour moved to ${last} after ${Math.round(movedMs)} ms; ARP replies now from ${[...replies].join(', ')} (killed ${owner} = ${cl.macs.get(owner)})`,
      );
    });
  });
}

describeCluster('defaults', HEARTBEAT_DEFAULTS.renewIntervalMs, HEARTBEAT_DEFAULTS.expirySeconds, 6000, {
  selection: true,
  restart: true,
});
describeCluster('tuned', 300, 1, 2000, { selection: false, restart: false });
