import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.{ts,tsx}', 'test/**/*.test.{ts,tsx}'],
    exclude: ['test/live/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real Dask processes and key generation are CPU-heavy; two cores run them best.
    maxWorkers: 2,
    // The fake Azure CA, named in NODE_EXTRA_CA_CERTS before the workers start (they trust it).
    globalSetup: ['test/fakes/azure/global-setup.ts'],
  },
});
