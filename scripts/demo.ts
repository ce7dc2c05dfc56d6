// `npm run demo`: everything a newcomer needs on one machine, then the console adapter against it.
// A private redis-server (unless REDIS_URL answers), the simulated Engramia host from the test world
// behind a real loopback sshd, a generated config, and the console in this same process, so Ctrl-C,
// Ctrl-D and `exit` all end in one place that stops and removes everything it started.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { readEnvOptions } from '../src/config/env.js';
import { consoleMain } from '../src/console/index.js';
import { configYaml } from '../test/world/config.js';
import { startRedis, type RedisServer } from '../test/world/redis.js';
import { findBinary, findSshd, INSTALL_COMMAND } from '../test/world/requirements.js';
import { startSshd, type SshdServer } from '../test/world/sshd.js';
import { startEngramiaApi } from '../test/world/sim/api.mjs';
import { createHost, SIM_BIN_DIR } from '../test/world/sim/host.mjs';

const ALICE = 'U01ALICE';
const BOB = 'U02BOB';
const CAROL = 'U03CAROL';

const say = (line = '') => process.stdout.write(`${line}\n`);

/** Only a REDIS_URL someone set on purpose is used; a Redis that merely happens to run on 6379 is left alone. */
async function reachable(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function missingBinaries(needRedis: boolean): string[] {
  const missing: string[] = [];
  if (needRedis && !findBinary('redis-server')) missing.push('redis-server (package redis-server)');
  if (!findSshd()) missing.push('/usr/sbin/sshd (package openssh-server)');
  if (!findBinary('ssh-keygen')) missing.push('ssh-keygen (package openssh-client)');
  return missing;
}

async function main(): Promise<number> {
  const started = Date.now();
  let redis: RedisServer | undefined;
  let sshd: SshdServer | undefined;
  let api: Awaited<ReturnType<typeof startEngramiaApi>> | undefined;
  const root = mkdtempSync(join(tmpdir(), 'engramia-demo-'));

  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await Promise.allSettled([api?.close(), redis?.stop(), sshd?.stop()]);
    for (const dir of [root, redis?.dir, sshd?.dir]) if (dir) rmSync(dir, { recursive: true, force: true });
  };
  // Until the console takes over Ctrl-C, an interrupted start-up still cleans up.
  const onEarlySignal = () => {
    say('\nInterrupted: stopping what was started.');
    void cleanup().then(() => process.exit(130));
  };
  process.on('SIGINT', onEarlySignal);
  process.on('SIGTERM', onEarlySignal);

  try {
    const wanted = process.env.REDIS_URL?.trim();
    const useGiven = wanted ? await reachable(wanted) : false;
    const missing = missingBinaries(!useGiven);
    if (missing.length > 0) {
      process.stderr.write(`npm run demo needs these programs, which are not installed:\n${missing.map((m) => `  - ${m}\n`).join('')}Install them with:\n  ${INSTALL_COMMAND}\n`);
      return 1;
    }
    say('engramia-chatops demo: starting a simulated Engramia host behind a loopback sshd, and the console against it.');
    if (wanted && !useGiven) say(`  REDIS_URL ${wanted} does not answer: starting a private redis-server instead.`);

    [redis, sshd] = await Promise.all([useGiven ? Promise.resolve(undefined) : startRedis({ appendonly: false }), startSshd({ binDirs: [SIM_BIN_DIR] })]);
    const redisUrl = redis?.url ?? wanted!;
    const host = createHost(join(root, 'opt-engramia'));
    api = await startEngramiaApi({ deployPath: host.deployPath });

    const configPath = join(root, 'chatops.yml');
    writeFileSync(
      configPath,
      configYaml({
        access: { deployers: [ALICE, BOB], approvers: [ALICE, BOB, CAROL], admins: [CAROL] },
        // One console is one person: on a four-eyes environment `/as` could not approve its own jobs, and the demo
        // has nobody else. Its gates are answered with `/as` instead.
        fourEyes: false,
        deployPath: host.deployPath,
        apiUrl: api.url,
        sshd,
      }),
    );

    say(`  redis   ${redisUrl}${redis ? ` (private redis-server 127.0.0.1:${redis.port})` : ' (from REDIS_URL)'}`);
    say(`  sshd    127.0.0.1:${sshd.port} (config ${join(sshd.dir, 'sshd_config')}), logging in as ${sshd.username}`);
    say(`  host    ${host.deployPath}: Engramia 0.6.0 runs; 0.6.1 (one database migration) and 0.5.9 are in the registry`);
    say(`  api     ${api.url}`);
    say(`  config  ${configPath}`);
    say(`  ready in ${((Date.now() - started) / 1000).toFixed(1)} s. Users: ${ALICE} (deployer, approver), ${BOB} (deployer, approver), ${CAROL} (approver, admin).`);
    say(`  Try: /engramia deploy 0.6.1, then /as ${BOB} and type the number of "Enable maintenance".`);
    say();

    const processEnv: NodeJS.ProcessEnv = { ...process.env };
    // Console mode is chosen by the absence of Slack tokens.
    for (const key of ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN']) delete processEnv[key];
    Object.assign(processEnv, {
      REDIS_URL: redisUrl,
      CHATOPS_CONFIG: configPath,
      // A queue of its own, even on a shared Redis, so nothing else takes the demo's jobs.
      CHATOPS_QUEUE_PREFIX: `demo-${randomBytes(4).toString('hex')}`,
      ENGRAMIA_PROD_API_KEY: host.apiKey,
      GHCR_TOKEN: host.registryToken,
    });

    process.off('SIGINT', onEarlySignal);
    process.off('SIGTERM', onEarlySignal);
    const args = process.argv.slice(2);
    return await consoleMain(readEnvOptions(processEnv), 'all', args, processEnv);
  } catch (err) {
    process.stderr.write(`npm run demo: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`npm run demo: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
