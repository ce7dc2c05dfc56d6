// The benchmarks' own helpers that decide what a number means: the light host the fan-out series use (its
// answer must be the simulated docker's, recorded as the simulated docker records it) and the summary
// table's met / not met.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lightHost, PS_ARGS } from '../../bench/light-host.js';
import { summaryRows } from '../../bench/summary.js';
import type { DeployBenchResult } from '../../bench/deploy.js';
import type { MemoryBenchResult } from '../../bench/memory.js';
import { createHost, readCommandLog, readState } from '../world/sim/host.mjs';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('bench light host', () => {
  const setup = () => {
    const root = mkdtempSync(join(tmpdir(), 'chatops-light-'));
    dirs.push(root);
    const deployPath = join(root, 'env01');
    mkdirSync(deployPath);
    createHost(deployPath, { runningTag: '0.6.0' });
    const light = lightHost(join(root, 'bench'));
    const docker = (args: string[]) => execFileSync(join(light.binDir, 'docker'), args, { cwd: deployPath, encoding: 'utf8', env: { PATH: process.env.PATH } });
    return { deployPath, light, docker };
  };

  it('answers `compose ps` as the simulated docker did for the same host, and records the call in its command log', () => {
    const { deployPath, light, docker } = setup();
    const simulated = docker(PS_ARGS);
    light.capture([deployPath]);
    light.use('light');
    const before = readCommandLog(deployPath).length;
    expect(docker(PS_ARGS)).toBe(simulated);
    const added = readCommandLog(deployPath).slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ argv: PS_ARGS, phase: 'end', exitCode: 0, cwd: deployPath });
    // One JSON object a line, as `docker compose ps --format json` prints them: the running services are there.
    const services = simulated.trim().split('\n').map((l) => (JSON.parse(l) as { Service: string }).Service);
    expect(services).toContain('engramia-api');
  });

  it('waits as long as it is told to, and passes any other command to the simulated docker', () => {
    const { deployPath, light, docker } = setup();
    light.capture([deployPath]);
    light.use('light');
    light.setWait(200);
    const t0 = Date.now();
    docker(PS_ARGS);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(readCommandLog(deployPath).at(-1)?.durationMs).toBeGreaterThanOrEqual(190);
    // A state change goes through the real simulation (the light docker knows only `ps`).
    docker(['compose', '-f', 'docker-compose.prod.yml', 'stop', 'engramia-api']);
    expect(Object.values(readState(deployPath).containers).find((c) => c.service === 'engramia-api')?.state).not.toBe('running');
    light.use('simulated');
    expect(readCommandLog(deployPath).at(-1)).not.toHaveProperty('light');
  });
});

describe('bench summary', () => {
  const stats = (median: number) => ({ n: 3, median, min: median, max: median });
  it('marks each target met or not from the numbers, and leaves out benchmarks that did not run', () => {
    const deploy = { rounds: 7, stats: { bot: stats(500), baseline: stats(600), botNoLimits: stats(480) }, ratio: { botVsBaseline: 500 / 600, botNoLimitsVsBaseline: 0.8 } } as unknown as DeployBenchResult;
    const slowDeploy = { ...deploy, ratio: { botVsBaseline: 1.2, botNoLimitsVsBaseline: 1.1 } } as DeployBenchResult;
    const memory = { idleMb: 160, baselineIdleMb: 39, targetIdleMb: 150, deployPeak: stats(170) } as unknown as MemoryBenchResult;
    const rows = summaryRows({ deploy, memory });
    expect(rows.map((r) => r.measure)).toEqual([
      'deploy, command → final card, Slack limits on (median of 7)',
      'resident memory of --role all, idle',
      'resident memory during a deploy, peak (median)',
    ]);
    expect(rows[0]).toMatchObject({ ours: '500 ms', ratio: '0.83×', met: true });
    expect(rows[1]).toMatchObject({ ours: '160 MB', met: false });
    expect(summaryRows({ deploy: slowDeploy })[0]!.met).toBe(false);
    expect(summaryRows({})).toEqual([]);
  });
});
