// Benchmark: the standard deploy (`deploy 0.6.1 --no-maintenance`, fresh host at 0.6.0 each round) three
// ways, interleaved round by round (one warm-up round each, not counted):
//
//   bot       the real bot (slash command → final card), Slack's rate limits on, as in the deploy bench;
//   ssh       one plain `ssh … bash -s` session running the runbook's commands (the deploy bench's baseline);
//   ansible   the same host commands as an Ansible playbook against the same loopback sshd: one
//             `ansible.builtin.command` task per command, generated from the bot's own command builders
//             (src/runbooks/commands.ts), `ansible.builtin.uri` for the three HTTP checks (run on the host,
//             as the ssh baseline's curl is), inventory 127.0.0.1:PORT with the bench's key, host key checking
//             on against a known_hosts holding only the sshd's key. Ansible's own defaults otherwise (SSH
//             ControlPersist multiplexing), plus `pipelining = True` and `gather_facts: false`, the usual
//             tuning, which only makes the baseline faster. Each round starts without a live ControlMaster
//             (torn down after every run), as each ssh round starts without a connection.
//
// Needs `ansible-playbook` (Debian: `sudo apt-get install -y ansible`, or the smaller `ansible-core`);
// without it the ansible series is skipped and says so. Nothing is ever estimated in its place.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { EnvironmentConfig } from '../src/config/schema.js';
import { loadConfig } from '../src/config/load.js';
import * as cmd from '../src/runbooks/commands.js';
import type { RemoteCommand } from '../src/ssh/quote.js';
import { findBinary } from '../test/world/requirements.js';
import {
  TO_VERSION,
  BENCH_JOB_ID,
  COMMAND_TEXT,
  assertDeployed,
  baselineRound,
  benchConfig,
  botRound,
  deployCommands,
  hostCommands,
  operatorScript,
  pickHttpClient,
  probeCommands,
  stats,
  type Stats,
} from './deploy.js';
import { commandLabel, installTracing, now } from './trace.js';
import { startInProcessBot } from './util.js';
import { benchProcessEnv, type BenchWorld } from './world.js';

export const ANSIBLE_INSTALL_HINT = 'sudo apt-get install -y ansible   (Debian/Ubuntu; `ansible-core` is enough; or `pipx install ansible-core`)';

export type AnsibleSeries = 'bot' | 'ssh' | 'ansible';

export interface AnsibleRound {
  ms: number;
  hostCommands: string[];
}

export interface AnsibleBenchResult {
  command: string;
  rounds: number;
  warmupRounds: number;
  /** Why the ansible series did not run (ansible-playbook missing); absent when it ran. */
  skipped?: string;
  ansibleVersion?: string;
  series: Record<AnsibleSeries, number[]>;
  stats: Record<AnsibleSeries, Stats>;
  /** Ansible's fixed cost: `ansible-playbook` of an empty local play, per round. */
  ansibleStartup?: Stats;
  /** Per round: bot / ssh and bot / ansible, each from the same round. */
  roundRatios: { botVsSsh: number[]; botVsAnsible: number[] };
  /** The host commands (docker, as the sim recorded them) of the last ansible round match the bot's as multisets. */
  identicalHostCommands?: boolean;
  hostCommandDiff?: { botOnly: string[]; ansibleOnly: string[] };
  playbook?: string;
}

// ------------------------------------------------------------------------------------------------
// The playbook, from the bot's command builders

type Task = Record<string, unknown>;

function commandTask(name: string, c: RemoteCommand, extra: Task = {}): Task {
  return {
    name,
    'ansible.builtin.command': { argv: [...c.argv], ...(c.cwd ? { chdir: c.cwd } : {}) },
    ...(c.env && Object.keys(c.env).length ? { environment: { ...c.env } } : {}),
    ...extra,
  };
}

