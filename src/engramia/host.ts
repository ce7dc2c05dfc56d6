import type { EnvironmentConfig } from '../config/schema.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import type { SshExecutor } from '../ssh/executor.js';
import { assignmentPattern, compose, inDeployDir, isTruthyFlag, parseComposePs, parseEnvLines, type ContainerState } from './compose.js';

export interface HostState {
  containers: ContainerState[];
  /** Tag of the running engramia-api container, the host's own answer to "what runs now". */
  runningTag: string | undefined;
  apiState: string | undefined;
  /** Tag of the engramia-api container whatever its state: the release a crash loop keeps restarting. */
  apiTag?: string | undefined;
  /** Id of that container, for `docker inspect`. */
  apiId?: string | undefined;
  /** The tag pinned in `.env` (what a plain `docker compose up` would start); null when not pinned. */
  pinnedTag: string | null;
  /** Whether `.env` asks for maintenance; the running container only obeys it once re-created. */
  maintenanceInEnvFile: boolean;
}

const PROBE_TIMEOUT_MS = 20_000;

/**
 * Reads what runs on the host. It greps only the two `.env` lines it needs, so
 * the file's secrets never cross the SSH connection.
 */
export async function probeHost(ssh: SshExecutor, env: EnvironmentConfig): Promise<HostState> {
  const [ps, flags] = await Promise.all([
    ssh.exec(compose(env, ['ps', '-a', '--format', 'json']), { timeoutMs: PROBE_TIMEOUT_MS }),
    ssh.exec(inDeployDir(env, ['grep', '-E', assignmentPattern(['ENGRAMIA_MAINTENANCE', env.tagVariable]), '.env']), { timeoutMs: PROBE_TIMEOUT_MS }),
  ]);
  if (ps.exitCode !== 0) {
    throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `\`${ps.command}\` exited with ${ps.exitCode}`, {
      command: ps.command,
      exitCode: ps.exitCode,
      outputTail: ps.stderr.slice(-1500),
    });
  }
  // grep exits 1 when nothing matched: no pin and no flag is a valid state, not an error.
  if (flags.exitCode !== 0 && flags.exitCode !== 1) {
    throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `could not read .env in ${env.deployPath}`, {
      command: flags.command,
      exitCode: flags.exitCode,
      outputTail: flags.stderr.slice(-1500),
    });
  }
  let containers: ContainerState[];
  try {
    containers = parseComposePs(ps.stdout.toString('utf8'));
  } catch {
    throw new ChatOpsError(ErrorCode.RemoteCommandFailed, 'could not parse `docker compose ps --format json` output', { command: ps.command, outputTail: ps.stdout.toString('utf8').slice(-500) });
  }
  const vars = parseEnvLines(flags.stdout.toString('utf8'));
  const api = containers.find((c) => c.service === 'engramia-api');
  return {
    containers,
    runningTag: api?.state === 'running' ? api.tag : undefined,
    apiState: api?.state,
    apiTag: api?.tag,
    apiId: api?.id,
    pinnedTag: vars.get(env.tagVariable) ?? null,
    maintenanceInEnvFile: isTruthyFlag(vars.get('ENGRAMIA_MAINTENANCE')),
  };
}
