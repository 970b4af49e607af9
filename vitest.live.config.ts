import { defineConfig } from 'vitest/config';

// Live tests create real cloud resources and bill for them: `npm run test:live`, with credentials
// and DCP_LIVE_<PROVIDER>=1. They run one at a time.
export default defineConfig({
  test: {
    include: ['test/live/**/*.test.ts'],
    testTimeout: 20 * 60_000,
    hookTimeout: 20 * 60_000,
    maxWorkers: 1,
  },
});
