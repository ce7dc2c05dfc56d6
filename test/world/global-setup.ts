// vitest globalSetup: one shared redis and one shared sshd for the whole run, handed to test
// files through `inject()` (see provided.d.ts). Tests that crash/restart servers start their own.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startRedis, type RedisServer } from './redis.js';
import { requireBinaries } from './requirements.js';
import { startSshd, type SshdServer } from './sshd.js';

// Where the simulated `docker` shim lives; it goes first on the SSH user's PATH.
const SIM_BIN_DIR = fileURLToPath(new URL('./sim/bin', import.meta.url));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  requireBinaries();
  if (!existsSync(path.join(SIM_BIN_DIR, 'docker'))) {
    // Sessions would otherwise fall through to whatever real `docker` the machine has on PATH.
    throw new Error(`[world] ${SIM_BIN_DIR}/docker is missing: SSH sessions would not get the simulated docker`);
  }

  let redis: RedisServer | undefined;
  let sshd: SshdServer | undefined;
  const teardown = async (): Promise<void> => {
    await Promise.allSettled([redis?.stop(), sshd?.stop()]);
  };

  // Start both in parallel; if one fails, stop the other (vitest doesn't call the teardown of a
  // setup that threw) and report every failure, not just the first.
  const results = await Promise.allSettled([
    startRedis({ appendonly: false }).then((r) => (redis = r)),
    startSshd({ binDirs: [SIM_BIN_DIR] }).then((s) => (sshd = s)),
  ]);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0 || !redis || !sshd) {
    await teardown();
    if (failures.length === 1) throw failures[0];
    // Reporters tend to print only an AggregateError's own message, so fold the causes into it.
    const messages = failures.map((f) => (f instanceof Error ? f.message : String(f)));
    throw new Error(`test world setup failed:\n\n${messages.join('\n\n')}`);
  }

  project.provide('redisUrl', redis.url);
  project.provide('sshd', {
    host: sshd.host,
    port: sshd.port,
    username: sshd.username,
    privateKeyPath: sshd.privateKeyPath,
    hostKeySha256: sshd.hostKeySha256,
    home: sshd.home,
  });

  return teardown;
}
