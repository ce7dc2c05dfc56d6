import type { EnvironmentConfig } from '../config/schema.js';
import { compose, inDeployDir } from '../engramia/compose.js';
import type { RemoteCommand } from '../ssh/quote.js';
import type { EnvShape } from './facts.js';

/** The variables whose shape `diagnose` asks for: the runbook's start-up and Stripe checks. */
export const SHAPED_VARS = ['ENGRAMIA_DATABASE_URL', 'STRIPE_SECRET_KEY'] as const;

// Classifies each named variable of .env on the host and prints only "NAME class": the value
// (a database password, the Stripe key) never crosses the SSH connection. As compose reads .env:
// optional `export`, optional quotes, and the last assignment wins.
const ENV_SHAPE_AWK = [
  'BEGIN { n = split(names, ks, " "); for (i = 1; i <= n; i++) c[ks[i]] = "missing" }',
  '{ l = $0; sub(/^[ \\t]*(export[ \\t]+)?/, "", l); e = index(l, "="); if (e == 0) next',
  '  k = substr(l, 1, e - 1); sub(/[ \\t]+$/, "", k); if (!(k in c)) next',
  '  v = substr(l, e + 1); sub(/^[ \\t]+/, "", v); q = substr(v, 1, 1)',
  '  if (q == "\\"" || q == "\\047") { v = substr(v, 2); if (substr(v, length(v), 1) == q) v = substr(v, 1, length(v) - 1) }',
  '  if (v == "") c[k] = "empty"; else if (substr(v, 1, 8) == "sk_live_") c[k] = "live"; else if (substr(v, 1, 8) == "sk_test_") c[k] = "test"; else c[k] = "set" }',
  'END { for (i = 1; i <= n; i++) print ks[i], c[ks[i]] }',
].join('\n');

const VAR_NAME = /^[A-Z_][A-Z0-9_]*$/;

export function envShapes(env: EnvironmentConfig, names: readonly string[]): RemoteCommand {
  for (const n of names) if (!VAR_NAME.test(n)) throw new Error(`not a variable name: ${n}`);
  return inDeployDir(env, ['awk', '-v', `names=${names.join(' ')}`, ENV_SHAPE_AWK, '.env']);
}

const SHAPES: readonly EnvShape[] = ['missing', 'empty', 'live', 'test', 'set'];

export function parseEnvShapes(output: string): Partial<Record<string, EnvShape>> {
  const out: Partial<Record<string, EnvShape>> = {};
  for (const line of output.split('\n')) {
    const [name, shape] = line.trim().split(/\s+/);
    if (name && shape && (SHAPES as readonly string[]).includes(shape)) out[name] = shape as EnvShape;
  }
  return out;
}

/** The runbook's "connect manually to verify", without a TTY (the SSH channel has none). */
export function pgSelectVersion(env: EnvironmentConfig): RemoteCommand {
  return compose(env, ['exec', '-T', 'pgvector', 'psql', '-U', 'engramia', '-c', 'SELECT version();']);
}

/**
 * alembic in a throwaway container of the API image, for when the API container is not running
 * (it crashed at start-up): `exec` needs a running container, and the crash is usually the reason to ask.
 */
export function alembicInImage(env: EnvironmentConfig, tag: string, args: readonly string[]): RemoteCommand {
  return compose(env, ['run', '--rm', '--no-deps', '-T', 'engramia-api', 'alembic', ...args], { tag });
}
