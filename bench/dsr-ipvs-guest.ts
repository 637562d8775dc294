/**
 * The guest's half of `npm run bench:dsr-ipvs` (bench/dsr-ipvs.ts boots the
 * guest and runs this with tsx): first every BPF object of bpf/out is loaded
 * (the verifier of the guest's kernel judges each program), then the DSR lab
 * runs nodewarden's DSR, IPVS in DR mode and the kernel's ECMP DR side by side
 * (bench/dsr-e2e.ts). Writes its JSON to the path given as the only argument.
 */
import { writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { loadEveryObject } from '../test/support/bpf-objects.js';
import { ecmpReference, endToEnd, ipvsReference, ipvsUnavailable, log, WRK_SECONDS } from './dsr-e2e.js';

const ROUNDS = Number(process.env.NODEWARDEN_BENCH_ROUNDS ?? 7);

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: dsr-ipvs-guest.ts RESULT.json');
  const bpfObjects = loadEveryObject();
  for (const o of bpfObjects) log(`${o.object}: ${o.whole}`);
  const e2e = await endToEnd(ROUNDS, async (lb) => {
    const why = await ipvsUnavailable(lb);
    if (why) throw new Error(`IPVS does not work in the guest: ${why}`);
    return [ipvsReference('192.0.2.81', 'mh'), ecmpReference('192.0.2.82')];
  });
  const result = {
    guest: { kernel: release(), cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
    bpfObjects,
    endToEnd: { wrk: `-t2 -c32 -d${WRK_SECONDS}s`, rounds: ROUNDS, ...e2e },
  };
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
}

await main();
