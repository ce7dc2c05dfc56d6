import type { EnvironmentConfig } from '../config/schema.js';
import { compose } from '../engramia/compose.js';
import type { RemoteCommand } from '../ssh/quote.js';
import { readEnvVars } from './env-edit.js';

/**
 * The runbook's host commands, as data. Values reach the shell only as quoted
 * argv words or as positional parameters of a fixed script ($1, $2…), never
 * spliced into script text.
 */

export { setEnvVar, unsetEnvVar } from './env-edit.js';

export function readEnvFlags(env: EnvironmentConfig): RemoteCommand {
  return readEnvVars(env, ['ENGRAMIA_MAINTENANCE', env.tagVariable]);
}

/**
 * The registry credential lives only in a per-job docker config folder under the deploy folder,
 * never in the SSH user's ~/.docker/config.json: removing the whole parent folder removes every
 * credential the bot stored for this environment, including one a crashed job left behind.
 */
export function registryConfigRoot(env: EnvironmentConfig): string {
  return `${env.deployPath.replace(/\/+$/, '')}/.chatops-docker`;
}

export function registryConfigDir(env: EnvironmentConfig, jobId: string): string {
  return `${registryConfigRoot(env)}/${jobId}`;
}

// The environment's lock means no other job of it is running, so whatever is under the root is a
// leftover and goes first. With DOCKER_CONFIG set, docker finds CLI plugins (compose!) only in
// $DOCKER_CONFIG/cli-plugins and the system folders: the user's own plugins are linked in.
const LOGIN_SCRIPT =
  'set -eu; root=$1; dir=$2; host=$3; user=$4; umask 077; rm -rf "$root"; mkdir -m 700 "$root" "$dir"; ' +
  'plugins="${DOCKER_CONFIG:-${HOME:-/nonexistent}/.docker}/cli-plugins"; ' +
  'if [ -d "$plugins" ]; then ln -s "$plugins" "$dir/cli-plugins"; fi; ' +
  'DOCKER_CONFIG=$dir exec docker login "$host" -u "$user" --password-stdin';

/** The token goes on stdin (`--password-stdin`); it never appears in argv. */
export function registryLogin(env: EnvironmentConfig, jobId: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['sh', '-c', LOGIN_SCRIPT, 'chatops-login', registryConfigRoot(env), registryConfigDir(env, jobId), env.registry.host, env.registry.username] };
}

/**
 * Removes every docker config folder (and so every registry credential) the bot left for this environment,
 * or with `onlyJob` that job's folder alone: a job that no longer holds the environment's lock must not
 * remove the folder of the job that holds it now.
 */
export function registryLogout(env: EnvironmentConfig, onlyJob?: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['rm', '-rf', onlyJob === undefined ? registryConfigRoot(env) : registryConfigDir(env, onlyJob)] };
}

export const API = 'engramia-api';

/** Pulls with the job's own docker config, the only place the credential is. */
export function pull(env: EnvironmentConfig, tag: string, jobId: string): RemoteCommand {
  const c = compose(env, ['pull', API], { tag });
  return { ...c, env: { DOCKER_CONFIG: registryConfigDir(env, jobId), ...c.env } };
}

/** `alembic heads` of `tag`'s image; with a job id, an image not on the host is pulled with that job's credential. */
export function imageHeads(env: EnvironmentConfig, tag: string, jobId?: string): RemoteCommand {
  const c = alembicOneOff(env, tag, ['heads']);
  return jobId === undefined ? c : { ...c, env: { DOCKER_CONFIG: registryConfigDir(env, jobId), ...c.env } };
}

/** alembic in a throwaway container of `tag`'s image: works when engramia-api has no running container (a crash loop). */
export function alembicOneOff(env: EnvironmentConfig, tag: string, args: readonly string[]): RemoteCommand {
  return compose(env, ['run', '--rm', '--no-deps', '-T', API, 'alembic', ...args], { tag });
}

