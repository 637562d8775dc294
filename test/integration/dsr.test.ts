/**
 * DSR end to end with the real daemon on three nodes: a client behind a
 * router reaches a VIP that the router sends to the load-balancer node, whose
 * XDP program hands each flow to one of two backends in IPIP/IP6IP6. Backend 1
 * serves the VIP on the host (hostNetwork); backend 2 passes it to a pod
 * through a kube-proxy-like DNAT. Checked: correct answers over TCP and UDP,
 * IPv4 and IPv6; the backends see the client's address; replies never cross
 * the load-balancer node; NodePorts keep working; removing a backend keeps the
 * flows of the remaining one, and new flows spread again when it returns.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab, type LabProcess } from '../lab/index.js';
import { mountTempBpffs, type TempBpffs } from '../support/bpffs.js';
import { type DaemonFiles, type DaemonInstance, startDaemon } from '../support/daemon.js';
import {
  ADDR,
  type Answer,
  buildDsrTopology,
  captureOnPort,
  type DsrTopology,
  dsrConfig,
  getAnswer,
  NODE_PORT,
  startDsrDaemons,
} from '../support/dsr-topology.js';

let lab: Lab;
let topo: DsrTopology;
let bpffs: TempBpffs;
const files: DaemonFiles[] = [];
let lbDaemon: DaemonInstance;
let lbFiles: DaemonFiles;
const daemons: DaemonInstance[] = [];

beforeAll(async () => {
  bpffs = mountTempBpffs();
  lab = await createLab();
  topo = await buildDsrTopology(lab);
  const started = await startDsrDaemons(topo, bpffs.dir, files);
  daemons.push(...started.map((d) => d.daemon));
  lbDaemon = started[0]!.daemon;
  lbFiles = started[0]!.files;
}, 120_000);

afterAll(async () => {
  await lab?.destroy();
  topo?.destroy();
  bpffs?.destroy();
  for (const f of files) f.destroy();
});

const httpGet = (url: string) => getAnswer(topo.client, url);

async function udpAsk(address: string, port = 53): Promise<Answer & { from: string }> {
  const script = `
const s = require('node:dgram').createSocket('${address.includes(':') ? 'udp6' : 'udp4'}');
const t = setTimeout(() => { console.log('timeout'); process.exit(1); }, 3000);
s.on('message', (m, r) => { clearTimeout(t); console.log(JSON.stringify({ ...JSON.parse(m), from: r.address })); s.close(); });
s.send('hello', ${port}, '${address}');`;
  const r = await topo.client.exec(['node', '-e', script]);
  return JSON.parse(r.stdout) as Answer & { from: string };
}

/** Packets tcpdump saw on the switch port towards the load-balancer node. */
async function captureAtLb(filter: string, during: () => Promise<void>): Promise<number> {
  return captureOnPort(topo.lan, topo.lbPort, filter, during);
}

