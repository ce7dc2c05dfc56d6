import { configDefaults, defineConfig } from 'vitest/config';

// The fast tier, the everyday loop: fakes and fake timers only. No global set-up, so no Redis, sshd
// or simulated host is started; a test here that needs one belongs in test/world or test/integration.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    exclude: [...configDefaults.exclude],
    testTimeout: 10_000,
    pool: 'forks',
  },
});