export function alembic(env: EnvironmentConfig, tag: string, args: readonly string[]): RemoteCommand {
  return compose(env, ['exec', '-T', API, 'alembic', ...args], { tag });
}

// `exec "$@" 2>&1` so the container's stderr (where uvicorn logs) stays in order with its stdout:
// compose prints the two streams separately. The argv after the script is passed as data.
const MERGE_STDERR_SCRIPT = 'exec "$@" 2>&1';

/** The API's last log lines. `logs` reads the running container and never (re)creates one, so no tag is given. */
export function apiLogs(env: EnvironmentConfig, tail: number): RemoteCommand {
  const logs = compose(env, ['logs', `--tail=${tail}`, API]);
  return { ...logs, argv: ['sh', '-c', MERGE_STDERR_SCRIPT, 'chatops-logs', ...logs.argv] };
}

export function up(env: EnvironmentConfig, tag: string, services: readonly string[]): RemoteCommand {
  return compose(env, ['up', '-d', ...services], { tag });
}

export function prune(env: EnvironmentConfig): RemoteCommand {
  return { cwd: env.deployPath, argv: ['docker', 'image', 'prune', '-f'] };
}

// pg_dump's binary output goes straight to a file on the host (never through a TTY or the
// SSH channel); it is written under a temporary name and renamed only when the dump succeeded.
// An existing snapshot is never overwritten (exit 3 says the name is taken): `ln` fails rather than replace it.
// umask 077: the dump holds every row of production, so it is the owner's alone (0600).
export const SNAPSHOT_NAME_TAKEN = 3;
const SNAPSHOT_SCRIPT =
  'set -eu; umask 077; f=$1; out=$2; [ ! -e "$out" ] || exit 3; ' +
  'docker compose -f "$f" exec -T pgvector pg_dump -U engramia engramia -Fc > "$out.partial" && ln "$out.partial" "$out" && rm -f "$out.partial" || { rm -f "$out.partial"; exit 1; }';

export function snapshot(env: EnvironmentConfig, path: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['sh', '-c', SNAPSHOT_SCRIPT, 'chatops-snapshot', env.composeFile, path] };
}

export function fileSize(env: EnvironmentConfig, path: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['wc', '-c', path] };
}

export function fileMagic(env: EnvironmentConfig, path: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['head', '-c', '5', path] };
}

/** `alembic current`/`heads` print "032 (head)" or "032"; the first revision-looking word is what we need. */
export function parseRevision(output: string): string | null {
  const m = /^([0-9A-Za-z_]+)(?:\s|$)/m.exec(output.trim());
  return m ? m[1]! : null;
}

/**
 * How often the daemon has restarted a container (`restart: unless-stopped`): a crash loop can show
 * "running" in the second between two restarts, and only this count gives it away.
 */
export function restartCount(env: EnvironmentConfig, containerId: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['docker', 'inspect', '--format', '{{.RestartCount}}', containerId] };
}

// `docker top` lists what runs inside a container as the host's `ps` sees it. A container that stops
// between the two commands makes `top` fail, and so the whole answer: "could not tell", never "none".
const SERVICE_PROCESSES_SCRIPT =
  'set -u; f=$1; svc=$2; ids=$(docker compose -f "$f" ps -q "$svc") || exit 1; rc=0; ' +
  'for id in $ids; do docker top "$id" || rc=1; done; exit $rc';

/**
 * The processes running in the service's containers. A migration goes on inside its container when
 * the `docker compose exec` client that started it dies (SIGPIPE once the SSH channel of a killed
 * worker closes, or a timeout's kill): the host's process group is gone, the migration is not.
 */
export function serviceProcesses(env: EnvironmentConfig, service: string): RemoteCommand {
  return { cwd: env.deployPath, argv: ['sh', '-c', SERVICE_PROCESSES_SCRIPT, 'chatops-top', env.composeFile, service] };
}
