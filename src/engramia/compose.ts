import type { EnvironmentConfig } from '../config/schema.js';
import type { RemoteCommand } from '../ssh/quote.js';

/**
 * Builds `docker compose` invocations for one environment. Each SSH command
 * runs in a fresh shell, so a command that (re)creates a container must be
 * given the tag itself: nothing exported by an earlier step survives.
 */
export function compose(env: EnvironmentConfig, args: readonly string[], opts: { tag?: string } = {}): RemoteCommand {
  return {
    cwd: env.deployPath,
    argv: ['docker', 'compose', '-f', env.composeFile, ...args],
    ...(opts.tag === undefined ? {} : { env: { [env.tagVariable]: opts.tag } }),
  };
}

export function inDeployDir(env: EnvironmentConfig, argv: readonly string[]): RemoteCommand {
  return { cwd: env.deployPath, argv };
}

export interface ContainerState {
  service: string;
  /** The container's id (Compose's `ID`, 12 hex digits), for `docker inspect`; absent when compose printed none. */
  id?: string;
  name: string;
  image: string;
  /** The tag part of the image reference, when it has one. */
  tag: string | undefined;
  state: string;
  status: string;
  health: string;
}

/** Compose v2.21+ prints one JSON object per line; older v2 releases print one array. */
export function parseComposePs(output: string): ContainerState[] {
  const text = output.trim();
  if (text === '') return [];
  const rows: unknown[] = text.startsWith('[') ? (JSON.parse(text) as unknown[]) : text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
  return rows.map((row) => {
    const r = row as Record<string, unknown>;
    const image = String(r.Image ?? '');
    return {
      service: String(r.Service ?? ''),
      ...(r.ID ? { id: String(r.ID) } : {}),
      name: String(r.Name ?? ''),
      image,
      tag: imageTag(image),
      state: String(r.State ?? 'unknown'),
      status: String(r.Status ?? ''),
      health: String(r.Health ?? ''),
    };
  });
}

export function imageTag(image: string): string | undefined {
  const at = image.indexOf('@');
  const ref = at === -1 ? image : image.slice(0, at);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(colon + 1) : undefined;
}

/** Values the API reads as "maintenance on" (engramia-api.md). */
export function isTruthyFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes'].includes(value.trim().replace(/^["']|["']$/g, '').toLowerCase());
}

/** An extended regex for grep: the lines of `.env` that assign one of `names`, in any form compose reads (`export NAME=`, `NAME =`). */
export function assignmentPattern(names: readonly string[]): string {
  return `^[[:space:]]*(export[[:space:]]+)?(${names.join('|')})[[:space:]]*=`;
}

/** Parses `NAME=value` lines as docker compose reads them from `.env`; the last assignment wins. */
export function parseEnvLines(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const name = line.slice(0, eq).replace(/^export\s+/, '').trim();
    const value = line.slice(eq + 1).trim();
    const quoted = /^(["'])(.*)\1/.exec(value);
    // As compose reads it: a quoted value ends at its quote; an unquoted one at " #".
    out.set(name, quoted ? quoted[2]! : value.replace(/\s+#.*$/, ''));
  }
  return out;
}
