// Unit tests for src/config: the YAML config (load.ts, schema.ts), per-environment secrets and the
// contract's environment variables (env.ts). Contract: "A config error stops start-up with one
// message per problem, each naming the file, the key path and what is wrong."
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRole, readEnvOptions } from '../../src/config/env.js';
import { loadConfig, parseConfig, readKeyFile, resolveEnvSecrets, type Config } from '../../src/config/load.js';
import { parseDuration } from '../../src/config/schema.js';
import { Secret } from '../../src/config/secret.js';
import { ChatOpsError, ErrorCode } from '../../src/errors.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));
const fixture = (name: string): string => path.join(FIXTURES, name);
const VALID_TEXT = readFileSync(fixture('valid.yml'), 'utf8');

/** Calls fn, which must throw a ChatOpsError; returns it. */
function thrown(fn: () => unknown): ChatOpsError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  if (!(caught instanceof ChatOpsError)) {
    throw new Error(`expected a ChatOpsError, got ${caught instanceof Error ? `${caught.constructor.name}: ${caught.message}` : String(caught)}`);
  }
  return caught;
}

interface Problem {
  path: string;
  message: string;
}

/**
 * Checks the shape every config error must have: a header line counting the problems, then one
 * line per problem naming the file and the key path; the same problems are in details.
 */
