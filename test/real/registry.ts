// A real image registry (Debian's docker-registry, i.e. distribution 2.8) on 127.0.0.1 with an
// htpasswd file, so `docker login 127.0.0.1:PORT --password-stdin` and its refusals are real.
// Docker treats 127.0.0.0/8 as an insecure registry: plain HTTP needs no daemon setting.
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { findFreePort, makeTempDir, ProcessExitedError, spawnManaged, waitUntil, type ManagedProcess } from '../world/proc.js';
import { run } from './docker-cli.js';
import { REAL_BINARIES, requireRealHost } from './requirements.js';

export interface Registry {
  /** "127.0.0.1:PORT", the registry part of image names. */
  readonly address: string;
  readonly port: number;
  readonly username: string;
  /** The login password; hand it to `docker login --password-stdin`, never put it in argv. */
  readonly password: string;
  readonly dir: string;
  /** The registry's process: tests stop it with SIGSTOP to hold a pull in flight, then SIGCONT. */
  readonly pid: number;
  stop(): Promise<void>;
  logs(): string;
}

/** Status of GET /v2/ (401 when the registry is up and asks for a login). */
function v2Status(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/v2/', timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

function config(dir: string, port: number): string {
  // YAML by hand: every value is a path or port we made, none needs quoting beyond "".
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: "${path.join(dir, 'data')}"`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: "127.0.0.1:${port}"`,
    'auth:',
    '  htpasswd:',
    '    realm: engramia-test-registry',
    `    path: "${path.join(dir, 'htpasswd')}"`,
    '',
  ].join('\n');
}

export async function startRegistry(opts: { username?: string } = {}): Promise<Registry> {
  requireRealHost();
  const dir = makeTempDir('engramia-registry-');
  mkdirSync(path.join(dir, 'data'));
  const username = opts.username ?? 'engramia-ci';
  const password = randomBytes(18).toString('base64url');
  // bcrypt is the only hash the registry accepts; -i reads the password from stdin.
  const { stdout: entry } = await run(REAL_BINARIES.htpasswd, ['-niB', username], { input: `${password}\n` });
  writeFileSync(path.join(dir, 'htpasswd'), entry.trim() + '\n', { mode: 0o600 });

  let proc: ManagedProcess | null = null;
  let port = 0;
  for (let attempt = 1; !proc; attempt++) {
    port = await findFreePort();
    const configPath = path.join(dir, 'config.yml');
    writeFileSync(configPath, config(dir, port));
    const candidate = await spawnManaged(REAL_BINARIES.registry, ['serve', configPath], { cwd: dir });
    try {
      await waitUntil(async () => (await v2Status(port)) === 401, { proc: candidate, timeoutMs: 20_000, what: `docker-registry on ${port}` });
      proc = candidate;
    } catch (err) {
      await candidate.terminate('SIGKILL');
      const inUse = err instanceof ProcessExitedError && /address already in use/i.test(err.output);
      if (!inUse || attempt >= 5) throw err;
    }
  }
  const server = proc;
  return {
    address: `127.0.0.1:${port}`,
    port,
    username,
    password,
    dir,
    pid: server.pid,
    logs: () => server.logs.toString(),
    stop: async () => {
      await server.terminate('SIGTERM', 5_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
