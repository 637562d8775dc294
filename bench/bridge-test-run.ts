/**
 * Cost of BPF_PROG_TEST_RUN through the bridge:
 * - kernel ns per run with repeat=1e6 (the figure the firewall benchmarks build on);
 * - wall-clock cost of one repeat=1 call from JS, which adds the koffi call and
 *   the syscall to the program's own cost.
 * Run as root: `npm run bench:bridge`.
 */
import { performance } from 'node:perf_hooks';
import { BpfObject, testRun } from '../bpf/index.js';
import { bpfObjectPath } from '../bpf/paths.js';

const REPEAT = 1_000_000;
const CALLS = 20_000;

const object = BpfObject.load(bpfObjectPath('counters'));
const rows: string[] = [];
try {
  for (const name of ['nw_xdp_count', 'nw_tc_count_ingress']) {
    const program = object.program(name);
    const packet = Buffer.alloc(64);
    // Take the median of 5 kernel-timed runs to shrug off a noisy neighbour.
    const kernel = Array.from(
      { length: 5 },
      () => testRun(program, { packet, repeat: REPEAT }).durationNs,
    ).sort((a, b) => a - b)[2]!;
    for (let i = 0; i < 1000; i++) testRun(program, { packet });
    const start = performance.now();
    for (let i = 0; i < CALLS; i++) testRun(program, { packet });
    const perCallNs = ((performance.now() - start) * 1e6) / CALLS;
    rows.push(
      `${name.padEnd(22)} kernel ${String(kernel).padStart(4)} ns/run (repeat=1e6)   one call from JS ${perCallNs.toFixed(0).padStart(6)} ns`,
    );
  }
} finally {
  object.close();
}
process.stdout.write(`BPF_PROG_TEST_RUN through the bridge (64-byte packet)\n${rows.join('\n')}\n`);
