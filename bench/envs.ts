// Several environments for the benchmarks that need more than the world's one `production`: each
// environment its own simulated host (deploy dir, state, command log), its own simulated API on a
// port of its own and, by default, its own sshd (so the bot holds one SSH connection per host, as
// with real hosts), all on loopback. The bot's config for them is generated here; test/world/config.ts
// (one environment) is left as it is.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd, type SshdServer } from '../test/world/sshd.js';
import { startEngramiaApi } from '../test/world/sim/api.mjs';
import { clearFaults, createHost, readCommandLog, setApi } from '../test/world/sim/host.mjs';
import { environmentYaml } from '../test/world/config.js';
import { ALICE, OPS_CHANNEL, SIM_BIN_DIR, type BenchWorld } from './world.js';

type EngramiaApiServer = Awaited<ReturnType<typeof startEngramiaApi>>;

export interface BenchEnv {
  name: string;
  deployPath: string;
  apiUrl: string;
  api: EngramiaApiServer;
  sshd: SshdServer;
}

export interface MultiEnv {
  envs: BenchEnv[];
  /** The bot's config: one environment per host, the first one the default; commands from `allowedChannels` (default the ops channel). */
  configYaml(envExtra?: Record<string, string | number | boolean>, opts?: { allowedChannels?: string[] }): string;
  /**
   * Every host anew at 0.6.0 (fresh state and command log), and its API restarted on the same port: the
   * simulated API keeps its rate-limit counters (60 a minute per path, as Engramia's) in memory, keyed by a
   * container id that a fresh host repeats, and several runs a minute would otherwise meet that limit.
   */
  freshHosts(): Promise<void>;
  close(): Promise<void>;
}

export const envName = (i: number) => `env${String(i + 1).padStart(2, '0')}`;

async function startApiOn(deployPath: string, port: number): Promise<EngramiaApiServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEngramiaApi({ deployPath, port });
    } catch (err) {
      if (attempt >= 20 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function resetHost(w: BenchWorld, deployPath: string): void {
  rmSync(deployPath, { recursive: true, force: true });
  mkdirSync(deployPath, { recursive: true });
  createHost(deployPath, { runningTag: '0.6.0', apiKey: w.apiKey, registryToken: w.registryToken });
  clearFaults(deployPath);
  setApi(deployPath, { delayMs: 0, hang: false, down: false });
}

/**
 * `count` environments. `binDir` replaces the simulated host's bin directory on the sshds' PATH (see light-host.ts). `sshdPerEnv: false` puts them all behind the world's sshd, in which case the
 * bot shares one SSH connection between them (its pool keys connections by host, port and key).
 */
export async function startMultiEnv(w: BenchWorld, count: number, opts: { sshdPerEnv?: boolean; dirName?: string; binDir?: string } = {}): Promise<MultiEnv> {
  const base = join(w.root, opts.dirName ?? `multi-${count}`);
  const perEnv = opts.sshdPerEnv ?? true;
  const envs: BenchEnv[] = [];
  const apis: EngramiaApiServer[] = [];
  const sshds: SshdServer[] = [];
  const close = async () => {
    await Promise.allSettled([...apis.map((a) => a.close()), ...sshds.map((s) => s.stop())]);
    rmSync(base, { recursive: true, force: true });
  };
  try {
    const own = perEnv ? await Promise.all(Array.from({ length: count }, () => startSshd({ binDirs: [opts.binDir ?? SIM_BIN_DIR] }).then((s) => (sshds.push(s), s)))) : [];
    for (let i = 0; i < count; i++) {
      const deployPath = join(base, envName(i));
      resetHost(w, deployPath);
      const api = await startEngramiaApi({ deployPath });
      apis.push(api);
      envs.push({ name: envName(i), deployPath, apiUrl: api.url, api, sshd: perEnv ? own[i]! : w.sshd });
    }
  } catch (err) {
    await close();
    throw err;
  }

  const configYaml = (envExtra: Record<string, string | number | boolean> = {}, opts: { allowedChannels?: string[] } = {}) =>
    `slack:
  allowedChannels: [${(opts.allowedChannels ?? [OPS_CHANNEL]).join(', ')}]
access:
  deployers: [${ALICE}]
  approvers: [U02BOB]
  admins: [U03CAROL]
environments:
${envs.map((e, i) => environmentYaml(e.name, { default: i === 0, sshd: e.sshd, deployPath: e.deployPath, apiUrl: e.apiUrl, envExtra })).join('')}`;

  return {
    envs,
    configYaml,
    freshHosts: async () => {
      await Promise.all(
        envs.map(async (e) => {
          const old = e.api;
          await old.close();
          resetHost(w, e.deployPath);
          e.api = await startApiOn(e.deployPath, old.port);
          apis[apis.indexOf(old)] = e.api;
        }),
      );
    },
    close,
  };
}

/** What ran on an environment's host since the last fresh host: finished docker commands, and API answers. */
export function hostActivity(e: BenchEnv): { docker: string[]; api: string[] } {
  return {
    docker: readCommandLog(e.deployPath)
      .filter((r) => r.phase === 'end')
      .map((r) => r.argv.join(' ')),
    api: e.api.requests.map((r) => `${r.method} ${r.path} ${r.status}`),
  };
}
