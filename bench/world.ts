// What the benchmarks run against, all on loopback and all reused from the test world:
// a private redis-server, a real OpenSSH sshd whose sessions get the simulated `docker`,
// the fake Slack Web API, and per round a fresh simulated Engramia host (createHost +
// startEngramiaApi) with no artificial latency anywhere.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeSlack, type FakeSlack } from '../test/world/fake-slack.js';
import { startRedis, type RedisServer } from '../test/world/redis.js';
import { requireBinaries } from '../test/world/requirements.js';
import { startSshd, type SshdServer } from '../test/world/sshd.js';
import { startEngramiaApi } from '../test/world/sim/api.mjs';
import { clearFaults, createHost, readState, setApi } from '../test/world/sim/host.mjs';

export const SIM_BIN_DIR = fileURLToPath(new URL('../test/world/sim/bin', import.meta.url));
import { OPS_CHANNEL } from '../test/world/config.js';
export { ALICE, OPS_CHANNEL } from '../test/world/config.js';

type EngramiaApiServer = Awaited<ReturnType<typeof startEngramiaApi>>;

export interface SimHost {
  deployPath: string;
  apiUrl: string;
  /** What the simulated API answered, with the time of each answer (ms resolution). */
  requests: Awaited<ReturnType<typeof startEngramiaApi>>['requests'];
  close(): Promise<void>;
}

export interface BenchWorld {
  root: string;
  redis: RedisServer;
  sshd: SshdServer;
  slack: FakeSlack;
  /** known_hosts with the sshd's key only: the plain `ssh` baseline checks the host key strictly, like the bot pins it. */
  knownHostsPath: string;
  /** The host lives at one path and its API on one port for the whole run, so one bot config serves every round. */
  deployPath: string;
  apiUrl: string;
  /** Fixed for the run, so the bot's environment (read once at start-up) stays valid for every fresh host. */
  apiKey: string;
  registryToken: string;
  signingSecret: string;
  /** Replaces the host with a fresh one at 0.6.0 (new state, .env, command log) and restarts its API. */
  freshHost(): Promise<SimHost>;
  close(): Promise<void>;
}

/** Asserts the sim adds no latency of its own: no queued faults (delayMs/hang), no API delay or hang. */
function assertNoArtificialLatency(deployPath: string): void {
  const s = readState(deployPath);
  if (s.faults.length !== 0 || s.api.delayMs !== 0 || s.api.hang || s.api.down) {
    throw new Error(`bench: the simulated host has artificial latency configured: ${JSON.stringify({ faults: s.faults, api: s.api })}`);
  }
}

export async function startBenchWorld(): Promise<BenchWorld> {
  requireBinaries();
  const root = mkdtempSync(join(tmpdir(), 'chatops-bench-'));
  const deployPath = join(root, 'opt-engramia');
  const apiKey = `engk_${randomBytes(18).toString('hex')}`;
  const registryToken = `ghp_${randomBytes(18).toString('base64url')}`;
  const signingSecret = `signsecret-${randomBytes(8).toString('hex')}`;

  let redis: RedisServer | undefined;
  let sshd: SshdServer | undefined;
  let slack: FakeSlack | undefined;
  let api: EngramiaApiServer | undefined;
  let apiPort = 0;

  const closeAll = async () => {
    await Promise.allSettled([api?.close(), slack?.close(), redis?.stop(), sshd?.stop()]);
    api = undefined;
    rmSync(root, { recursive: true, force: true });
  };

  try {
    [redis, sshd, slack] = await Promise.all([
      startRedis({ appendonly: false }),
      startSshd({ binDirs: [SIM_BIN_DIR] }),
      startFakeSlack({ channels: [{ id: OPS_CHANNEL, name: 'ops', member: true }] }),
    ]);
  } catch (err) {
    await closeAll();
    throw err;
  }
  const knownHostsPath = join(root, 'known_hosts');
  writeFileSync(knownHostsPath, `${sshd.knownHostsLine}\n`, { mode: 0o600 });

  const freshHost = async (): Promise<SimHost> => {
    await api?.close();
    api = undefined;
    rmSync(deployPath, { recursive: true, force: true });
    createHost(deployPath, { runningTag: '0.6.0', apiKey, registryToken });
    // Defaults are already latency-free; say so explicitly so a changed default cannot skew the numbers.
    clearFaults(deployPath);
    setApi(deployPath, { delayMs: 0, hang: false, down: false });
    assertNoArtificialLatency(deployPath);
    // Same port every round: the bot's config names it once. Retry briefly in case the old listener lingers.
    for (let attempt = 1; ; attempt++) {
      try {
        api = await startEngramiaApi({ deployPath, port: apiPort });
        break;
      } catch (err) {
        if (attempt >= 20 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    apiPort = api.port;
    const current = api;
    return {
      deployPath,
      apiUrl: current.url,
      requests: current.requests,
      close: async () => {
        await current.close();
        if (api === current) api = undefined;
      },
    };
  };

  // The first host fixes the API port for the rest of the run.
  let first: SimHost;
  try {
    first = await freshHost();
  } catch (err) {
    await closeAll();
    throw err;
  }

  return {
    root,
    redis,
    sshd,
    slack,
    knownHostsPath,
    deployPath,
    apiUrl: first.apiUrl,
    apiKey,
    registryToken,
    signingSecret,
    freshHost,
    close: closeAll,
  };
}

/** The bot's environment for a bench run: the world's Slack, Redis and secrets, a config file and a queue prefix of its own. */
export function benchProcessEnv(w: BenchWorld, configPath: string, queuePrefix: string): NodeJS.ProcessEnv {
  return {
    SLACK_BOT_TOKEN: w.slack.botToken,
    SLACK_SIGNING_SECRET: w.signingSecret,
    SLACK_API_URL: w.slack.apiUrl,
    PORT: '0',
    ADMIN_PORT: '0',
    REDIS_URL: w.redis.url,
    CHATOPS_CONFIG: configPath,
    CHATOPS_QUEUE_PREFIX: queuePrefix,
    LOG_LEVEL: 'info',
    ENGRAMIA_PROD_API_KEY: w.apiKey,
    GHCR_TOKEN: w.registryToken,
  };
}