/** The runbook as a playbook: the same commands, in the same order, as the ssh baseline's script. */
export function deployPlaybook(env: EnvironmentConfig): Task[] {
  const probe = (suffix: string): Task[] => probeCommands(env).map((c) => commandTask(`${commandLabel(c)}${suffix}`, c, { changed_when: false }));
  const run = (c: RemoteCommand): Task => commandTask(commandLabel(c), c);
  const login = cmd.registryLogin(env, BENCH_JOB_ID);
  const base = env.apiBaseUrl.replace(/\/+$/, '');
  const uri = (path: string, auth: boolean, check?: string): Task => ({
    name: `GET ${path}`,
    'ansible.builtin.uri': { url: `${base}${path}`, return_content: true, ...(auth ? { headers: { Authorization: 'Bearer {{ api_key }}' } } : {}) },
    register: 'answer',
    ...(check ? { failed_when: check } : {}),
  });
  const tasks: Task[] = [
    ...probe(''),
    {
      name: commandLabel(login),
      'ansible.builtin.command': { argv: [...login.argv], chdir: login.cwd, stdin: '{{ registry_token }}' },
      no_log: true,
    },
    ...deployCommands(env).map(run),
    uri('/v1/version', false, `answer.json.app_version != '${TO_VERSION}'`),
    uri('/v1/health', true),
    uri('/v1/health/deep', true, "answer.json.status != 'ok'"),
    ...probe(' (verify)'),
  ];
  return [{ name: `Deploy ${TO_VERSION} (the bot's runbook as a playbook)`, hosts: 'engramia', gather_facts: false, tasks }];
}

interface AnsibleSetup {
  dir: string;
  env: NodeJS.ProcessEnv;
  playbookPath: string;
  emptyPlaybookPath: string;
  cpDir: string;
}

function setupAnsible(w: BenchWorld, env: EnvironmentConfig): AnsibleSetup {
  const dir = join(w.root, 'ansible');
  const cpDir = join(dir, 'cp');
  mkdirSync(join(dir, 'local-tmp'), { recursive: true });
  mkdirSync(cpDir, { recursive: true });
  const ssh = w.sshd;
  writeFileSync(
    join(dir, 'inventory.ini'),
    [
      '[engramia]',
      `target ansible_host=127.0.0.1 ansible_port=${ssh.port} ansible_user=${ssh.username} ansible_ssh_private_key_file=${ssh.privateKeyPath} ansible_python_interpreter=/usr/bin/python3`,
      '',
      '[engramia:vars]',
      // This machine's ~/.ssh/config must not change what is measured; host keys are checked against the bench's file only.
      `ansible_ssh_common_args='-F /dev/null -o UserKnownHostsFile=${w.knownHostsPath} -o StrictHostKeyChecking=yes -o BatchMode=yes'`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'ansible.cfg'),
    [
      '[defaults]',
      `inventory = ${join(dir, 'inventory.ini')}`,
      'host_key_checking = True',
      'retry_files_enabled = False',
      `local_tmp = ${join(dir, 'local-tmp')}`,
      'nocolor = True',
      '',
      '[ssh_connection]',
      'pipelining = True',
      `control_path_dir = ${cpDir}`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'vars.json'), JSON.stringify({ registry_token: w.registryToken, api_key: w.apiKey }), { mode: 0o600 });
  const playbookPath = join(dir, 'deploy.yml');
  writeFileSync(playbookPath, stringify(deployPlaybook(env)));
  const emptyPlaybookPath = join(dir, 'empty.yml');
  writeFileSync(emptyPlaybookPath, stringify([{ name: 'nothing', hosts: 'localhost', connection: 'local', gather_facts: false, tasks: [] }]));
  return {
    dir,
    cpDir,
    playbookPath,
    emptyPlaybookPath,
    env: { ...process.env, ANSIBLE_CONFIG: join(dir, 'ansible.cfg'), ANSIBLE_HOME: join(dir, 'home'), ANSIBLE_LOCALHOST_WARNING: 'False', ANSIBLE_INVENTORY_UNPARSED_WARNING: 'False' },
  };
}

function runPlaybook(a: AnsibleSetup, playbook: string, extra: string[] = []): Promise<{ ms: number; code: number | null; out: string }> {
  const t0 = now();
  return new Promise((resolve, reject) => {
    const child = spawn('ansible-playbook', [playbook, ...extra], { env: a.env, cwd: a.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ ms: now() - t0, code, out }));
  });
}

/** Ends the ControlMaster a run left behind (ControlPersist), so the next round opens its connection anew. */
function tearDownMasters(a: AnsibleSetup): void {
  for (const sock of readdirSync(a.cpDir)) {
    spawnSync('ssh', ['-F', '/dev/null', '-o', `ControlPath=${join(a.cpDir, sock)}`, '-O', 'exit', 'target'], { stdio: 'ignore', timeout: 5000 });
    rmSync(join(a.cpDir, sock), { force: true });
  }
}

