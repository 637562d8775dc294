/** What the benchmarks' results share: the machine they ran on, and the median they report. */
import { cpus, loadavg, release } from 'node:os';

export function machineFacts() {
  return {
    kernel: release(),
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    node: process.version,
    loadAvgAtStart: loadavg(),
  };
}

/** The median (the upper one for an even count), as every benchmark reports it. */
export const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[values.length >> 1]!;
