import { defineConfig } from 'vitest/config';

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
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // e2e scenarios start their own processes and ports; run files one at a time.
          fileParallelism: false,
          ...serverBacked,
        },
      },
    ],
  },
});