async function ansibleRound(w: BenchWorld, a: AnsibleSetup): Promise<AnsibleRound> {
  const host = await w.freshHost();
  const r = await runPlaybook(a, a.playbookPath, ['-e', `@${join(a.dir, 'vars.json')}`]);
  tearDownMasters(a);
  if (r.code !== 0) throw new Error(`ansible: ansible-playbook exited with ${r.code}\n${r.out.slice(-4000)}`);
  assertDeployed(host.deployPath, 'ansible');
  return { ms: r.ms, hostCommands: hostCommands(host.deployPath) };
}

// ------------------------------------------------------------------------------------------------

export async function runAnsibleBench(w: BenchWorld, opts: { rounds?: number; progress?: (line: string) => void } = {}): Promise<AnsibleBenchResult> {
  const rounds = opts.rounds ?? 3;
  const progress = opts.progress ?? (() => undefined);
  installTracing();
  const configPath = join(w.root, 'chatops-ansible.yml');
  writeFileSync(configPath, benchConfig(w));
  const env = loadConfig(configPath).environments.production!;
  const script = operatorScript(env, { registryToken: w.registryToken, apiKey: w.apiKey, http: pickHttpClient() });

  let skipped: string | undefined;
  let ansibleVersion: string | undefined;
  if (!findBinary('ansible-playbook')) {
    skipped = `ansible-playbook not found on PATH: the ansible series is skipped. Install it with: ${ANSIBLE_INSTALL_HINT}`;
    progress(`ansible: ${skipped}`);
  } else {
    ansibleVersion = spawnSync('ansible-playbook', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim();
  }
  const a = skipped ? undefined : setupAnsible(w, env);
  const series: AnsibleBenchResult['series'] = { bot: [], ssh: [], ansible: [] };
  const startup: number[] = [];
  const roundRatios: AnsibleBenchResult['roundRatios'] = { botVsSsh: [], botVsAnsible: [] };
  let lastBot: string[] = [];
  let lastAnsible: string[] = [];
  const logs: string[] = [];
  const { bot, url } = await startInProcessBot(configPath, benchProcessEnv(w, configPath, 'bench-ansible'), { logs });
  const names: AnsibleSeries[] = a ? ['bot', 'ssh', 'ansible'] : ['bot', 'ssh'];
  try {
    const one = async (name: AnsibleSeries, label: string): Promise<number> => {
      let ms: number;
      if (name === 'bot') {
        const r = await botRound(w, bot, url, true, logs);
        ms = r.ms;
        lastBot = r.hostCommands;
      } else if (name === 'ssh') {
        ms = (await baselineRound(w, script)).ms;
      } else {
        const r = await ansibleRound(w, a!);
        ms = r.ms;
        lastAnsible = r.hostCommands;
      }
      progress(`${label} ${name.padEnd(8)} ${ms.toFixed(0).padStart(6)} ms`);
      return ms;
    };
    for (const name of names) await one(name, 'warm-up   ');
    for (let i = 0; i < rounds; i++) {
      const order = names.map((_, k) => names[(k + i) % names.length]!);
      const got: Partial<Record<AnsibleSeries, number>> = {};
      for (const name of order) got[name] = await one(name, `round ${i + 1}/${rounds}`);
      for (const name of names) series[name].push(got[name]!);
      roundRatios.botVsSsh.push(got.bot! / got.ssh!);
      if (a) {
        roundRatios.botVsAnsible.push(got.bot! / got.ansible!);
        const s = await runPlaybook(a, a.emptyPlaybookPath);
        if (s.code === 0) startup.push(s.ms);
      }
    }
  } finally {
    await bot.close();
  }

  const diff = (x: string[], y: string[]) => {
    const rest = [...y];
    return x.filter((v) => {
      const i = rest.indexOf(v);
      if (i === -1) return true;
      rest.splice(i, 1);
      return false;
    });
  };
  const botOnly = a ? diff(lastBot, lastAnsible) : [];
  const ansibleOnly = a ? diff(lastAnsible, lastBot) : [];
  return {
    command: COMMAND_TEXT,
    rounds,
    warmupRounds: 1,
    ...(skipped ? { skipped } : {}),
    ...(ansibleVersion ? { ansibleVersion } : {}),
    series,
    stats: { bot: stats(series.bot), ssh: stats(series.ssh), ansible: stats(series.ansible) },
    ...(startup.length ? { ansibleStartup: stats(startup) } : {}),
    roundRatios,
    ...(a ? { identicalHostCommands: botOnly.length === 0 && ansibleOnly.length === 0 } : {}),
    ...(botOnly.length || ansibleOnly.length ? { hostCommandDiff: { botOnly, ansibleOnly } } : {}),
    ...(a ? { playbook: stringify(deployPlaybook(env)) } : {}),
  };
}
