import { defineConfig } from 'vitest/config';

// Two projects: unit tests need no privileges and run in parallel; integration
// tests need root, create network namespaces and bpffs mounts, and run one file
// at a time so that two labs never compete for the two CPUs of a CI machine.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Forks, not threads: the daemon code sets process.umask, which workers may not.
          pool: 'forks',
          // Unit files run in parallel on two CPUs: the fuzz and scale tests need more than
          // vitest's 5 s default when the machine is busy. Time is never what they assert.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
