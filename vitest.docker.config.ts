import { defineConfig } from 'vitest/config';

// The real-host tier (`npm run test:docker`): a real Docker Engine, Compose v2, registry,
// PostgreSQL and alembic, started by test/real/global-setup.ts. Needs root and
// scripts/real-host/install.sh; it fails (never skips) when those are missing.
export default defineConfig({
  test: {
    include: ['test/real/**/*.test.ts'],
    globalSetup: ['test/real/global-setup.ts'],
    // Image pulls, container starts and migrations on a 2-core machine.
    testTimeout: 180_000,
    // The first run on a machine makes the Debian root filesystem (debootstrap, a few minutes).
    hookTimeout: 900_000,
    pool: 'forks',
    // One real host per run: its test files share it, so they run one after the other.
    fileParallelism: false,
  },
});
