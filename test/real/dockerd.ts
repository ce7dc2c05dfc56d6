// A real Docker Engine for the tests: its own socket, data root and exec root in a temp folder,
// no iptables rules, no default bridge and no IP forwarding, so the machine's firewall, network
// and system daemon (if any) are left alone. Nothing is pulled from the internet.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, spawnManaged, waitUntil, type ManagedProcess } from '../world/proc.js';
import type { DockerTarget } from './docker-cli.js';
import { REAL_BINARIES, requireRealHost } from './requirements.js';

const execFileAsync = promisify(execFile);
const READY_TIMEOUT_MS = 60_000;

export interface Dockerd extends DockerTarget {
  readonly dir: string;
  readonly socketPath: string;
  readonly pid: number;
  /** Milliseconds from spawn to the first answered /_ping. */
  readonly startMs: number;
  /** SIGTERM (containers get the daemon's shutdown timeout), then unmount and remove the folder. */
  stop(): Promise<void>;
  logs(): string;
}

/** GET /_ping on the daemon's unix socket; true on "OK". */
export function pingDocker(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 1_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body === 'OK'));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    // mountinfo escapes space, tab, newline and backslash as octal.
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Lazily unmounts everything dockerd left under `dir` (netns files, overlay and shm mounts). */
export async function unmountAllUnder(dir: string): Promise<string[]> {
  const points = mountsUnder(dir);
  for (const point of points) {
    await execFileAsync('umount', ['-l', point]).catch(() => undefined);
  }
  return mountsUnder(dir);
}

export async function startDockerd(): Promise<Dockerd> {
  requireRealHost();
  // Short path: the socket's path must fit a sockaddr_un (108 bytes).
  const dir = makeTempDir('edk-');
  const socketPath = path.join(dir, 'docker.sock');
  const dockerConfig = path.join(dir, 'client-config');
  mkdirSync(dockerConfig, { mode: 0o700 });
  // An empty config file, so /etc/docker/daemon.json (if the machine has one) does not apply.
  const configFile = path.join(dir, 'daemon.json');
  writeFileSync(configFile, '{}\n');

  const started = Date.now();
  const proc: ManagedProcess = await spawnManaged(REAL_BINARIES.dockerd, [
    '--host', `unix://${socketPath}`,
    '--data-root', path.join(dir, 'data'),
    '--exec-root', path.join(dir, 'exec'),
    '--pidfile', path.join(dir, 'docker.pid'),
    '--config-file', configFile,
    '--iptables=false',
    '--ip-forward=false',
    '--bridge=none',
    '--shutdown-timeout', '5',
  ]);
  try {
    await waitUntil(() => pingDocker(socketPath), { proc, timeoutMs: READY_TIMEOUT_MS, what: 'dockerd' });
  } catch (err) {
    await proc.terminate('SIGKILL');
    await unmountAllUnder(dir);
    throw err;
  }
  const startMs = Date.now() - started;

  return {
    dir,
    socketPath,
    dockerHost: `unix://${socketPath}`,
    dockerConfig,
    pid: proc.pid,
    startMs,
    logs: () => proc.logs.toString(),
    stop: async () => {
      await proc.terminate('SIGTERM', 30_000);
      const left = await unmountAllUnder(dir);
      if (left.length === 0) rmSync(dir, { recursive: true, force: true });
      else console.warn(`[real] dockerd left mounts it could not unmount, ${dir} is kept:\n  ${left.join('\n  ')}`);
    },
  };
}
