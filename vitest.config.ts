import { defineConfig } from 'vitest/config';

// Two projects: `unit` (beside the code, memory/local stores, no network) and `integration`
// (test/, against a real Dovecot and a real S3 endpoint started once per run by globalSetup).
export default defineConfig({
  resolve: { conditions: ['@mailark/source'] },
  ssr: { resolve: { conditions: ['@mailark/source'] } },
  test: {
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['packages/*/src/**/*.test.ts'], testTimeout: 30_000 },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
