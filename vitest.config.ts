import { configDefaults, defineConfig } from 'vitest/config';

const serverBacked = {
  globalSetup: ['test/harness/global-setup.ts'],
  setupFiles: ['test/harness/on-failure.ts'],
};

export default defineConfig({
  test: {
    reporters: ['default', './test/harness/summary-reporter.ts'],
    projects: [
      {
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 10_000 },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          ...serverBacked,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'e2e/node/**'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // e2e scenarios start their own processes and ports; run files one at a time, after the
          // unit and integration projects (group 0) and before the node (group 2).
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          ...serverBacked,
        },
      },
      {
        test: {
          // A real single-node cluster (test/harness/node): started by the test file itself and
          // run after every other project, alone, so its daemons never overlap other tests.
          name: 'node',
          include: ['e2e/node/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
