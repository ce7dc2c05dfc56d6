import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ChatOpsError, ErrorCode } from '../errors.js';
import { shellQuote } from '../ssh/quote.js';
import { configSchema, parseDuration, type EnvironmentConfig, type RawConfig } from './schema.js';
import { Secret } from './secret.js';

export type Role = 'all' | 'app' | 'worker';

export interface Config {
  file: string;
  slack: RawConfig['slack'];
  access: RawConfig['access'];
  environments: Record<string, EnvironmentConfig>;
  /** The environment used when a command names none; undefined when several exist and none is marked. */
  defaultEnv: string | undefined;
}

/** Per-environment secrets, resolved once at start-up so a missing one fails early. */
export interface EnvSecrets {
  apiKey: Secret;
  registryToken: Secret;
  sshPrivateKey: Secret;
}

export interface ConfigProblem {
  path: string;
  message: string;
}

export function formatProblems(file: string, problems: ConfigProblem[]): string {
  return [`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:`, ...problems.map((p) => `  - ${file}: ${p.path || '(top level)'}: ${p.message}`)].join('\n');
}

function configError(file: string, problems: ConfigProblem[]): ChatOpsError {
  return new ChatOpsError(ErrorCode.ConfigInvalid, formatProblems(file, problems), { file, problems });
}

