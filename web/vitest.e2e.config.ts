import { defineConfig } from 'vitest/config'

// End-to-end tests: the real t3000 binary in demo mode driven through Debian's Chromium
// (playwright-core, never a downloaded browser). One file at a time: each starts its own server.
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
})
