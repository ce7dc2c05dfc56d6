// A lighter simulated host for the health fan-out, so the bench can tell the bot's concurrency apart from
// this machine's CPU. The simulated `docker` is a Node program: each call costs about 70 ms of CPU, and twenty
// hosts on the bot's two cores cannot answer twenty probes at once whoever asks (the fan-out's `direct`
// series shows it). A real `docker compose ps` mostly waits on the Docker daemon instead.
//
// The light `docker` is a bash script that answers the one command a health job runs through it,
// `compose -f … ps -a --format json`, with what the simulated docker answered for the same fresh host, after
// an optional fixed wait (a sleep, not CPU, as a real `docker compose ps` waits on the Docker daemon), and records the call in the host's command log as the
// simulated docker does; any other command goes to the simulated docker itself. It is switched in and out
// by pointing a symlink on the hosts' PATH at it, so the same sshds, hosts and bot serve both series.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOCKER_SHIM } from '../test/world/sim/host.mjs';
import { shellQuote } from '../src/ssh/quote.js';

export const PS_ARGS = ['compose', '-f', 'docker-compose.prod.yml', 'ps', '-a', '--format', 'json'];

export interface LightHost {
  /** Put first on the hosts' PATH: holds `docker`, a symlink to the simulated or the light one. */
  binDir: string;
  /** Saves each host's `ps` answer (run once through the simulated docker) for the light docker to repeat. */
  capture(deployPaths: string[]): void;
  use(which: 'simulated' | 'light'): void;
  /** How long the light `ps` takes from now on. */
  setWait(ms: number): void;
}

/** A light `docker` in `root`; its `ps` waits `setWait(ms)` (a sleep, not CPU; 0 at first). */
export function lightHost(root: string): LightHost {
  const binDir = join(root, 'host-bin');
  const light = join(root, 'light-docker');
  const waitFile = join(root, 'ps-wait-ms');
  const fifo = join(root, 'never');
  mkdirSync(binDir, { recursive: true });
  writeFileSync(waitFile, '0\n');
  execFileSync('mkfifo', [fifo]);
  const argvJson = JSON.stringify(PS_ARGS);
  // Bash builtins only, so the answer costs one process: the wait is a read that times out on a FIFO nobody
  // writes to (opened read-write, so opening it does not block). The answer is kept beside the deploy
  // directory ("$PWD.ps.json"), so a fresh host (which wipes the directory) keeps it; the bot runs every
  // command with the deploy directory as its working directory.
  writeFileSync(
    light,
    `#!/bin/bash
if [[ "$*" == ${shellQuote(PS_ARGS.join(' '))} && -f "$PWD.ps.json" ]]; then
  t0=\${EPOCHREALTIME/./}
  wait_ms=0
  read -r wait_ms < ${shellQuote(waitFile)} || true
  if (( wait_ms > 0 )); then
    printf -v secs '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000))
    exec {never}<> ${shellQuote(fifo)}
    read -r -t "$secs" -u "$never" || true
  fi
  IFS= read -r -d '' answer < "$PWD.ps.json" || true
  printf '%s' "$answer"
  t1=\${EPOCHREALTIME/./}
  printf '{"ts":"%(%Y-%m-%dT%H:%M:%S)T.000Z","pid":%d,"argv":%s,"cwd":"%s","env":{},"stdin":null,"exitCode":0,"durationMs":%d,"phase":"end","light":true}\\n' -1 $$ ${shellQuote(argvJson)} "$PWD" $(( (t1 - t0) / 1000 )) >> .sim/commands.jsonl
  exit 0
fi
exec ${shellQuote(DOCKER_SHIM)} "$@"
`,
  );
  chmodSync(light, 0o755);
  const link = join(binDir, 'docker');
  const use = (which: 'simulated' | 'light') => {
    const tmp = `${link}.${process.pid}.tmp`;
    symlinkSync(which === 'light' ? light : DOCKER_SHIM, tmp);
    // rename() replaces the link in one step: a session starting meanwhile finds one docker or the other.
    renameSync(tmp, link);
  };
  use('simulated');
  return {
    binDir,
    use,
    setWait(ms) {
      writeFileSync(waitFile, `${Math.max(0, Math.round(ms))}\n`);
    },
    capture(deployPaths) {
      for (const d of deployPaths) {
        const out = execFileSync(process.execPath, [DOCKER_SHIM, ...PS_ARGS], { cwd: d, env: { PATH: process.env.PATH }, encoding: 'utf8' });
        writeFileSync(`${d}.ps.json`, out);
      }
    },
  };
}