/** Parses and validates config text; every problem is collected, not just the first. */
export function parseConfig(text: string, file: string): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw configError(
      file,
      doc.errors.map((e) => ({ path: e.linePos ? `line ${e.linePos[0].line}` : '', message: `YAML syntax: ${e.message.split('\n')[0]}` })),
    );
  }
  let raw: unknown;
  try {
    // A small alias budget: a config never needs many, and a "billion laughs" file must not hang start-up.
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw configError(file, [{ path: '', message: `YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
  const problems: ConfigProblem[] = [];
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        problems.push({ path, message: `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling against chatops.example.yml)` });
      } else if (issue.code === 'invalid_key') {
        // zod puts the key pattern's own message one level down.
        problems.push({ path, message: issue.issues.map((i) => i.message).join('; ') || issue.message });
      } else {
        problems.push({ path, message: issue.message });
      }
    }
  }
  // Checked on the raw document too, so it is reported alongside any other problem.
  const rawEnvs = (raw as { environments?: unknown }).environments;
  const marked = rawEnvs && typeof rawEnvs === 'object' ? Object.entries(rawEnvs).filter(([, e]) => (e as { default?: unknown } | null)?.default === true).map(([n]) => n) : [];
  if (marked.length > 1) problems.push({ path: 'environments', message: `only one environment may have default: true, found ${marked.join(', ')}` });
  problems.push(...watchChannelProblems(raw));
  if (problems.length > 0 || !result.success) throw configError(file, problems);

  const parsed = result.data;
  const environments: Record<string, EnvironmentConfig> = {};
  for (const [name, { watch, ...env }] of Object.entries(parsed.environments)) {
    environments[name] = {
      ...env,
      name,
      ...(watch
        ? {
            watch: {
              every: watch.every,
              everyMs: parseDuration(watch.every)!,
              rollbackWindow: watch.rollbackWindow,
              rollbackWindowMs: parseDuration(watch.rollbackWindow)!,
              channel: watch.channel ?? parsed.slack.allowedChannels[0]!,
            },
          }
        : {}),
    };
  }
  const names = Object.keys(environments);
  const defaultEnv = Object.values(environments).find((e) => e.default)?.name ?? (names.length === 1 ? names[0] : undefined);
  return { file, slack: parsed.slack, access: parsed.access, environments, defaultEnv };
}

/**
 * A watch posts without anyone asking, so it must know where: its own `channel`, or the first
 * allowed channel. Checked on the raw document so it is reported alongside any other problem.
 */
function watchChannelProblems(raw: unknown): ConfigProblem[] {
  const r = raw as { slack?: { allowedChannels?: unknown }; environments?: unknown } | null;
  const allowed = r?.slack?.allowedChannels;
  if (Array.isArray(allowed) && allowed.length > 0) return [];
  if (!r?.environments || typeof r.environments !== 'object') return [];
  return Object.entries(r.environments)
    .filter(([, e]) => {
      const w = (e as { watch?: unknown } | null)?.watch;
      return w !== null && typeof w === 'object' && (w as { channel?: unknown }).channel === undefined;
    })
    .map(([name]) => ({
      path: `environments.${name}.watch.channel`,
      message: 'is required when slack.allowedChannels is empty: the channel the health watch posts to (a channel id, C…)',
    }));
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found (set CHATOPS_CONFIG or copy chatops.example.yml to chatops.yml)' : (err as Error).message;
    throw configError(file, [{ path: '', message: reason }]);
  }
  return parseConfig(text, file);
}

/** A key file's text and permission bits, read through one open file so both describe the same file. */
export type ReadKeyFile = (path: string) => { text: string; mode: number };

export const readKeyFile: ReadKeyFile = (path) => {
  const fd = openSync(path, 'r');
  try {
    const { mode } = fstatSync(fd);
    return { text: readFileSync(fd, 'utf8'), mode };
  } finally {
    closeSync(fd);
  }
};

/**
 * A deploy key that group or others may read is refused, as ssh refuses it ("UNPROTECTED PRIVATE
 * KEY FILE"): anyone else on the machine could take it and deploy. The message carries the fix.
 */
function exposedKeyProblem(path: string, mode: number): string | undefined {
  if ((mode & 0o077) === 0) return undefined;
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  return `${path} may be read or written by group or others (mode ${octal}); a deploy key must be private to the bot's user. Fix: chmod 600 ${shellQuote(path)}`;
}

/**
 * Resolves the secrets a worker needs. The app role never touches SSH keys or
 * API keys, so an app-only container need not hold them (least privilege).
 */
export function resolveEnvSecrets(config: Config, env: NodeJS.ProcessEnv, readFile: ReadKeyFile = readKeyFile): Record<string, EnvSecrets> {
  const problems: ConfigProblem[] = [];
  const out: Record<string, EnvSecrets> = {};
  const fromEnv = (name: string, keyPath: string): Secret | undefined => {
    const value = env[name];
    if (value === undefined || value.trim() === '') {
      problems.push({ path: keyPath, message: `names the environment variable ${name}, which is not set` });
      return undefined;
    }
    return new Secret(value.trim(), name);
  };
  for (const e of Object.values(config.environments)) {
    const base = `environments.${e.name}`;
    const apiKey = fromEnv(e.apiKeyEnv, `${base}.apiKeyEnv`);
    const registryToken = fromEnv(e.registry.tokenEnv, `${base}.registry.tokenEnv`);
    const keyPath = `${base}.ssh.privateKeyPath`;
    let sshPrivateKey: Secret | undefined;
    try {
      const { text, mode } = readFile(e.ssh.privateKeyPath);
      // Not a key at all (a .pub named by mistake): chmod would be the wrong advice.
      const problem = !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text) ? `${e.ssh.privateKeyPath} does not contain a PEM/OpenSSH private key` : exposedKeyProblem(e.ssh.privateKeyPath, mode);
      if (problem) problems.push({ path: keyPath, message: problem });
      else sshPrivateKey = new Secret(text, e.ssh.privateKeyPath);
    } catch (err) {
      problems.push({ path: keyPath, message: `cannot read ${e.ssh.privateKeyPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    }
    if (apiKey && registryToken && sshPrivateKey) out[e.name] = { apiKey, registryToken, sshPrivateKey };
  }
  if (problems.length > 0) {
    throw new ChatOpsError(ErrorCode.SecretMissing, formatProblems(config.file, problems), { file: config.file, problems });
  }
  return out;
}