function problemsOf(err: ChatOpsError, file: string): Problem[] {
  const problems = err.details.problems as Problem[];
  expect(Array.isArray(problems)).toBe(true);
  expect(err.details.file).toBe(file);
  const lines = err.message.split('\n');
  expect(lines[0]).toBe(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:`);
  expect(lines).toHaveLength(problems.length + 1);
  problems.forEach((p, i) => {
    expect(lines[i + 1]).toBe(`  - ${file}: ${p.path || '(top level)'}: ${p.message}`);
    expect(p.message.trim()).not.toBe('');
  });
  return problems;
}

/** The problem for one key path; fails when that path is not reported. */
function problemAt(problems: Problem[], keyPath: string): Problem {
  const found = problems.find((p) => p.path === keyPath);
  expect(found, `no problem reported at ${keyPath}; got ${JSON.stringify(problems.map((p) => p.path))}`).toBeDefined();
  return found!;
}

function loadFixtureError(name: string): { err: ChatOpsError; problems: Problem[]; file: string } {
  const file = fixture(name);
  const err = thrown(() => loadConfig(file));
  expect(err.code).toBe(ErrorCode.ConfigInvalid);
  return { err, problems: problemsOf(err, file), file };
}

describe('parseConfig / loadConfig: a valid file', () => {
  let config: Config;
  beforeAll(() => {
    config = loadConfig(fixture('valid.yml'));
  });

  it('keeps the file name and the access lists', () => {
    expect(config.file).toBe(fixture('valid.yml'));
    expect(config.slack.allowedChannels).toEqual(['C0OPS']);
    expect(config.access).toEqual({ deployers: ['U01ALICE', 'U02BOB'], approvers: ['U02BOB', 'U03CAROL'], admins: ['U03CAROL'] });
  });

  it('names every environment and picks the default: true one', () => {
    expect(Object.keys(config.environments)).toEqual(['production', 'staging']);
    expect(config.environments.production!.name).toBe('production');
    expect(config.environments.staging!.name).toBe('staging');
    expect(config.defaultEnv).toBe('production');
  });

  it('reads every key of an environment', () => {
    expect(config.environments.production).toEqual({
      name: 'production',
      default: true,
      fourEyes: true,
      requireApproval: false,
      ssh: {
        host: '203.0.113.10',
        port: 22,
        username: 'deploy',
        privateKeyPath: '/run/secrets/deploy_key',
        hostKeySha256: 'SHA256:q6VbXw3kLmN8pQrStUvWxYz0123456789AbCdEfGhIj',
        readyTimeoutMs: 15_000,
        maxSessions: 8,
      },
      deployPath: '/opt/engramia',
      composeFile: 'docker-compose.prod.yml',
      tagVariable: 'IMAGE_TAG',
      apiBaseUrl: 'https://api.engramia.dev',
      apiKeyEnv: 'ENGRAMIA_PROD_API_KEY',
      registry: { host: 'ghcr.io', username: 'engramia-bot', tokenEnv: 'GHCR_TOKEN' },
      gateTimeoutSeconds: 900,
      verifySettleSeconds: 60,
      maintenanceWarnMinutes: 30,
      backups: { keep: 10 },
      timeouts: { login: 60, pull: 900, up: 300, migrate: 900, snapshot: 1800, command: 60 },
    });
  });

  it('fills defaults: four-eyes on, approval off, port 22, the prod compose file, IMAGE_TAG', () => {
    const staging = config.environments.staging!;
    expect(staging.default).toBe(false);
    expect(staging.fourEyes).toBe(true);
    expect(staging.requireApproval).toBe(false);
    expect(staging.ssh.port).toBe(22);
    expect(staging.composeFile).toBe('docker-compose.prod.yml');
    expect(staging.tagVariable).toBe('CORE_TAG');
    const minimal = parseConfig(VALID_TEXT.replace('    tagVariable: CORE_TAG\n', ''), 'x.yml');
    expect(minimal.environments.staging!.tagVariable).toBe('IMAGE_TAG');
  });

  it('slack and access may be left out entirely', () => {
    const text = VALID_TEXT.replace(/^slack:\n(  .*\n)+/m, '').replace(/^access:\n(  .*\n)+/m, '');
    const c = parseConfig(text, 'x.yml');
    expect(c.slack).toEqual({ allowedChannels: [] });
    expect(c.access).toEqual({ deployers: [], approvers: [], admins: [] });
  });

  it('a single environment is the default even without default: true', () => {
    const text = VALID_TEXT.replace(/^ {2}staging:\n( {4}.*\n)+/m, '').replace('    default: true\n', '');
    const c = parseConfig(text, 'x.yml');
    expect(Object.keys(c.environments)).toEqual(['production']);
    expect(c.defaultEnv).toBe('production');
  });

  it('several environments and none marked: no default', () => {
    const c = parseConfig(VALID_TEXT.replace('    default: true\n', ''), 'x.yml');
    expect(c.defaultEnv).toBeUndefined();
  });

  it('legitimate anchors and aliases work', () => {
    const text = VALID_TEXT.replace('    registry:\n      host: ghcr.io', '    registry: &reg\n      host: ghcr.io').replace(
      /( {2}staging:\n(?: {4}.*\n)*?) {4}registry:\n {6}host: ghcr.io\n {6}username: engramia-bot\n {6}tokenEnv: GHCR_TOKEN\n/,
      '$1    registry: *reg\n',
    );
    expect(text).toContain('registry: *reg');
    const c = parseConfig(text, 'x.yml');
    expect(c.environments.staging!.registry).toEqual(c.environments.production!.registry);
  });
});

describe('loadConfig: files that cannot be read', () => {
  it('a missing file names the file and says how to fix it', () => {
    const file = path.join(tmpdir(), 'definitely-missing-chatops.yml');
    const err = thrown(() => loadConfig(file));
    expect(err.code).toBe(ErrorCode.ConfigInvalid);
    const [p] = problemsOf(err, file);
    expect(p!.message).toContain('file not found');
    expect(p!.message).toContain('CHATOPS_CONFIG');
  });

  it('a directory is reported, not crashed on', () => {
    const err = thrown(() => loadConfig(FIXTURES));
    expect(err.code).toBe(ErrorCode.ConfigInvalid);
    expect(problemsOf(err, FIXTURES)).toHaveLength(1);
  });
});

describe('parseConfig / loadConfig: malformed and hostile files', () => {
  it('YAML syntax error: reported with its line', () => {
    const { problems } = loadFixtureError('syntax-error.yml');
    expect(problems.length).toBeGreaterThanOrEqual(1);
    expect(problems[0]!.path).toMatch(/^line \d+$/);
    expect(problems[0]!.message).toMatch(/^YAML syntax: /);
  });

  it('duplicate keys are refused, not silently overwritten', () => {
    const { problems } = loadFixtureError('duplicate-keys.yml');
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe('line 10');
    expect(problems[0]!.message).toMatch(/unique/i);
  });

  it('wrong types: every one is reported at its key path', () => {
    const { problems } = loadFixtureError('wrong-types.yml');
    for (const keyPath of [
      'slack.allowedChannels',
      'access.deployers',
      'access.approvers.1',
      'environments.production.default',
      'environments.production.fourEyes',
      'environments.production.ssh.port',
      'environments.production.deployPath',
      'environments.production.registry',
    ]) {
      problemAt(problems, keyPath);
    }
    expect(problems).toHaveLength(8);
    expect(problemAt(problems, 'environments.production.ssh.port').message).toMatch(/number/);
  });

  it('missing hostKeySha256 says it is required and why', () => {
    const { problems } = loadFixtureError('missing-hostkey.yml');
    expect(problems).toHaveLength(1);
    const p = problemAt(problems, 'environments.production.ssh.hostKeySha256');
    expect(p.message).toMatch(/required/);
    expect(p.message).toContain('ssh-keygen -lf');
  });

  it('bad fingerprints: each environment is reported', () => {
    const { problems } = loadFixtureError('bad-fingerprint.yml');
    expect(problems).toHaveLength(3);
    for (const env of ['md5', 'short', 'noprefix']) {
      expect(problemAt(problems, `environments.${env}.ssh.hostKeySha256`).message).toContain('SHA256:');
    }
  });

  it('unknown keys (typos) are named, and the misspelt required keys reported missing', () => {
    const { problems } = loadFixtureError('unknown-keys.yml');
    const unknown = problems.filter((p) => p.message.startsWith('unknown key'));
    const text = unknown.map((p) => `${p.path}: ${p.message}`).join('\n');
    expect(text).toContain('"acess"');
    expect(text).toContain('"allowedChanels"');
    expect(text).toContain('"defualt"');
    expect(text).toContain('"hostKeySHA256"');
    expect(text).toContain('"deployPth"');
    expect(problemAt(problems, 'slack').message).toContain('"allowedChanels"');
    expect(problemAt(problems, 'environments.production.ssh').message).toContain('"hostKeySHA256"');
    problemAt(problems, 'environments.production.ssh.hostKeySha256');
    problemAt(problems, 'environments.production.deployPath');
  });

  it('two defaults are refused and both names given', () => {
    const { problems } = loadFixtureError('two-defaults.yml');
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe('environments');
    expect(problems[0]!.message).toContain('production');
    expect(problems[0]!.message).toContain('staging');
  });

  it('two defaults are reported together with the other problems of the same file', () => {
    const { problems } = loadFixtureError('two-defaults-and-more.yml');
    problemAt(problems, 'environments.staging.tagVariable');
    expect(problems.some((p) => p.path === 'environments' && /default/.test(p.message))).toBe(true);
  });

  it('no environments', () => {
    const { problems } = loadFixtureError('no-environments.yml');
    expect(problems).toEqual([{ path: 'environments', message: 'must define at least one environment' }]);
  });

  it('an empty file asks for environments', () => {
    const { problems } = loadFixtureError('empty.yml');
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe('environments');
  });

  it('a top-level list is refused at the top level', () => {
    const { err, problems } = loadFixtureError('not-a-mapping.yml');
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe('');
    expect(err.message).toContain('(top level)');
  });

  it('environment names with shell metacharacters are refused, saying what a name may be', () => {
    const { problems } = loadFixtureError('env-name-shell.yml');
    const bad = problems.filter((p) => p.path === 'environments.$(id)' || p.path === 'environments.staging;rm -rf /');
    expect(bad).toHaveLength(2);
    for (const p of bad) expect(p.message).toMatch(/lower-case/);
  });

  it('unsafe deployPath and composeFile: all eight are reported', () => {
    const { problems } = loadFixtureError('bad-paths.yml');
    for (const env of ['semicolon', 'spaces', 'relative', 'substitution']) {
      expect(problemAt(problems, `environments.${env}.deployPath`).message).toMatch(/absolute path/);
      expect(problemAt(problems, `environments.${env}.composeFile`).message).toMatch(/file name/);
    }
    expect(problems).toHaveLength(8);
  });

  it('tagVariable must be an upper-case variable name', () => {
    const { problems } = loadFixtureError('tagvariable-lowercase.yml');
    expect(problems).toHaveLength(2);
    expect(problemAt(problems, 'environments.production.tagVariable').message).toMatch(/upper-case/);
    expect(problemAt(problems, 'environments.staging.tagVariable').message).toMatch(/upper-case/);
  });

  it('apiBaseUrl must be http(s)', () => {
    const { problems } = loadFixtureError('apibaseurl-not-http.yml');
    expect(problems).toHaveLength(2);
    expect(problemAt(problems, 'environments.production.apiBaseUrl').message).toMatch(/http\(s\)/);
    expect(problemAt(problems, 'environments.staging.apiBaseUrl').message).toMatch(/http\(s\)/);
  });

  it('a YAML bomb (alias expansion) is refused as a config error, quickly', () => {
    const started = Date.now();
    const file = fixture('yaml-bomb.yml');
    const err = thrown(() => loadConfig(file));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err.code).toBe(ErrorCode.ConfigInvalid);
    problemsOf(err, file);
  });

  it.each([
    ['ssh.host', /host: 203\.0\.113\.10/, 'host: "203.0.113.10; id"'],
    ['ssh.username', /username: deploy/, 'username: "Deploy User"'],
    ['ssh.port', /port: 22/, 'port: 70000'],
    ['registry.tokenEnv', /tokenEnv: GHCR_TOKEN/, 'tokenEnv: "GHCR-TOKEN"'],
    ['apiKeyEnv', /apiKeyEnv: ENGRAMIA_PROD_API_KEY/, 'apiKeyEnv: "$KEY"'],
    ['registry.host', /host: ghcr\.io/, 'host: "ghcr.io/evil path"'],
  ])('a bad production %s is reported at its path', (keyPath, search, replacement) => {
    const err = thrown(() => parseConfig(VALID_TEXT.replace(search, replacement), 'chatops.yml'));
    expect(err.code).toBe(ErrorCode.ConfigInvalid);
    const problems = problemsOf(err, 'chatops.yml');
    problemAt(problems, `environments.production.${keyPath}`);
  });

  it('bad Slack ids in allowedChannels and access lists are reported one by one', () => {
    const text = VALID_TEXT.replace('allowedChannels: [C0OPS]', 'allowedChannels: ["#ops", C0OPS]').replace('admins: [U03CAROL]', 'admins: [carol, U03CAROL, "<@U1>"]');
    const problems = problemsOf(thrown(() => parseConfig(text, 'chatops.yml')), 'chatops.yml');
    problemAt(problems, 'slack.allowedChannels.0');
    problemAt(problems, 'access.admins.0');
    problemAt(problems, 'access.admins.2');
    expect(problems).toHaveLength(3);
  });

  it('a 1 MB file with a valid config parses in reasonable time', () => {
    const text = `${VALID_TEXT}\n# ${'x'.repeat(1_048_576)}\n`;
    const started = Date.now();
    const c = parseConfig(text, 'big.yml');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(c.defaultEnv).toBe('production');
  });

  it('a 1 MB value under an unknown key is reported without echoing the value', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'config-big-'));
    try {
      const file = path.join(dir, 'big.yml');
      writeFileSync(file, `${VALID_TEXT}junk: "${'y'.repeat(1_048_576)}"\n`);
      const err = thrown(() => loadConfig(file));
      expect(err.code).toBe(ErrorCode.ConfigInvalid);
      const problems = problemsOf(err, file);
      expect(problems).toHaveLength(1);
      expect(problems[0]!.message).toContain('"junk"');
      expect(err.message.length).toBeLessThan(1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------

const FAKE_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n';
const FAKE_RSA = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n';
const FULL_ENV = { ENGRAMIA_PROD_API_KEY: 'prod-api-key-value', ENGRAMIA_STAGING_API_KEY: 'staging-api-key-value', GHCR_TOKEN: 'ghcr-token-value' };

describe('resolveEnvSecrets', () => {
  let dir: string;
  let config: Config;
  let keyFile: string;
  let stagingKeyFile: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'config-secrets-'));
    keyFile = path.join(dir, 'deploy_key');
    stagingKeyFile = path.join(dir, 'staging_key');
    // As ssh-keygen writes them: private to their owner.
    writeFileSync(keyFile, FAKE_KEY, { mode: 0o600 });
    writeFileSync(stagingKeyFile, FAKE_RSA, { mode: 0o600 });
    config = parseConfig(VALID_TEXT.replace('/run/secrets/deploy_key', keyFile).replace('/run/secrets/staging_key', stagingKeyFile), 'chatops.yml');
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads every secret, wrapped so it cannot leak by accident', () => {
    const secrets = resolveEnvSecrets(config, FULL_ENV);
    expect(Object.keys(secrets)).toEqual(['production', 'staging']);
    const prod = secrets.production!;
    expect(prod.apiKey).toBeInstanceOf(Secret);
    expect(prod.apiKey.reveal()).toBe('prod-api-key-value');
    expect(prod.apiKey.source).toBe('ENGRAMIA_PROD_API_KEY');
    expect(prod.registryToken.reveal()).toBe('ghcr-token-value');
    expect(prod.sshPrivateKey.reveal()).toBe(FAKE_KEY);
    expect(secrets.staging!.apiKey.reveal()).toBe('staging-api-key-value');
    expect(secrets.staging!.sshPrivateKey.reveal()).toBe(FAKE_RSA);
    const shown = `${String(prod.apiKey)} ${JSON.stringify(secrets)} ${inspect(secrets, { depth: 5 })}`;
    for (const value of [...Object.values(FULL_ENV), 'OPENSSH PRIVATE KEY-----\nb3Bl']) expect(shown).not.toContain(value);
    expect(String(prod.apiKey)).toBe('[secret ENGRAMIA_PROD_API_KEY]');
  });

  it('trims whitespace around an environment value', () => {
    const secrets = resolveEnvSecrets(config, { ...FULL_ENV, GHCR_TOKEN: '  ghcr-token-value\n' });
    expect(secrets.production!.registryToken.reveal()).toBe('ghcr-token-value');
  });

  it('a missing variable is named with its key path, for every environment that uses it', () => {
    const err = thrown(() => resolveEnvSecrets(config, { ENGRAMIA_PROD_API_KEY: 'x', ENGRAMIA_STAGING_API_KEY: 'y' }));
    expect(err.code).toBe(ErrorCode.SecretMissing);
    const problems = problemsOf(err, 'chatops.yml');
    expect(problems).toHaveLength(2);
    for (const env of ['production', 'staging']) {
      const p = problemAt(problems, `environments.${env}.registry.tokenEnv`);
      expect(p.message).toContain('GHCR_TOKEN');
      expect(p.message).toContain('not set');
    }
  });

  it('an empty or blank variable counts as missing; every problem is listed', () => {
    const err = thrown(() => resolveEnvSecrets(config, { ENGRAMIA_PROD_API_KEY: '', ENGRAMIA_STAGING_API_KEY: '   ', GHCR_TOKEN: 't0ken-value' }));
    const problems = problemsOf(err, 'chatops.yml');
    expect(problemAt(problems, 'environments.production.apiKeyEnv').message).toContain('ENGRAMIA_PROD_API_KEY');
    expect(problemAt(problems, 'environments.staging.apiKeyEnv').message).toContain('ENGRAMIA_STAGING_API_KEY');
    expect(problems).toHaveLength(2);
  });

  it('an unreadable key file is reported with its path and the reason', () => {
    const missing = path.join(dir, 'nope');
    const c = parseConfig(VALID_TEXT.replace('/run/secrets/deploy_key', missing).replace('/run/secrets/staging_key', dir), 'chatops.yml');
    const err = thrown(() => resolveEnvSecrets(c, FULL_ENV));
    expect(err.code).toBe(ErrorCode.SecretMissing);
    const problems = problemsOf(err, 'chatops.yml');
    const prod = problemAt(problems, 'environments.production.ssh.privateKeyPath');
    expect(prod.message).toContain(missing);
    expect(prod.message).toContain('ENOENT');
    const staging = problemAt(problems, 'environments.staging.ssh.privateKeyPath');
    expect(staging.message).toContain('EISDIR');
  });

  it('a permission error from the reader is reported', () => {
    const denied = (p: string): { text: string; mode: number } => {
      throw Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: 'EACCES' });
    };
    const err = thrown(() => resolveEnvSecrets(config, FULL_ENV, denied));
    const problems = problemsOf(err, 'chatops.yml');
    expect(problems).toHaveLength(2);
    expect(problemAt(problems, 'environments.production.ssh.privateKeyPath').message).toContain('EACCES');
  });

  it('a mode-000 key file is unreadable (when not running as root)', () => {
    const locked = path.join(dir, 'locked_key');
    writeFileSync(locked, FAKE_KEY);
    chmodSync(locked, 0o000);
    const c = parseConfig(VALID_TEXT.replace('/run/secrets/deploy_key', locked).replace('/run/secrets/staging_key', stagingKeyFile), 'chatops.yml');
    if (process.getuid?.() === 0) {
      // root reads anything: the key is accepted, which is also what the reader would do in production.
      expect(resolveEnvSecrets(c, FULL_ENV).production!.sshPrivateKey.reveal()).toBe(FAKE_KEY);
    } else {
      const problems = problemsOf(thrown(() => resolveEnvSecrets(c, FULL_ENV)), 'chatops.yml');
      expect(problemAt(problems, 'environments.production.ssh.privateKeyPath').message).toContain('EACCES');
    }
  });

  describe('a key file group or others may read is refused, with the chmod that fixes it', () => {
    it.each(['0644', '0640', '0604', '0660', '0606', '0610', '0601'])('mode %s', (octal) => {
      const mode = parseInt(octal, 8);
      const exposed = path.join(dir, `exposed_${mode.toString(8)}`);
      writeFileSync(exposed, FAKE_KEY);
      chmodSync(exposed, mode);
      const c = parseConfig(VALID_TEXT.replace('/run/secrets/deploy_key', exposed).replace('/run/secrets/staging_key', stagingKeyFile), 'chatops.yml');
      const err = thrown(() => resolveEnvSecrets(c, FULL_ENV));
      expect(err.code).toBe(ErrorCode.SecretMissing);
      const problems = problemsOf(err, 'chatops.yml');
      expect(problems).toHaveLength(1);
      expect(problemAt(problems, 'environments.production.ssh.privateKeyPath').message).toBe(
        `${exposed} may be read or written by group or others (mode ${octal}); a deploy key must be private to the bot's user. Fix: chmod 600 ${exposed}`,
      );
      expect(err.message).not.toContain('b3BlbnNzaC1rZXktdjE');
    });

    it.each(['0600', '0400'])('mode %s is accepted', (octal) => {
      const mode = parseInt(octal, 8);
      const ok = path.join(dir, `private_${mode.toString(8)}`);
      writeFileSync(ok, FAKE_KEY);
      chmodSync(ok, mode);
      const c = parseConfig(VALID_TEXT.replace('/run/secrets/deploy_key', ok).replace('/run/secrets/staging_key', stagingKeyFile), 'chatops.yml');
      expect(resolveEnvSecrets(c, FULL_ENV).production!.sshPrivateKey.reveal()).toBe(FAKE_KEY);
    });

    it('the chmod is shell-quoted for a path with a space, and a symlink is judged by the file it points to', () => {
      const spaced = path.join(dir, 'my keys', 'deploy key');
      mkdirSync(path.dirname(spaced), { recursive: true });
      writeFileSync(spaced, FAKE_KEY, { mode: 0o644 });
      chmodSync(spaced, 0o644);
      const link = path.join(dir, 'linked_key');
      symlinkSync(spaced, link);
      const c = parseConfig(VALID_TEXT.replace('/run/secrets/deploy_key', spaced).replace('/run/secrets/staging_key', link), 'chatops.yml');
      const problems = problemsOf(thrown(() => resolveEnvSecrets(c, FULL_ENV)), 'chatops.yml');
      expect(problemAt(problems, 'environments.production.ssh.privateKeyPath').message).toContain(`Fix: chmod 600 '${spaced}'`);
      expect(problemAt(problems, 'environments.staging.ssh.privateKeyPath').message).toContain(`Fix: chmod 600 ${link}`);
    });

  });

  it('a file that is not a private key is refused without echoing its content', () => {
    const pub = path.join(dir, 'id_ed25519.pub');
    writeFileSync(pub, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZha2UtcHVibGljLWtleS1ieXRlcw== deploy@host\n');
    const text = path.join(dir, 'notes.txt');
    writeFileSync(text, 'hello, this is not a key: secret-ish-content\n');
    const c = parseConfig(VALID_TEXT.replace('/run/secrets/deploy_key', pub).replace('/run/secrets/staging_key', text), 'chatops.yml');
    const err = thrown(() => resolveEnvSecrets(c, FULL_ENV));
    const problems = problemsOf(err, 'chatops.yml');
    expect(problemAt(problems, 'environments.production.ssh.privateKeyPath').message).toContain('does not contain a PEM/OpenSSH private key');
    expect(problemAt(problems, 'environments.staging.ssh.privateKeyPath').message).toContain(text);
    expect(err.message).not.toContain('secret-ish-content');
    expect(err.message).not.toContain('AAAAC3NzaC1');
  });

  it('every kind of problem at once, none hidden behind another', () => {
    const c = parseConfig(VALID_TEXT.replace('/run/secrets/deploy_key', path.join(dir, 'nope')), 'chatops.yml');
    const reader = (p: string) => {
      if (p === '/run/secrets/staging_key') return { text: 'not a key', mode: 0o100600 };
      return readKeyFile(p);
    };
    const err = thrown(() => resolveEnvSecrets(c, {}, reader));
    const problems = problemsOf(err, 'chatops.yml');
    expect(problems.map((p) => p.path).sort()).toEqual(
      [
        'environments.production.apiKeyEnv',
        'environments.production.registry.tokenEnv',
        'environments.production.ssh.privateKeyPath',
        'environments.staging.apiKeyEnv',
        'environments.staging.registry.tokenEnv',
        'environments.staging.ssh.privateKeyPath',
      ].sort(),
    );
  });

  it('never puts a secret value in an error', () => {
    // The key file is fine, the other secrets are set, but one variable is missing.
    const err = thrown(() => resolveEnvSecrets(config, { ENGRAMIA_PROD_API_KEY: 'prod-api-key-value', GHCR_TOKEN: 'ghcr-token-value' }));
    const all = `${err.message} ${JSON.stringify(err.details)}`;
    expect(all).not.toContain('prod-api-key-value');
    expect(all).not.toContain('ghcr-token-value');
    expect(all).not.toContain('b3BlbnNzaC1rZXktdjEAAAAABG5v');
  });
});

