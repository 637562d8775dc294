import { existsSync } from 'node:fs';
import { sweepStaleLabs } from '../lab/index.js';
import { BPF_OBJECT, CLI_BUNDLE } from '../support/paths.js';

export async function setup(): Promise<void> {
  // Privileged tests must fail loudly: a skipped firewall test looks exactly like a passing one.
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new Error(
      `integration tests need root (running as uid ${uid}): they create network namespaces, veths ` +
        'and bpffs mounts. Run them as root, e.g. `sudo npx vitest run --project integration`.',
    );
  }
  for (const artifact of [CLI_BUNDLE, BPF_OBJECT('counters')]) {
    if (!existsSync(artifact)) {
      throw new Error(`${artifact} is missing: build first with ./scripts/setup.sh (or npm run build)`);
    }
  }
  const swept = await sweepStaleLabs();
  if (swept.length > 0) {
    console.warn(
      `removed ${swept.length} lab namespace(s) left behind by dead test runs: ${swept.join(', ')}`,
    );
  }
}

export async function teardown(): Promise<void> {
  // The workers have exited by now, so namespaces of dead pids are leaks of this run.
  const leaked = await sweepStaleLabs();
  if (leaked.length > 0) {
    console.warn(
      `removed ${leaked.length} lab namespace(s) that tests failed to destroy: ${leaked.join(', ')}`,
    );
  }
}
