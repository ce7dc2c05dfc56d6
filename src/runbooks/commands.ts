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

/** The token goes on stdin (`--password-stdin`); it never appears in argv. */
export function registryLogin(env: EnvironmentConfig): RemoteCommand {
  return { cwd: env.deployPath, argv: ['docker', 'login', env.registry.host, '-u', env.registry.username, '--password-stdin'] };
}

export const API = 'engramia-api';

export function pull(env: EnvironmentConfig, tag: string): RemoteCommand {
  return compose(env, ['pull', API], { tag });
}

export function imageHeads(env: EnvironmentConfig, tag: string): RemoteCommand {
  return compose(env, ['run', '--rm', '--no-deps', '-T', API, 'alembic', 'heads'], { tag });
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