describe('DSR', () => {
  it('every node runs the DSR programs; the backends hold the VIPs as local routes', async () => {
    const lb = await lbDaemon.status();
    expect(lb.attachments.filter((a) => a.program.startsWith('nw_dsr'))).toEqual([
      expect.objectContaining({ hook: 'tc-ingress', program: 'nw_dsr_decap', state: 'attached' }),
      expect.objectContaining({ hook: 'xdp', program: 'nw_dsr_xdp', state: 'attached' }),
    ]);
    expect(lb.services!.dsr!.tables.map((t) => t.service)).toEqual(['default/web/IPv4', 'default/web/IPv6']);
    expect(lb.services!.dsr!.localVips).toEqual([]);
    expect(lb.services!.dsr!.warnings).toEqual([]);
    const be1 = await daemons[1]!.status();
    expect(be1.services!.dsr!.localVips).toEqual([ADDR.vip.v4, ADDR.vip.v6]);
    expect(be1.firewall.systemAllows).toContain(
      'ingress DSR traffic from load-balancer nodes (IPIP, IP6IP6)',
    );
    const routes = await topo.be1.exec(['ip', 'route', 'show', 'table', 'local', 'proto', '78']);
    expect(routes.stdout).toContain(`local ${ADDR.vip.v4} dev lo`);
    const text = await lbDaemon.cli(['status']);
    expect(text.stdout).toMatch(/dsr: +4 VIP ports, 2 Maglev tables/);
  });

  it('answers over TCP from both backends (host and pod), which see the client address, IPv4 and IPv6', async () => {
    const answers: Answer[] = [];
    for (let i = 0; i < 16; i++) answers.push(await httpGet(`http://${ADDR.vip.v4}/`));
    expect(new Set(answers.map((a) => a.backend))).toEqual(new Set(['be1', 'be2-pod']));
    for (const a of answers) expect(a.client).toBe(ADDR.client.v4);
    expect(answers.find((a) => a.backend === 'be1')!.local).toBe(ADDR.vip.v4);

    const answers6: Answer[] = [];
    for (let i = 0; i < 16; i++) answers6.push(await httpGet(`http://[${ADDR.vip.v6}]/`));
    expect(new Set(answers6.map((a) => a.backend))).toEqual(new Set(['be1', 'be2-pod']));
    for (const a of answers6) expect(a.client).toBe(ADDR.client.v6);
    const stats = (await lbDaemon.status()).services!.dsr!.stats!;
    expect(Number(stats.forwarded)).toBeGreaterThan(0);
    const be1Stats = (await daemons[1]!.status()).services!.dsr!.stats!;
    expect(Number(be1Stats.decapsulated)).toBeGreaterThan(0);
  });

  it('answers over UDP, with the VIP as the source of the reply', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const a = await udpAsk(ADDR.vip.v4);
      expect(a.from).toBe(ADDR.vip.v4);
      expect(a.client).toBe(ADDR.client.v4);
      seen.add(a.backend);
    }
    expect(seen).toEqual(new Set(['be1', 'be2-pod']));
    const a6 = await udpAsk(ADDR.vip.v6);
    expect(a6.from).toBe(ADDR.vip.v6);
  });

  it('replies do not cross the load-balancer node', async () => {
    const vipFilter = `src host ${ADDR.vip.v4} or src host ${ADDR.vip.v6}`;
    let encapsulated = 0;
    const replies = await captureAtLb(vipFilter, async () => {
      encapsulated = await captureAtLb('ip proto 4 or ip6 proto 41', async () => {
        for (let i = 0; i < 6; i++) await httpGet(`http://${ADDR.vip.v4}/`);
        for (let i = 0; i < 3; i++) await udpAsk(ADDR.vip.v4);
      });
    });
    expect(encapsulated).toBeGreaterThanOrEqual(6 * 3 + 3);
    expect(replies).toBe(0);
  });

  it('NodePorts keep working next to DSR: on a backend (to the pod and on the host) and on the load balancer', async () => {
    expect((await httpGet(`http://${ADDR.be2.v4}:${NODE_PORT}/`)).backend).toBe('be2-pod');
    expect((await httpGet(`http://${ADDR.be1.v4}:${NODE_PORT}/`)).backend).toBe('be1');
    expect((await httpGet(`http://${ADDR.lb.v4}:${NODE_PORT}/`)).backend).toBe('lb');
  });

  it('removing a backend keeps the flows of the other; new flows spread again when it returns', async () => {
    const script = join(topo.scriptDir, 'flows.cjs');
    writeFileSync(script, FLOWS_CLIENT);
    const trigger = join(topo.scriptDir, 'next');
    const flows: LabProcess = topo.client.spawn(['node', script, ADDR.vip.v4, '24', trigger]);
    const round = async (n: number) => {
      const m = await flows.waitForOutput(new RegExp(`ROUND${n} (.*)`), 15_000);
      return JSON.parse(m[1]!) as string[];
    };
    const first = await round(1);
    expect(new Set(first)).toEqual(new Set(['be1', 'be2-pod']));

    lbFiles.writeConfig(dsrConfig('lb', [ADDR.be1.v4, ADDR.be1.v6]));
    expect((await lbDaemon.reload()).ok).toBe(true);
    writeFileSync(`${trigger}1`, '');
    const second = await round(2);
    // be1's connections carry on; be2's now reach be1, which resets them.
    second.forEach((backend, i) => {
      expect(backend).toBe(first[i] === 'be1' ? 'be1' : 'error');
    });
    for (let i = 0; i < 8; i++) expect((await httpGet(`http://${ADDR.vip.v4}/`)).backend).toBe('be1');

    lbFiles.writeConfig(dsrConfig('lb'));
    expect((await lbDaemon.reload()).ok).toBe(true);
    writeFileSync(`${trigger}2`, '');
    const third = await round(3);
    second.forEach((backend, i) => {
      if (backend === 'be1') expect(third[i]).toBe('be1');
    });
    const fresh = new Set<string>();
    for (let i = 0; i < 16; i++) fresh.add((await httpGet(`http://${ADDR.vip.v4}/`)).backend);
    expect(fresh).toEqual(new Set(['be1', 'be2-pod']));
    await flows.exited;
  });

  it('a SIGKILLed load-balancer daemon leaves DSR forwarding; the next one adopts links, maps and table slots', async () => {
    const before = await lbDaemon.status();
    lbDaemon.process.kill('SIGKILL');
    await lbDaemon.process.exited;
    const whileDown = new Set<string>();
    for (let i = 0; i < 12; i++) whileDown.add((await httpGet(`http://${ADDR.vip.v4}/`)).backend);
    expect(whileDown).toEqual(new Set(['be1', 'be2-pod']));
    lbDaemon = await startDaemon(topo.lb, lbFiles, `${bpffs.dir}/lb`);
    const after = await lbDaemon.status();
    expect(after.attachments.find((a) => a.program === 'nw_dsr_xdp')).toMatchObject({
      state: 'attached',
      adopted: true,
    });
    expect(after.services!.dsr!.tables).toEqual(before.services!.dsr!.tables);
    // The kernel's counters kept counting while no daemon ran.
    expect(Number(after.services!.dsr!.stats!.forwarded)).toBeGreaterThan(
      Number(before.services!.dsr!.stats!.forwarded),
    );
    expect((await httpGet(`http://[${ADDR.vip.v6}]/`)).client).toBe(ADDR.client.v6);
  });

  it('cleanup on a backend removes its programs, maps and local VIP routes', async () => {
    const be1 = daemons[1]!;
    be1.process.kill('SIGTERM');
    await be1.process.exited;
    const out = JSON.parse((await be1.cli(['cleanup', '-o', 'json'])).stdout) as { removed: string[] };
    expect(out.removed).toContain(`local route ${ADDR.vip.v4} (DSR VIP)`);
    expect(out.removed).toContain('link xdp-eth0');
    const routes = await topo.be1.exec(['ip', 'route', 'show', 'table', 'local', 'proto', '78']);
    expect(routes.stdout).toBe('');
  });
});