// ---------------------------------------------------------------------------------------------

describe('readEnvOptions', () => {
  it('no variables at all: console mode and the contract defaults', () => {
    expect(readEnvOptions({})).toEqual({
      slack: { kind: 'console' },
      slackApiUrl: 'https://slack.com/api/',
      port: 3000,
      redisUrl: 'redis://127.0.0.1:6379',
      configPath: './chatops.yml',
      logLevel: 'info',
      queuePrefix: 'chatops',
      worker: {},
    });
  });

  it('worker tuning: whole milliseconds in range, each bad value named with what would be right', () => {
    expect(readEnvOptions({ CHATOPS_JOB_LOCK_MS: '2000', CHATOPS_STALLED_INTERVAL_MS: '1000', CHATOPS_SHUTDOWN_GRACE_MS: '0' }).worker).toEqual({ jobLockMs: 2000, stalledIntervalMs: 1000, shutdownGraceMs: 0 });
    expect(() => readEnvOptions({ CHATOPS_JOB_LOCK_MS: '15s', CHATOPS_STALLED_INTERVAL_MS: '100' })).toThrow(
      /CHATOPS_JOB_LOCK_MS: must be a whole number of milliseconds from 1000 to 600000, got "15s"[\s\S]*CHATOPS_STALLED_INTERVAL_MS: must be a whole number of milliseconds from 500/,
    );
  });

  it('empty values count as unset', () => {
    const o = readEnvOptions({ SLACK_BOT_TOKEN: '', SLACK_APP_TOKEN: ' ', PORT: '', REDIS_URL: '', LOG_LEVEL: '', CHATOPS_CONFIG: '' });
    expect(o.slack).toEqual({ kind: 'console' });
    expect(o.port).toBe(3000);
    expect(o.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(o.configPath).toBe('./chatops.yml');
  });

  it('HTTP mode: bot token and signing secret', () => {
    const o = readEnvOptions({ SLACK_BOT_TOKEN: 'xoxb-1-2-abc', SLACK_SIGNING_SECRET: 'signing-secret-value' });
    expect(o.slack.kind).toBe('http');
    if (o.slack.kind !== 'http') throw new Error('unreachable');
    expect(o.slack.botToken.reveal()).toBe('xoxb-1-2-abc');
    expect(o.slack.signingSecret.reveal()).toBe('signing-secret-value');
    expect(JSON.stringify(o)).not.toContain('signing-secret-value');
    expect(JSON.stringify(o)).not.toContain('xoxb-1-2-abc');
  });

  it('Socket Mode: an app token switches it on; no signing secret needed', () => {
    const o = readEnvOptions({ SLACK_BOT_TOKEN: 'xoxb-1-2-abc', SLACK_APP_TOKEN: 'xapp-1-A1-abc' });
    expect(o.slack.kind).toBe('socket');
    if (o.slack.kind !== 'socket') throw new Error('unreachable');
    expect(o.slack.appToken.reveal()).toBe('xapp-1-A1-abc');
    expect(o.slack.botToken.source).toBe('SLACK_BOT_TOKEN');
    expect(readEnvOptions({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', SLACK_SIGNING_SECRET: 's' }).slack.kind).toBe('socket');
  });

  it('bot token without signing secret (HTTP mode) is refused', () => {
    const err = thrown(() => readEnvOptions({ SLACK_BOT_TOKEN: 'xoxb-1-2-abc' }));
    expect(err.code).toBe(ErrorCode.ConfigInvalid);
    const problems = problemsOf(err, 'environment');
    expect(problems).toHaveLength(1);
    expect(problemAt(problems, 'SLACK_SIGNING_SECRET').message).toMatch(/required/);
  });

  it('a worker needs only the bot token (it posts, never receives); every other role still needs a signing secret or app token', () => {
    const o = readEnvOptions({ SLACK_BOT_TOKEN: 'xoxb-1-2-abc' }, 'worker');
    expect(o.slack.kind).toBe('post');
    if (o.slack.kind !== 'post') throw new Error('unreachable');
    expect(o.slack.botToken.reveal()).toBe('xoxb-1-2-abc');
    expect(readEnvOptions({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's' }, 'worker').slack.kind).toBe('http');
    for (const role of ['app', 'all'] as const) {
      problemAt(problemsOf(thrown(() => readEnvOptions({ SLACK_BOT_TOKEN: 'xoxb-1-2-abc' }, role)), 'environment'), 'SLACK_SIGNING_SECRET');
    }
  });

  it('app token without bot token is refused', () => {
    const problems = problemsOf(thrown(() => readEnvOptions({ SLACK_APP_TOKEN: 'xapp-1-A1-abc' })), 'environment');
    expect(problemAt(problems, 'SLACK_BOT_TOKEN').message).toMatch(/required/);
  });

  it('bad prefixes are refused without echoing the token', () => {
    const err = thrown(() => readEnvOptions({ SLACK_BOT_TOKEN: 'xoxp-user-token-value', SLACK_APP_TOKEN: 'xoxb-not-an-app-token', SLACK_SIGNING_SECRET: 's' }));
    const problems = problemsOf(err, 'environment');
    expect(problemAt(problems, 'SLACK_BOT_TOKEN').message).toContain('xoxb-');
    expect(problemAt(problems, 'SLACK_APP_TOKEN').message).toContain('xapp-');
    expect(err.message).not.toContain('xoxp-user-token-value');
    expect(err.message).not.toContain('xoxb-not-an-app-token');
  });

  it.each([
    ['8080', 8080],
    [' 8080 ', 8080],
    ['65535', 65535],
    ['1', 1],
  ])('PORT=%j → %d', (value, want) => {
    expect(readEnvOptions({ PORT: value }).port).toBe(want);
  });

  it.each(['abc', '-1', '65536', '70000', '80.5', '8080abc'])('PORT=%j is refused', (value) => {
    const problems = problemsOf(thrown(() => readEnvOptions({ PORT: value })), 'environment');
    expect(problemAt(problems, 'PORT').message).toContain(`"${value}"`);
  });

  describe('ADMIN_PORT and ADMIN_HOST (the admin listener: /metrics, detailed /healthz)', () => {
    const HTTP = { SLACK_BOT_TOKEN: 'xoxb-1-2-abc', SLACK_SIGNING_SECRET: 'signing-secret-value' };

    it('defaults to 127.0.0.1:9464 whenever Slack tokens are set', () => {
      expect(readEnvOptions(HTTP).admin).toEqual({ host: '127.0.0.1', port: 9464 });
      expect(readEnvOptions({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' }).admin).toEqual({ host: '127.0.0.1', port: 9464 });
    });

    it('takes any port, 0 meaning "any free one", and an IP or host name to bind', () => {
      expect(readEnvOptions({ ...HTTP, ADMIN_PORT: '0' }).admin).toEqual({ host: '127.0.0.1', port: 0 });
      expect(readEnvOptions({ ...HTTP, ADMIN_PORT: ' 9100 ', ADMIN_HOST: '0.0.0.0' }).admin).toEqual({ host: '0.0.0.0', port: 9100 });
      expect(readEnvOptions({ ...HTTP, ADMIN_HOST: '::1' }).admin?.host).toBe('::1');
      expect(readEnvOptions({ ...HTTP, ADMIN_HOST: 'metrics.internal' }).admin?.host).toBe('metrics.internal');
    });

    it('the console serves none unless ADMIN_PORT is set (nothing scrapes a terminal; two consoles must not fight over 9464)', () => {
      expect(readEnvOptions({}).admin).toBeUndefined();
      expect(readEnvOptions({ ADMIN_HOST: '127.0.0.1' }).admin).toBeUndefined();
      expect(readEnvOptions({ ADMIN_PORT: '0' }).admin).toEqual({ host: '127.0.0.1', port: 0 });
    });

    it.each([
      ['ADMIN_PORT', '65536'],
      ['ADMIN_PORT', 'metrics'],
      ['ADMIN_PORT', '-1'],
      ['ADMIN_HOST', 'http://127.0.0.1'],
      ['ADMIN_HOST', '127.0.0.1:9464'],
      ['ADMIN_HOST', 'a host'],
    ])('%s=%j is refused, naming the variable and the value', (name, value) => {
      const problems = problemsOf(thrown(() => readEnvOptions({ ...HTTP, [name]: value })), 'environment');
      expect(problems.map((p) => p.path)).toEqual([name]);
      expect(problemAt(problems, name).message).toContain(`"${value}"`);
    });
  });

  it('SLACK_API_URL: custom value, trailing slash added', () => {
    expect(readEnvOptions({ SLACK_API_URL: 'http://127.0.0.1:9999/api' }).slackApiUrl).toBe('http://127.0.0.1:9999/api/');
    expect(readEnvOptions({ SLACK_API_URL: 'https://slack.example/api/' }).slackApiUrl).toBe('https://slack.example/api/');
  });

  it.each(['ftp://slack.com/api/', 'slack.com/api', 'https://sla ck.com/'])('SLACK_API_URL=%j is refused', (value) => {
    problemAt(problemsOf(thrown(() => readEnvOptions({ SLACK_API_URL: value })), 'environment'), 'SLACK_API_URL');
  });

  it('REDIS_URL: redis:// and rediss:// only', () => {
    expect(readEnvOptions({ REDIS_URL: 'rediss://user:pw@redis.internal:6380/2' }).redisUrl).toBe('rediss://user:pw@redis.internal:6380/2');
    problemAt(problemsOf(thrown(() => readEnvOptions({ REDIS_URL: 'http://127.0.0.1:6379' })), 'environment'), 'REDIS_URL');
  });

  it('CHATOPS_CONFIG and LOG_LEVEL', () => {
    const o = readEnvOptions({ CHATOPS_CONFIG: '/etc/chatops/chatops.yml', LOG_LEVEL: 'debug' });
    expect(o.configPath).toBe('/etc/chatops/chatops.yml');
    expect(o.logLevel).toBe('debug');
    const problems = problemsOf(thrown(() => readEnvOptions({ LOG_LEVEL: 'verbose' })), 'environment');
    expect(problemAt(problems, 'LOG_LEVEL').message).toContain('info');
  });

  it('every problem is listed at once', () => {
    const err = thrown(() =>
      readEnvOptions({ SLACK_BOT_TOKEN: 'bad', SLACK_APP_TOKEN: 'bad', PORT: 'x', REDIS_URL: 'x', LOG_LEVEL: 'x', SLACK_API_URL: 'x', CHATOPS_QUEUE_PREFIX: 'a b' }),
    );
    const problems = problemsOf(err, 'environment');
    expect(problems.map((p) => p.path).sort()).toEqual(['CHATOPS_QUEUE_PREFIX', 'LOG_LEVEL', 'PORT', 'REDIS_URL', 'SLACK_API_URL', 'SLACK_APP_TOKEN', 'SLACK_BOT_TOKEN'].sort());
  });

  it('reads only the environment it is given', () => {
    const before = { ...process.env };
    expect(readEnvOptions({}).slack.kind).toBe('console');
    expect(process.env).toEqual(before);
  });
});

describe('parseRole', () => {
  it.each<[string[], string]>([
    [[], 'all'],
    [['node', 'dist/main.js'], 'all'],
    [['--role', 'app'], 'app'],
    [['--role', 'worker'], 'worker'],
    [['--role', 'all'], 'all'],
    [['--role=worker'], 'worker'],
    [['node', 'dist/main.js', '--role=app'], 'app'],
  ])('%j → %s', (argv, want) => {
    expect(parseRole(argv)).toBe(want);
  });

  it.each([[['--role', 'boss']], [['--role']], [['--role=']], [['--role', 'APP']], [['--role=app=x']]])('%j is refused', (argv) => {
    const err = thrown(() => parseRole(argv));
    expect(err.code).toBe(ErrorCode.ConfigInvalid);
    expect(err.message).toContain('all, app or worker');
  });
});

describe('environments.NAME.watch: the health watch', () => {
  /** The valid file with a watch block under production (indented to sit under it). */
  const withWatch = (watch: string, text = VALID_TEXT) => text.replace('    apiKeyEnv: ENGRAMIA_PROD_API_KEY\n', `    apiKeyEnv: ENGRAMIA_PROD_API_KEY\n    watch: ${watch}\n`);

  it('is off unless configured', () => {
    expect(parseConfig(VALID_TEXT, 'x.yml').environments.production!.watch).toBeUndefined();
  });

  it('reads durations, defaults rollbackWindow to 30m and the channel to the first allowed channel', () => {
    const c = parseConfig(withWatch('{ every: 1m }'), 'x.yml');
    expect(c.environments.production!.watch).toEqual({ every: '1m', everyMs: 60_000, rollbackWindow: '30m', rollbackWindowMs: 1_800_000, channel: 'C0OPS' });
    expect(c.environments.staging!.watch).toBeUndefined();
    const explicit = parseConfig(withWatch('{ every: 30s, rollbackWindow: 2h, channel: C0ALERTS }'), 'x.yml');
    expect(explicit.environments.production!.watch).toEqual({ every: '30s', everyMs: 30_000, rollbackWindow: '2h', rollbackWindowMs: 7_200_000, channel: 'C0ALERTS' });
  });

  it('each bad value is reported at its key path, saying what a duration looks like', () => {
    const bad = (watch: string) => problemsOf(thrown(() => parseConfig(withWatch(watch), 'x.yml')), 'x.yml');
    expect(problemAt(bad('{ every: 60 }'), 'environments.production.watch.every').message).toBe('must be a duration such as 30s, 1m or 5m (a whole number and s, m or h)');
    expect(problemAt(bad('{ every: 1d }'), 'environments.production.watch.every').message).toBe('must be a duration such as 30s, 1m or 5m (a whole number and s, m or h)');
    expect(problemAt(bad('{ every: "1 m" }'), 'environments.production.watch.every').message).toMatch(/must be a duration/);
    expect(problemAt(bad('{ every: 0s }'), 'environments.production.watch.every').message).toBe('must be from 1s to 24h');
    expect(problemAt(bad('{ every: 25h }'), 'environments.production.watch.every').message).toBe('must be from 1s to 24h');
    expect(problemAt(bad('{ rollbackWindow: 10m }'), 'environments.production.watch.every').message).toBe('is required: how often to probe, such as 1m');
    expect(problemAt(bad('{ every: 1m, rollbackWindow: 8d }'), 'environments.production.watch.rollbackWindow').message).toMatch(/must be a duration/);
    expect(problemAt(bad('{ every: 1m, channel: ops }'), 'environments.production.watch.channel').message).toBe('must be a Slack channel id (C…, G…)');
    expect(problemAt(bad('{ every: 1m, evry: 2m }'), 'environments.production.watch').message).toMatch(/unknown key "evry"/);
    // One problem per bad key, all at once.
    expect(bad('{ every: 0s, rollbackWindow: soon }').map((p) => p.path).sort()).toEqual(['environments.production.watch.every', 'environments.production.watch.rollbackWindow']);
  });

  it('with no allowed channels, a watch must name its channel', () => {
    const noChannels = VALID_TEXT.replace(/^slack:\n(  .*\n)+/m, '');
    const problems = problemsOf(thrown(() => parseConfig(withWatch('{ every: 1m }', noChannels), 'x.yml')), 'x.yml');
    expect(problems).toEqual([
      { path: 'environments.production.watch.channel', message: 'is required when slack.allowedChannels is empty: the channel the health watch posts to (a channel id, C…)' },
    ]);
    // Reported together with the file's other problems, not after them are fixed.
    const more = problemsOf(thrown(() => parseConfig(withWatch('{ every: 1m }', noChannels).replace('port: 22', 'port: "x"'), 'x.yml')), 'x.yml');
    expect(more.map((p) => p.path).sort()).toEqual(['environments.production.ssh.port', 'environments.production.watch.channel']);
    expect(parseConfig(withWatch('{ every: 1m, channel: C0ALERTS }', noChannels), 'x.yml').environments.production!.watch!.channel).toBe('C0ALERTS');
  });

  it('parseDuration: seconds, minutes, hours; anything else is not a duration', () => {
    expect([parseDuration('30s'), parseDuration('1m'), parseDuration('5m'), parseDuration('2h')]).toEqual([30_000, 60_000, 300_000, 7_200_000]);
    for (const t of ['', '1', '1d', '1.5m', '-1m', ' 1m', '1M', 'm']) expect(parseDuration(t), t).toBeUndefined();
  });
});

// Every fixture file is exercised by a test above (and no test names a file that is missing).
describe('fixtures', () => {
  it('the fixtures folder holds exactly the files this suite uses', () => {
    const used = [
      'apibaseurl-not-http.yml',
      'bad-fingerprint.yml',
      'bad-paths.yml',
      'duplicate-keys.yml',
      'empty.yml',
      'env-name-shell.yml',
      'missing-hostkey.yml',
      'no-environments.yml',
      'not-a-mapping.yml',
      'syntax-error.yml',
      'tagvariable-lowercase.yml',
      'two-defaults-and-more.yml',
      'two-defaults.yml',
      'unknown-keys.yml',
      'valid.yml',
      'wrong-types.yml',
      'yaml-bomb.yml',
    ];
    expect(readdirSync(FIXTURES).sort()).toEqual(used);
  });
});
