// The "production VM" of the real-host tier: an /opt/engramia-like deploy folder (compose file
// and .env in the runbook's shape) behind a real sshd whose sessions run the real Docker CLI
// against the test daemon.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { shellQuote } from '../../src/ssh/quote.js';
import { findFreePort, makeTempDir } from '../world/proc.js';
import { startSshd, type SshdServer } from '../world/sshd.js';
import type { Dockerd } from './dockerd.js';
import { DOCKER_CLI } from './requirements.js';

export const COMPOSE_FILE = 'docker-compose.prod.yml';
export const API_SERVICE = 'engramia-api';
export const DB_SERVICE = 'pgvector';
export const PROXY_SERVICE = 'caddy';

export interface DeployFolderOptions {
  /** Registry part of the image names, "127.0.0.1:PORT". */
  registryAddress: string;
  /** Release pinned in .env. */
  tag: string;
  /** The variable the compose file takes the API tag from: IMAGE_TAG, or CORE_TAG in newer files. */
  tagVariable?: 'IMAGE_TAG' | 'CORE_TAG';
  /** Loopback port Caddy (in front of the API) is published on. Default: a free one. */
  apiPort?: number;
  /**
   * The folder's name, which is also the Compose project's name: test files sharing one daemon
   * each take their own, so their containers and volumes never meet. Default `engramia`.
   */
  name?: string;
}

export interface DeployFolder {
  /** The folder itself; its name is the Compose project's name (`engramia` on the VM). */
  readonly path: string;
  readonly apiPort: number;
  /** http://127.0.0.1:PORT of Caddy, in front of the API (the bot's apiBaseUrl). */
  readonly apiUrl: string;
  readonly apiKey: string;
  readonly tagVariable: 'IMAGE_TAG' | 'CORE_TAG';
}

export function composeFile(opts: { registryAddress: string; tagVariable: string; apiPort: number }): string {
  return `# Engramia's production compose layout for the real-host tests.
services:
  ${API_SERVICE}:
    image: ${opts.registryAddress}/engramia/engramia:\${${opts.tagVariable}}
    restart: unless-stopped
    env_file: .env
    depends_on:
      - ${DB_SERVICE}
    expose:
      - "8000"

  ${PROXY_SERVICE}:
    image: ${opts.registryAddress}/library/caddy:2
    restart: unless-stopped
    depends_on:
      - ${API_SERVICE}
    ports:
      - "127.0.0.1:${opts.apiPort}:80"

  ${DB_SERVICE}:
    image: ${opts.registryAddress}/pgvector/pgvector:pg15
    restart: unless-stopped
    environment:
      POSTGRES_USER: engramia
      POSTGRES_DB: engramia
      POSTGRES_PASSWORD: \${POSTGRES_PASSWORD}
    volumes:
      - pgdata:/var/lib/postgresql/data

volumes:
  pgdata:
`;
}

export async function createDeployFolder(opts: DeployFolderOptions): Promise<DeployFolder> {
  const tagVariable = opts.tagVariable ?? 'IMAGE_TAG';
  const apiPort = opts.apiPort ?? (await findFreePort());
  const name = opts.name ?? 'engramia';
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) throw new Error(`not a Compose project name: ${name}`);
  const dir = path.join(makeTempDir('engramia-vm-'), name);
  mkdirSync(dir, { mode: 0o755 });
  const dbPassword = randomBytes(12).toString('hex');
  const apiKey = `engramia_test_${randomBytes(12).toString('hex')}`;
  writeFileSync(path.join(dir, COMPOSE_FILE), composeFile({ registryAddress: opts.registryAddress, tagVariable, apiPort }));
  writeFileSync(
    path.join(dir, '.env'),
    [
      `${tagVariable}=${opts.tag}`,
      `POSTGRES_PASSWORD=${dbPassword}`,
      `ENGRAMIA_DATABASE_URL=postgresql://engramia:${dbPassword}@${DB_SERVICE}:5432/engramia`,
      `ENGRAMIA_API_KEYS=${apiKey}`,
      'ENGRAMIA_AUTH_MODE=env',
      'ENGRAMIA_JSON_LOGS=false',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return { path: dir, apiPort, apiUrl: `http://127.0.0.1:${apiPort}`, apiKey, tagVariable };
}

/** The VM's sshd and the file its `docker` wrapper records every command in. */
export interface VmSshd {
  readonly sshd: SshdServer;
  /** One line per docker command the VM ran: see `test/real/host-record.ts`. */
  readonly commandLog: string;
}

/**
 * The `docker` the VM's sessions find first: it appends the command to the host's record, runs
 * Debian's real CLI (stdin, output and exit code pass through), and records the exit code. A
 * command killed with its process group leaves a start without an end, as on the simulated host.
 * Fields are tab-separated: start, pid, cwd, argv; end, pid, exit code.
 */
export function dockerRecorder(realDocker: string, logPath: string): string {
  return `#!/bin/sh
printf 'start\t%s\t%s\tdocker %s\n' "$$" "$PWD" "$*" >> ${shellQuote(logPath)}
${shellQuote(realDocker)} "$@"
rc=$?
printf 'end\t%s\t%s\n' "$$" "$rc" >> ${shellQuote(logPath)}
exit $rc
`;
}

/**
 * A real sshd whose sessions find Debian's `docker` first on PATH (not another client the
 * machine may have in /usr/local/bin), behind the recorder, and talk to `daemon` through DOCKER_HOST.
 */
export async function startVmSshd(daemon: Dockerd): Promise<VmSshd> {
  const root = makeTempDir('engramia-vm-bin-');
  const binDir = path.join(root, 'bin');
  mkdirSync(binDir, { mode: 0o755 });
  const commandLog = path.join(root, 'docker-commands.log');
  writeFileSync(commandLog, '', { mode: 0o666 });
  writeFileSync(path.join(binDir, 'docker'), dockerRecorder(DOCKER_CLI, commandLog), { mode: 0o755 });
  const sshd = await startSshd({ binDirs: [binDir], env: { DOCKER_HOST: daemon.dockerHost } });
  return { sshd, commandLog };
}
