/**
 * healthCheckNodePort servers at 1000 served ports, with the real daemon in a
 * lab namespace and wrk in another:
 *
 * 1. time from daemon start until all 1000 ports serve;
 * 2. requests per second and latency (wrk, keep-alive) on a 200 port and on a
 *    503 port, against the reference measured in the same run: a bare Node
 *    HTTP server with a constant JSON answer (the floor of this runtime);
 * 3. how long an endpoint change takes to show: rewrite config.yaml, ask for
 *    a reload over the control socket and poll the port with curl meanwhile
 *    until the answer flips (the issue asks for less than 1 s; each poll is a
 *    curl process, some 10-50 ms of the figure).
 *
 * Results go to bench/results/services-latest.json. Run as root: `npm run bench:services`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, type Host } from '../test/lab/index.js';
import { mountTempBpffs } from '../test/support/bpffs.js';
import { daemonFiles, startDaemon } from '../test/support/daemon.js';
import { median } from './report.js';
import { wrk as runWrk } from './wrk.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(REPO, 'bench', 'results', 'services-latest.json');
const PORTS = 1000;
const FIRST_PORT = 31000;
const REFERENCE_PORT = 30999;
const WRK_SECONDS = 8;
const NODE = '10.92.0.1';

const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);

function config(endpointsOfFirst: number): string {
  const items = Array.from({ length: PORTS }, (_, i) => {
    const endpoints = i === 0 ? endpointsOfFirst : i % 2 === 0 ? 1 : 0;
    return `    - { name: svc-${i}, externalTrafficPolicy: Local, healthCheckNodePort: ${FIRST_PORT + i}, localReadyEndpoints: ${endpoints} }`;
  });
  return `nodeName: bench\ndevices: [eth0]\nmetrics:\n  listen: ""\nservices:\n  items:\n${items.join('\n')}\n`;
}

async function wrk(client: Host, url: string) {
  const { rps, p50ms, p90ms, p99ms } = await runWrk(client, url, WRK_SECONDS);
  return { rps: Math.round(rps), p50ms, p90ms, p99ms };
}

async function status(client: Host, url: string): Promise<number> {
  const r = await client.exec(
    ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', url],
    {
      allowFailure: true,
    },
  );
  return Number(r.stdout);
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const load = loadavg();
  const bpffs = mountTempBpffs();
  const lab = await createLab();
  const files = daemonFiles(config(1));
  try {
    const node = await lab.host('node');
    const client = await lab.host('client');
    await lab.link(node, client, {
      aDev: 'eth0',
      bDev: 'eth0',
      aAddrs: [`${NODE}/24`],
      bAddrs: ['10.92.0.2/24'],
    });
    const reference = node.spawn([
      'node',
      '-e',
      `const body = JSON.stringify({ service: { namespace: 'default', name: 'ref' }, localEndpoints: 1, serviceProxyHealthy: true }, null, '\\t') + '\\n';
       require('node:http').createServer((req, res) => { req.resume(); res.writeHead(200, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', 'X-Load-Balancing-Endpoint-Weight': '1' }).end(body); }).listen(${REFERENCE_PORT}, '::', () => console.log('ready'));`,
    ]);
    await reference.waitForOutput(/ready/);

    const t0 = performance.now();
    const daemon = await startDaemon(node, files, `${bpffs.dir}/svc`);
    let serving = 0;
    while (performance.now() - t0 < 60_000) {
      serving = (await daemon.status()).services!.healthCheckNodePorts.filter(
        (p) => p.state === 'serving',
      ).length;
      if (serving === PORTS) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const startupMs = Math.round(performance.now() - t0);
    if (serving !== PORTS) throw new Error(`only ${serving} of ${PORTS} ports serve after 60 s`);
    log(`${PORTS} ports serving ${startupMs} ms after the daemon started`);

    const rounds = {
      ok: [] as Awaited<ReturnType<typeof wrk>>[],
      unavailable: [] as Awaited<ReturnType<typeof wrk>>[],
      reference: [] as Awaited<ReturnType<typeof wrk>>[],
    };
    for (let round = 0; round < 2; round++) {
      rounds.ok.push(await wrk(client, `http://${NODE}:${FIRST_PORT + 2}/`));
      rounds.unavailable.push(await wrk(client, `http://${NODE}:${FIRST_PORT + 1}/`));
      rounds.reference.push(await wrk(client, `http://${NODE}:${REFERENCE_PORT}/`));
      log(
        `round ${round + 1}: 200 port ${rounds.ok.at(-1)!.rps} req/s, 503 port ${rounds.unavailable.at(-1)!.rps} req/s, reference ${rounds.reference.at(-1)!.rps} req/s`,
      );
    }

    const flips: number[] = [];
    for (let i = 0; i < 6; i++) {
      const endpoints = i % 2 === 0 ? 0 : 1;
      const want = endpoints > 0 ? 200 : 503;
      files.writeConfig(config(endpoints));
      const start = performance.now();
      // Poll while the reload runs: what counts is when a load balancer would see the change.
      const reloaded = daemon.reload();
      while ((await status(client, `http://${NODE}:${FIRST_PORT}/`)) !== want) {
        if (performance.now() - start > 10_000) throw new Error('the answer did not flip in 10 s');
      }
      flips.push(Math.round(performance.now() - start));
      await reloaded;
    }
    log(`endpoint change visible after ${median(flips)} ms (median of ${flips.length})`);

    const best = (runs: Awaited<ReturnType<typeof wrk>>[]) => runs.reduce((a, b) => (b.rps > a.rps ? b : a));
    const result = {
      benchmark: 'bench/services.ts',
      command: 'npm run bench:services',
      startedAt,
      machine: {
        kernel: release(),
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        node: process.version,
        loadAvgAtStart: load,
      },
      ports: PORTS,
      wrk: `-t2 -c32 -d${WRK_SECONDS}s, best of 2`,
      startupMs,
      healthPort200: best(rounds.ok),
      healthPort503: best(rounds.unavailable),
      referenceBareNodeServer: best(rounds.reference),
      endpointChangeVisibleMs: { median: median(flips), all: flips, target: '< 1000' },
    };
    mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await lab.destroy();
    bpffs.destroy();
    files.destroy();
  }
}

await main();