/** Opens N keep-alive connections, asks on each, and asks again on each after a trigger file appears. */
const FLOWS_CLIENT = `
const net = require('node:net');
const fs = require('node:fs');
const [vip, count, trigger] = process.argv.slice(2);
function ask(sock) {
  return new Promise((resolve) => {
    let buf = '';
    const done = (v) => { clearTimeout(timer); sock.off('data', onData); resolve(v); };
    const timer = setTimeout(() => done('error'), 2000);
    const onData = (d) => {
      buf += d;
      const head = buf.indexOf('\\r\\n\\r\\n');
      const len = /content-length: (\\d+)/i.exec(buf);
      if (head >= 0 && len && buf.length >= head + 4 + Number(len[1]))
        done(JSON.parse(buf.slice(head + 4, head + 4 + Number(len[1]))).backend);
    };
    sock.on('data', onData);
    sock.once('error', () => done('error'));
    sock.once('close', () => done('error'));
    sock.write('GET / HTTP/1.1\\r\\nHost: vip\\r\\n\\r\\n');
  });
}
const waitFor = (file) => new Promise((r) => { const t = setInterval(() => { if (fs.existsSync(file)) { clearInterval(t); r(); } }, 50); });
(async () => {
  const socks = await Promise.all(Array.from({ length: Number(count) }, () => new Promise((r) => {
    const s = net.connect(80, vip, () => r(s));
    s.on('error', () => {});
  })));
  const r1 = []; for (const s of socks) r1.push(await ask(s));
  console.log('ROUND1 ' + JSON.stringify(r1));
  await waitFor(trigger + '1');
  const r2 = []; for (const s of socks) r2.push(s.destroyed ? 'error' : await ask(s));
  console.log('ROUND2 ' + JSON.stringify(r2));
  await waitFor(trigger + '2');
  const r3 = []; for (const s of socks) r3.push(s.destroyed ? 'error' : await ask(s));
  console.log('ROUND3 ' + JSON.stringify(r3));
  process.exit(0);
})();
`;
