/** What every benchmark result records about the machine it ran on, load included. */
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
