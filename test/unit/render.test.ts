// Unit tests for the renderers: src/render/slack.ts (Block Kit), text.ts (console), health.ts
// (health and version reports) and errors.ts (what an operator reads for each error code).
// Every blocks array produced here is validated against the vendored Block Kit JSON Schema, and
// the main reports are pinned as golden files under test/golden/.
import { describe, expect, it } from 'vitest';
import type { ContainerState } from '../../src/engramia/compose.js';
import type { DeepHealth, Probe, ShallowHealth, VersionInfo } from '../../src/engramia/client.js';
import type { HostState } from '../../src/engramia/host.js';
import { ChatOpsError, ErrorCode } from '../../src/errors.js';
import { describeError, errorParts } from '../../src/render/errors.js';
import { healthMsg, maintenanceOf, overallOf, versionMsg, type HealthReport } from '../../src/render/health.js';
import { code, esc, mention, type Msg, type Part } from '../../src/render/model.js';
import { LIMITS, toBlocks, toSlackMessage, type Block } from '../../src/render/slack.js';
import { toText } from '../../src/render/text.js';
import { SPECS } from '../../src/commands/specs.js';
import { helpMsg, roleOf, type HelpView } from '../../src/render/help.js';
import { LOGS_PREVIEW_LINES, logsMsg, type LogsView } from '../../src/render/logs.js';
import { statusMsg, type StatusView } from '../../src/render/status.js';
import { validateBlocks } from '../world/fake-slack.js';

// ---------------------------------------------------------------------------------------------
// Block Kit schema

function expectValidBlocks(blocks: Block[]): void {
  // Checked as the fake Slack checks every payload: the Block Kit schema, URL formats and Slack's own limits.
  expect(validateBlocks(blocks)).toEqual([]);
  expect(blocks.length).toBeLessThanOrEqual(LIMITS.blocks);
}

/** Renders, validates against the schema, and returns the Slack payload. */
function slack(msg: Msg): { text: string; blocks: Block[] } {
  const out = toSlackMessage(msg);
  expectValidBlocks(out.blocks);
  expect(out.text.length).toBeGreaterThan(0);
  expect(out.text.length).toBeLessThanOrEqual(LIMITS.fallbackText);
  return out;
}

/** Every mrkdwn/plain text string in a blocks array, in order. */
function textsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(textsOf);
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const own = (o.type === 'mrkdwn' || o.type === 'plain_text') && typeof o.text === 'string' ? [o.text] : [];
    return [...own, ...Object.values(o).flatMap(textsOf)];
  }
  return [];
}

function mrkdwnOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(mrkdwnOf);
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const own = o.type === 'mrkdwn' && typeof o.text === 'string' ? [o.text] : [];
    return [...own, ...Object.values(o).flatMap(mrkdwnOf)];
  }
  return [];
}

/**
 * No mrkdwn text carries a raw control character: the only `<…>` allowed is the requester
 * mention the renderer makes itself, and every `&` starts an entity.
 */
function expectNoRawMarkup(blocks: Block[], allowed: string[] = []): void {
  for (const t of mrkdwnOf(blocks)) {
    let rest = t;
    for (const a of allowed) rest = rest.split(a).join('');
    expect(rest, t).not.toMatch(/[<>]/);
    expect(rest.replace(/&(amp|lt|gt);/g, ''), t).not.toContain('&');
  }
}

// ---------------------------------------------------------------------------------------------
// Report builders: fixed dates and values so the goldens are stable.

const CHECKED_AT = new Date('2025-05-01T10:00:00.000Z');
const API_KEY = 'engramia_sk_render-test-key-0123456789';

const ok = <T>(value: T, httpStatus = 200): Probe<T> => ({ kind: 'ok', value, httpStatus, ms: 42 });
const failed = <T>(error: ChatOpsError): Probe<T> => ({ kind: 'failed', error, ms: 17 });

const VERSION: VersionInfo = { app_version: '0.6.1', api_version: 'v1', git_commit: '9f8e7d6c5b4a39281706f5e4d3c2b1a0', build_time: '2025-04-30T18:22:05Z' };
const SHALLOW: ShallowHealth = { status: 'ok', storage: 'postgres', pattern_count: 1234 };
const CHECKS_OK: DeepHealth['checks'] = {
  storage: { status: 'ok', latency_ms: 3.1, error: null },
  llm: { status: 'ok', latency_ms: 820.5, error: null },
  embedding: { status: 'ok', latency_ms: 210.3, error: null },
  redis: { status: 'not_configured', latency_ms: null, error: null },
  migration: { status: 'ok', latency_ms: 2.0, error: null, current_revision: '032', expected_revision: '032' },
};
const DEEP_OK: DeepHealth = { status: 'ok', version: '0.6.1', uptime_seconds: 93_784.2, checks: CHECKS_OK };

function container(service: string, tag: string | undefined, state = 'running', status = 'Up 26 hours'): ContainerState {
  const repo = service === 'engramia-api' ? 'ghcr.io/engramia/engramia' : service === 'pgvector' ? 'pgvector/pgvector' : service;
  return {
    service,
    name: `engramia-${service}-1`,
    image: tag ? `${repo}:${tag}` : repo,
    tag,
    state,
    status,
    health: '',
  };
}

const HOST_OK: HostState = {
  containers: [container('engramia-api', '0.6.1', 'running', 'Up 26 hours (healthy)'), container('pgvector', 'pg16', 'running', 'Up 9 days'), container('caddy', '2', 'running', 'Up 9 days')],
  runningTag: '0.6.1',
  apiState: 'running',
  pinnedTag: '0.6.1',
  maintenanceInEnvFile: false,
};

function report(over: Partial<HealthReport> = {}): HealthReport {
  return {
    env: 'production',
    apiBaseUrl: 'https://api.engramia.dev',
    checkedAt: CHECKED_AT,
    requestedBy: 'U01ALICE',
    jobId: '42',
    version: ok(VERSION),
    shallow: ok(SHALLOW),
    deep: ok(DEEP_OK),
    host: { kind: 'ok', value: HOST_OK, label: 'deploy@203.0.113.10:22' },
    ...over,
  };
}

const unauthorized = (path: string) =>
  new ChatOpsError(ErrorCode.ApiUnauthorized, `https://api.engramia.dev${path} rejected the API key (HTTP 401)`, {
    url: `https://api.engramia.dev${path}`,
    httpStatus: 401,
    keyEnv: 'ENGRAMIA_PROD_API_KEY',
  });
const unreachable = (path: string) =>
  new ChatOpsError(ErrorCode.ApiUnreachable, `https://api.engramia.dev${path}: connection refused`, {
    url: `https://api.engramia.dev${path}`,
    reason: 'connection refused',
    errno: 'ECONNREFUSED',
  });

const SCENARIOS: Record<string, () => HealthReport> = {
  healthy: () => report(),
  degraded: () =>
    report({
      deep: ok({ ...DEEP_OK, status: 'degraded', checks: { ...CHECKS_OK, stripe: { status: 'error', latency_ms: 145.2, error: 'AuthenticationError' } } }),
    }),
  error: () =>
    report({
      deep: ok(
        {
          ...DEEP_OK,
          status: 'error',
          checks: {
            storage: { status: 'error', latency_ms: null, error: 'OperationalError' },
            llm: { status: 'error', latency_ms: 30_000, error: 'Timeout' },
            embedding: { status: 'error', latency_ms: null, error: 'APIConnectionError' },
            redis: { status: 'not_configured', latency_ms: null, error: null },
          },
        },
        503,
      ),
      shallow: failed(new ChatOpsError(ErrorCode.ApiBadResponse, 'https://api.engramia.dev/v1/health answered HTTP 503', { url: 'https://api.engramia.dev/v1/health', httpStatus: 503, bodyExcerpt: '{"status":"error"}' })),
    }),
  maintenance: () =>
    report({
      version: { kind: 'maintenance', httpStatus: 503, retryAfter: '3600', ms: 9 },
      host: { kind: 'ok', value: { ...HOST_OK, maintenanceInEnvFile: true }, label: 'deploy@203.0.113.10:22' },
    }),
  'wrong-key': () => report({ shallow: failed(unauthorized('/v1/health')), deep: failed(unauthorized('/v1/health/deep')) }),
  unreachable: () =>
    report({
      version: failed(unreachable('/v1/version')),
      shallow: failed(unreachable('/v1/health')),
      deep: failed(unreachable('/v1/health/deep')),
    }),
  'host-key-mismatch': () =>
    report({
      host: {
        kind: 'failed',
        label: 'deploy@203.0.113.10:22',
        error: new ChatOpsError(ErrorCode.SshHostKeyMismatch, 'host key mismatch', {
          host: '203.0.113.10',
          expected: 'SHA256:q6VbXw3kLmN8pQrStUvWxYz0123456789AbCdEfGhIj',
          presented: 'SHA256:ZZZZbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKKK',
        }),
      },
    }),
};

// ---------------------------------------------------------------------------------------------

describe('health report goldens', () => {
  it.each(Object.keys(SCENARIOS))('%s', async (name) => {
    const msg = healthMsg(SCENARIOS[name]!());
    const out = slack(msg);
    await expect(`${JSON.stringify(out, null, 2)}\n`).toMatchFileSnapshot(`../golden/health-${name}.json`);
  });
});

describe('version report goldens', () => {
  const cases: Record<string, () => HealthReport> = {
    ok: () => report({ shallow: undefined, deep: undefined }),
    maintenance: () => report({ shallow: undefined, deep: undefined, version: { kind: 'maintenance', httpStatus: 503, retryAfter: '3600', ms: 9 } }),
    mismatch: () =>
      report({
        shallow: undefined,
        deep: undefined,
        host: { kind: 'ok', value: { ...HOST_OK, runningTag: '0.6.0', containers: [container('engramia-api', '0.6.0'), ...HOST_OK.containers.slice(1)] }, label: 'deploy@203.0.113.10:22' },
      }),
  };
  it.each(Object.keys(cases))('%s', async (name) => {
    const out = slack(versionMsg(cases[name]!()));
    await expect(`${JSON.stringify(out, null, 2)}\n`).toMatchFileSnapshot(`../golden/version-${name}.json`);
  });
});

describe('healthMsg content', () => {
  it('healthy: green header, version, uptime, every check and the host', () => {
    const r = SCENARIOS.healthy!();
    const msg = healthMsg(r);
    expect(overallOf(r)).toBe('ok');
    expect(msg.summary).toBe('production: healthy, version 0.6.1');
    expect(msg.parts[0]).toEqual({ type: 'header', text: '🟢 production: healthy' });
    const all = textsOf(slack(msg).blocks).join('\n');
    expect(all).toContain('`0.6.1`');
    expect(all).toContain('26 h 3 min');
    for (const check of ['storage', 'llm', 'embedding', 'redis', 'migration']) expect(all).toContain(`*${check}*`);
    expect(all).toContain('revision `032` (expected `032`)');
    expect(all).toContain('820.5 ms');
    expect(all).toContain('`engramia-api` running · `0.6.1`');
    expect(all).toContain('pinned in .env: `0.6.1`');
    expect(all).toContain('<@U01ALICE>');
    expect(all).toContain('Checked 2025-05-01 10:00:00 UTC');
    expect(all).toContain('job `42`');
  });

  it('not_configured is shown but does not make the report degraded', () => {
    const r = SCENARIOS.healthy!();
    expect(overallOf(r)).toBe('ok');
    const all = textsOf(slack(healthMsg(r)).blocks).join('\n');
    expect(all).toContain('⚪ *redis*  not configured');
    expect(all).not.toContain('degraded');
  });

  it('degraded: yellow header and the failing check with its error', () => {
    const r = SCENARIOS.degraded!();
    expect(overallOf(r)).toBe('degraded');
    const msg = healthMsg(r);
    expect(msg.parts[0]).toEqual({ type: 'header', text: '🟡 production: degraded' });
    const all = textsOf(slack(msg).blocks).join('\n');
    expect(all).toContain('🔴 *stripe*  error · 145.2 ms · `AuthenticationError`');
  });

  it('error (503): red header, the deep status code and every failing check', () => {
    const r = SCENARIOS.error!();
    expect(overallOf(r)).toBe('error');
    const msg = healthMsg(r);
    expect(msg.parts[0]).toEqual({ type: 'header', text: '🔴 production: error' });
    const all = textsOf(slack(msg).blocks).join('\n');
    expect(all).toContain('(deep: HTTP 503)');
    expect(all).toContain('`OperationalError`');
    expect(all).toContain('30000.0 ms');
  });

  it('maintenance: said in the fields and the summary; the version is hidden, not unknown', () => {
    const r = SCENARIOS.maintenance!();
    expect(maintenanceOf(r)).toEqual({ running: true, inEnvFile: true });
    const msg = healthMsg(r);
    expect(msg.summary).toContain('maintenance on');
    const all = textsOf(slack(msg).blocks).join('\n');
    expect(all).toContain('🚧 on');
    expect(all).toContain('hidden: /v1/version answers 503 in maintenance');
  });

  it('maintenance states from the host .env', () => {
    const setNotActive = report({ host: { kind: 'ok', value: { ...HOST_OK, maintenanceInEnvFile: true }, label: 'h' } });
    expect(textsOf(slack(healthMsg(setNotActive)).blocks).join('\n')).toContain('set in .env but not active');
    const endedInEnv = report({ version: { kind: 'maintenance', httpStatus: 503, retryAfter: undefined, ms: 1 }, host: { kind: 'ok', value: HOST_OK, label: 'h' } });
    expect(textsOf(slack(healthMsg(endedInEnv)).blocks).join('\n')).toContain('no longer in .env');
    const hostDown = SCENARIOS['host-key-mismatch']!();
    expect(maintenanceOf(hostDown)).toEqual({ running: false, inEnvFile: undefined });
    expect(textsOf(slack(healthMsg(hostDown)).blocks).join('\n')).toContain('off (host not checked)');
  });

  it('wrong key (401): unknown overall, names the env var and never the key', () => {
    const r = SCENARIOS['wrong-key']!();
    expect(overallOf(r)).toBe('unknown');
    const out = slack(healthMsg(r));
    const all = textsOf(out.blocks).join('\n');
    expect(all).toContain("The API rejected the bot's key (HTTP 401)");
    expect(all).toContain('`ENGRAMIA_PROD_API_KEY`');
    expect(JSON.stringify(out)).not.toContain(API_KEY);
  });

  it('API unreachable: every probe says why, the host part still shows', () => {
    const r = SCENARIOS.unreachable!();
    expect(overallOf(r)).toBe('unknown');
    const all = textsOf(slack(healthMsg(r)).blocks).join('\n');
    expect(all.match(/Engramia API unreachable: connection refused/g)).toHaveLength(3);
    expect(all).toContain('/engramia status');
    expect(all).toContain('`engramia-api` running');
  });

  it('host key mismatch: both fingerprints and what to do', () => {
    const all = textsOf(slack(healthMsg(SCENARIOS['host-key-mismatch']!())).blocks).join('\n');
    expect(all).toContain('host key does not match the pinned fingerprint');
    expect(all).toContain('`SHA256:q6VbXw3kLmN8pQrStUvWxYz0123456789AbCdEfGhIj`');
    expect(all).toContain('`SHA256:ZZZZbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKKK`');
    expect(all).toContain('ssh-keygen -lf');
  });

  it('unknown extra checks in deep health are rendered', () => {
    const r = report({
      deep: ok({
        ...DEEP_OK,
        checks: {
          ...CHECKS_OK,
          vector_index: { status: 'ok', latency_ms: 7.25, error: null },
          quota: { status: 'warning', latency_ms: null, error: 'near limit', used: 97 },
        },
      }),
    });
    const all = textsOf(slack(healthMsg(r)).blocks).join('\n');
    expect(all).toContain('🟢 *vector_index*  ok · 7.3 ms');
    expect(all).toContain('⚫ *quota*  warning · — · `near limit`');
  });

  it('a deep answer with no checks says so', () => {
    const all = textsOf(slack(healthMsg(report({ deep: ok({ status: 'ok', checks: {} }) }))).blocks).join('\n');
    expect(all).toContain('listed no checks');
  });

  it('shallow health that is not ok is called out', () => {
    const all = textsOf(slack(healthMsg(report({ shallow: ok({ status: 'degraded' }) }))).blocks).join('\n');
    expect(all).toContain('Shallow health says `degraded`');
  });

  it('escapes <, > and & in everything the host or API provides', () => {
    const hostile = '<!channel> & <https://evil.example|click> >';
    const r = report({
      apiBaseUrl: 'https://api.engramia.dev/?a=1&b=<2>',
      version: ok({ ...VERSION, app_version: `0.6.1${hostile}`, build_time: hostile, git_commit: '<!here>abcdef' }),
      deep: ok({
        ...DEEP_OK,
        checks: {
          [`<@U999>${hostile}`]: { status: 'error', latency_ms: 1, error: hostile },
          migration: { status: 'ok', latency_ms: 1, error: null, current_revision: hostile, expected_revision: '<!everyone>' },
          [hostile]: { status: hostile, latency_ms: null, error: null },
        },
      }),
      shallow: ok({ status: hostile }),
      host: {
        kind: 'ok',
        label: 'deploy@<host>&',
        value: {
          ...HOST_OK,
          pinnedTag: hostile,
          containers: [{ ...container('engramia-api', '0.6.1'), service: `api${hostile}`, state: hostile, status: hostile, tag: hostile }],
        },
      },
    });
    const out = slack(healthMsg(r));
    expectNoRawMarkup(out.blocks, ['<@U01ALICE>']);
    expect(JSON.stringify(out.blocks)).toContain('&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;');
    expectNoRawMarkup(slack(versionMsg(r)).blocks, ['<@U01ALICE>']);
  });

  it('escapes host-provided text that ends up in code blocks (error bodies, command output)', () => {
    const body = '<!channel> ping & <https://evil.example|login here>';
    const r = report({
      deep: failed(new ChatOpsError(ErrorCode.ApiBadResponse, 'bad', { url: 'u', httpStatus: 500, bodyExcerpt: body })),
      host: { kind: 'failed', label: 'h', error: new ChatOpsError(ErrorCode.RemoteCommandFailed, '`docker compose ps` exited with 1', { outputTail: body }) },
    });
    const out = slack(healthMsg(r));
    expectNoRawMarkup(out.blocks, ['<@U01ALICE>']);
  });

  it('is pure: the same report renders to the same blocks, and the report is not changed', () => {
    const r = SCENARIOS.degraded!();
    const before = JSON.stringify(r);
    expect(toBlocks(healthMsg(r))).toEqual(toBlocks(healthMsg(r)));
    expect(JSON.stringify(r)).toBe(before);
  });
});

describe('overallOf', () => {
  it('follows the deep status the API computed', () => {
    for (const status of ['ok', 'degraded', 'error'] as const) {
      expect(overallOf(report({ deep: ok({ ...DEEP_OK, status }) }))).toBe(status);
    }
  });

  it('a deep probe that failed is unknown, even when the version answered', () => {
    expect(overallOf(report({ deep: failed(unauthorized('/v1/health/deep')) }))).toBe('unknown');
  });

  it('without a deep probe (version command): ok when the version answered, unknown when it failed', () => {
    expect(overallOf(report({ deep: undefined }))).toBe('ok');
    expect(overallOf(report({ deep: undefined, version: failed(unreachable('/v1/version')) }))).toBe('unknown');
  });

  it('a not_configured check does not turn ok into degraded', () => {
    const checks = { storage: { status: 'ok', latency_ms: 1, error: null }, redis: { status: 'not_configured', latency_ms: null, error: null } };
    expect(overallOf(report({ deep: ok({ status: 'ok', checks }) }))).toBe('ok');
  });
});

describe('versionMsg content', () => {
  it('ok: version, short commit and build time', () => {
    const msg = versionMsg(report());
    expect(msg.summary).toBe('production: version 0.6.1');
    expect(msg.parts[0]).toEqual({ type: 'header', text: 'production: version 0.6.1' });
    const all = textsOf(slack(msg).blocks).join('\n');
    expect(all).toContain('`9f8e7d6c5b4a`');
    expect(all).not.toContain('9f8e7d6c5b4a3');
    expect(all).toContain('2025-04-30T18:22:05Z');
    expect(all).not.toContain('⚠️');
  });

  it('maintenance: says so and shows the tag the host runs', () => {
    const msg = versionMsg(report({ version: { kind: 'maintenance', httpStatus: 503, retryAfter: '3600', ms: 1 } }));
    expect(msg.summary).toBe('production: version 0.6.1 (maintenance on)');
    expect(msg.parts[0]).toEqual({ type: 'header', text: '🚧 production: in maintenance' });
    expect(textsOf(slack(msg).blocks).join('\n')).toContain('the host runs image tag `0.6.1`');
  });

  it('mismatch: the API and the container disagree', () => {
    const msg = versionMsg(report({ host: { kind: 'ok', value: { ...HOST_OK, runningTag: '0.6.0' }, label: 'h' } }));
    expect(textsOf(slack(msg).blocks).join('\n')).toContain('⚠️ The API reports `0.6.1` but the engramia-api container runs image tag `0.6.0`.');
  });

  it('failed: version unknown, the error, and the running tag', () => {
    const msg = versionMsg(report({ version: failed(unreachable('/v1/version')) }));
    expect(msg.summary).toBe('production: version 0.6.1');
    expect(msg.parts[0]).toEqual({ type: 'header', text: 'production: version unknown' });
    const all = textsOf(slack(msg).blocks).join('\n');
    expect(all).toContain('Engramia API unreachable: connection refused');
    expect(all).toContain('The host runs image tag `0.6.1`.');
    const nothing = versionMsg(report({ version: failed(unreachable('/v1/version')), host: { kind: 'failed', label: 'h', error: unreachable('x') } }));
    expect(nothing.summary).toBe('production: version unknown');
    slack(nothing);
  });
});

// ---------------------------------------------------------------------------------------------

const SAMPLE_ERRORS: ChatOpsError[] = [
  new ChatOpsError(ErrorCode.ConfigInvalid, 'chatops.yml: 1 problem:\n  - chatops.yml: environments: <bad>', {}),
  new ChatOpsError(ErrorCode.SecretMissing, 'chatops.yml: 1 problem:\n  - chatops.yml: environments.production.apiKeyEnv: not set', {}),
  new ChatOpsError(ErrorCode.CommandInvalid, 'Unknown option "--force" for `deploy`.', { command: 'deploy', usage: '/engramia deploy VERSION [ENV] [--maintenance | --no-maintenance] [--dry-run]' }),
  new ChatOpsError(ErrorCode.ChannelNotAllowed, 'Commands are accepted only in the ops channel.', { allowed: ['C0OPS', 'C0DEPLOY'] }),
  new ChatOpsError(ErrorCode.EnvUnknown, 'Unknown environment "prod".', { known: ['production', 'staging'] }),
  new ChatOpsError(ErrorCode.Forbidden, 'Only deployers may deploy.', { who: 'Deployers: <@U01ALICE>' }),
  new ChatOpsError(ErrorCode.QueueUnavailable, 'redis down', {}),
  new ChatOpsError(ErrorCode.Locked, 'production is locked by deploy 0.6.1 (U01ALICE, 4 min ago).', { env: 'production', jobId: 'deploy-abc', holderUser: 'U01ALICE', holderCommand: 'deploy 0.6.1', since: '4 min ago' }),
  new ChatOpsError(ErrorCode.Cancelled, 'the downgrade was cancelled by U03CAROL', { by: 'U03CAROL' }),
  new ChatOpsError(ErrorCode.Replay, 'replayed request', {}),
  new ChatOpsError(ErrorCode.NoRollbackTarget, "The bot's history has no version to go back to on production.", { env: 'production' }),
  new ChatOpsError(ErrorCode.SshHostKeyMismatch, 'mismatch', { host: '203.0.113.10', expected: 'SHA256:aaa', presented: 'SHA256:bbb' }),
  new ChatOpsError(ErrorCode.SshAuthFailed, 'auth', { host: '203.0.113.10', username: 'deploy' }),
  new ChatOpsError(ErrorCode.SshConnectFailed, 'connect', { host: '203.0.113.10', reason: 'connection refused' }),
  new ChatOpsError(ErrorCode.SshTimeout, '`docker compose pull` did not finish within 600 s', { killed: true }),
  new ChatOpsError(ErrorCode.SshDisconnected, 'The SSH connection dropped.', { started: false }),
  new ChatOpsError(ErrorCode.Interrupted, 'command interrupted on deploy@host:22: the worker is stopping', { remotePid: 4242, killed: true }),
  new ChatOpsError(ErrorCode.JobLockLost, 'job 17 is owned by another worker now', { jobId: '17' }),
  new ChatOpsError(ErrorCode.RemoteCommandFailed, '`docker compose up -d` exited with 1', { outputTail: 'Error response from daemon: pull access denied\n<!channel>' }),
  new ChatOpsError(ErrorCode.ImageNotFound, '9.9.9 is not in the registry (ghcr.io answered "manifest unknown"); nothing was changed', { outputTail: 'Error response from daemon: manifest for ghcr.io/engramia/engramia:9.9.9 not found: manifest unknown: manifest unknown' }),
  new ChatOpsError(ErrorCode.UnsafeArgument, 'argument contains a NUL byte', {}),
  new ChatOpsError(ErrorCode.ApiUnreachable, 'dns', { url: 'https://api.engramia.dev/v1/version', reason: 'DNS lookup failed' }),
  new ChatOpsError(ErrorCode.ApiTimeout, 'https://api.engramia.dev/v1/health/deep did not answer within 20 s', { timeoutMs: 20_000 }),
  new ChatOpsError(ErrorCode.ApiUnauthorized, '401', { httpStatus: 401, keyEnv: 'ENGRAMIA_PROD_API_KEY' }),
  new ChatOpsError(ErrorCode.ApiMaintenance, 'maintenance', {}),
  new ChatOpsError(ErrorCode.ApiRateLimited, 'https://api.engramia.dev/v1/version is rate limiting the bot (HTTP 429)', { retryAfter: '60' }),
  new ChatOpsError(ErrorCode.ApiBadResponse, 'https://api.engramia.dev/v1/health answered HTTP 502', { httpStatus: 502, bodyExcerpt: '' }),
  new ChatOpsError(ErrorCode.SlackApiError, 'chat.postMessage failed: invalid_blocks', { slackError: 'invalid_blocks' }),
  new ChatOpsError(ErrorCode.Internal, `TypeError: x is undefined\n    at secret (/app/dist/${API_KEY}.js:1:1)`, {}),
];

describe('describeError / errorParts', () => {
  it('every error code has a view (the sample list covers them all)', () => {
    expect(new Set(SAMPLE_ERRORS.map((e) => e.code))).toEqual(new Set(Object.values(ErrorCode)));
  });

  it.each(SAMPLE_ERRORS.map((e) => [e.code, e] as const))('%s: a title, schema-valid blocks, no raw markup', (_code, err) => {
    const view = describeError(err);
    expect(view.title.trim()).not.toBe('');
    const parts = errorParts(err);
    expect(parts[0]).toEqual({ type: 'section', text: `❌ *${view.title}*` });
    const out = slack({ summary: 'failed', parts });
    expectNoRawMarkup(out.blocks, ['<#C0OPS>', '<#C0DEPLOY>', '<@U01ALICE>']);
  });

  it('COMMAND_INVALID: the message and the usage line', () => {
    const v = describeError(SAMPLE_ERRORS.find((e) => e.code === ErrorCode.CommandInvalid)!);
    expect(v.title).toBe('Unknown option "--force" for `deploy`.');
    expect(v.hint).toBe('Usage: `/engramia deploy VERSION [ENV] [--maintenance | --no-maintenance] [--dry-run]`');
    expect(describeError(new ChatOpsError(ErrorCode.CommandInvalid, 'a < b', {}))).toEqual({ title: 'a &lt; b' });
  });

  it('CHANNEL_NOT_ALLOWED links the allowed channels', () => {
    expect(describeError(SAMPLE_ERRORS.find((e) => e.code === ErrorCode.ChannelNotAllowed)!).hint).toBe('Run it in <#C0OPS>, <#C0DEPLOY>.');
    expect(describeError(new ChatOpsError(ErrorCode.ChannelNotAllowed, 'no', {})).hint).toBe('Run it in an allowed channel.');
  });

  it('ENV_UNKNOWN lists the known environments', () => {
    expect(describeError(SAMPLE_ERRORS.find((e) => e.code === ErrorCode.EnvUnknown)!).hint).toBe('Known environments: `production`, `staging`.');
  });

  it('API_UNREACHABLE: the DNS hint for DNS, the container hint otherwise', () => {
    const dns = describeError(SAMPLE_ERRORS.find((e) => e.code === ErrorCode.ApiUnreachable)!);
    expect(dns.title).toBe('Engramia API unreachable: DNS lookup failed.');
    expect(dns.detail).toBe('`https://api.engramia.dev/v1/version`');
    expect(dns.hint).toContain('apiBaseUrl');
    expect(describeError(unreachable('/v1/version')).hint).toContain('Caddy');
  });

  it('API_UNAUTHORIZED names the variable that holds the key', () => {
    const v = describeError(SAMPLE_ERRORS.find((e) => e.code === ErrorCode.ApiUnauthorized)!);
    expect(v.title).toBe("The API rejected the bot's key (HTTP 401).");
    expect(v.hint).toContain('`ENGRAMIA_PROD_API_KEY`');
    expect(v.hint).toContain('ENGRAMIA_API_KEYS');
  });

  it('API_BAD_RESPONSE 502 explains Caddy; its body goes in a code block', () => {
    const v = describeError(SAMPLE_ERRORS.find((e) => e.code === ErrorCode.ApiBadResponse)!);
    expect(v.hint).toContain('502 from Caddy');
    const parts = errorParts(new ChatOpsError(ErrorCode.ApiBadResponse, 'x', { httpStatus: 500, bodyExcerpt: 'Internal Server Error' }));
    expect(parts).toContainEqual({ type: 'code', text: 'Internal Server Error' });
  });

  it('REMOTE_COMMAND_FAILED puts the output tail in a code block, never inline', () => {
    const parts = errorParts(SAMPLE_ERRORS.find((e) => e.code === ErrorCode.RemoteCommandFailed)!, '⚠️');
    expect(parts[0]).toEqual({ type: 'section', text: '⚠️ *`docker compose up -d` exited with 1*' });
    expect(parts[1]).toEqual({ type: 'code', text: 'Error response from daemon: pull access denied\n<!channel>' });
  });

  it('SSH_HOST_KEY_MISMATCH shows both fingerprints', () => {
    const v = describeError(SAMPLE_ERRORS.find((e) => e.code === ErrorCode.SshHostKeyMismatch)!);
    expect(v.title).toContain('`203.0.113.10`');
    expect(v.detail).toBe('Pinned (config): `SHA256:aaa`\nPresented by the host: `SHA256:bbb`');
  });

  it('SSH_TIMEOUT and SSH_DISCONNECTED say whether anything may still run', () => {
    expect(describeError(new ChatOpsError(ErrorCode.SshTimeout, 't', { killed: false })).detail).toContain('could not confirm');
    expect(describeError(new ChatOpsError(ErrorCode.SshDisconnected, 'd', { started: true })).hint).toContain('Check the host state');
    expect(describeError(new ChatOpsError(ErrorCode.SshDisconnected, 'd', { started: false })).hint).toContain('safe to retry');
  });

  it('API_RATE_LIMITED: Retry-After, 60 s by default', () => {
    expect(describeError(new ChatOpsError(ErrorCode.ApiRateLimited, 'r', { retryAfter: '30' })).hint).toBe('Retry after 30 s.');
    expect(describeError(new ChatOpsError(ErrorCode.ApiRateLimited, 'r', {})).hint).toBe('Retry after 60 s.');
  });

  it('INTERNAL never shows the message (stack traces, paths, secrets)', () => {
    const err = SAMPLE_ERRORS.find((e) => e.code === ErrorCode.Internal)!;
    const out = JSON.stringify(errorParts(err));
    expect(out).not.toContain('TypeError');
    expect(out).not.toContain(API_KEY);
    expect(describeError(err)).toEqual({ title: 'Unexpected error in the bot.', hint: 'Details are in the bot log.' });
  });

  it('escapes the message of codes that show it', () => {
    for (const c of [ErrorCode.CommandInvalid, ErrorCode.EnvUnknown, ErrorCode.Forbidden, ErrorCode.SshTimeout, ErrorCode.RemoteCommandFailed, ErrorCode.ApiTimeout, ErrorCode.ApiRateLimited]) {
      expect(describeError(new ChatOpsError(c, '<!channel> & co', {})).title, c).toBe('&lt;!channel&gt; &amp; co');
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('toBlocks / toSlackMessage limits', () => {
  const button = (actionId: string, over: Partial<{ text: string; value: string }> = {}) => ({ actionId, text: 'Go', value: 'gate-1', ...over });

  it('60 parts: at most 50 blocks, the trailing actions kept, the cut announced', () => {
    const parts: Part[] = Array.from({ length: 60 }, (_, i) => ({ type: 'section', text: `line ${i}` }) as Part);
    const actions: Part = { type: 'actions', buttons: [button('deploy.approve', { text: 'Approve' }), { ...button('deploy.cancel', { text: 'Cancel' }), style: 'danger' }] };
    const blocks = slack({ summary: 'many', parts: [...parts, actions] }).blocks;
    expect(blocks).toHaveLength(LIMITS.blocks);
    expect(blocks[blocks.length - 1]).toEqual(toBlocks({ summary: '', parts: [actions] })[0]);
    const note = blocks[blocks.length - 2]!;
    expect(note.type).toBe('context');
    expect(JSON.stringify(note)).toContain('12 more blocks not shown');
    expect(blocks[0]).toEqual({ type: 'section', text: { type: 'mrkdwn', text: 'line 0' } });
    expect(blocks[47]).toEqual({ type: 'section', text: { type: 'mrkdwn', text: 'line 47' } });
  });

  it('60 parts without actions: 49 kept and a note', () => {
    const parts: Part[] = Array.from({ length: 60 }, (_, i) => ({ type: 'section', text: `line ${i}` }) as Part);
    const blocks = slack({ summary: 'many', parts }).blocks;
    expect(blocks).toHaveLength(LIMITS.blocks);
    expect(blocks[48]).toEqual({ type: 'section', text: { type: 'mrkdwn', text: 'line 48' } });
    expect(JSON.stringify(blocks[49])).toContain('11 more blocks not shown');
  });

  it('exactly 50 blocks are left alone', () => {
    const parts: Part[] = Array.from({ length: 50 }, (_, i) => ({ type: 'section', text: `line ${i}` }) as Part);
    const blocks = slack({ summary: 'fifty', parts }).blocks;
    expect(blocks).toHaveLength(50);
    expect(JSON.stringify(blocks)).not.toContain('not shown');
  });

  it('10 kB of code is clipped to 3000 characters, keeping the tail', () => {
    const lines = Array.from({ length: 400 }, (_, i) => `log line ${String(i).padStart(4, '0')} ${'x'.repeat(14)}`);
    const text = lines.join('\n');
    expect(text.length).toBeGreaterThan(10_000);
    const blocks = slack({ summary: 'logs', parts: [{ type: 'code', text }] }).blocks;
    expect(blocks).toHaveLength(1);
    const body = (blocks[0]!.text as { text: string }).text;
    expect(body.length).toBeLessThanOrEqual(LIMITS.sectionText);
    expect(body.startsWith('```\n…(earlier lines cut)\n')).toBe(true);
    expect(body.endsWith(`${lines[399]}\n\`\`\``)).toBe(true);
    expect(body).toContain(lines[350]);
    expect(body).not.toContain(lines[0]);
  });

  it('a titled code block stays inside the limit too', () => {
    const blocks = slack({ summary: 'logs', parts: [{ type: 'code', title: '*Output of* `docker compose pull`', text: 'y'.repeat(10_000) }] }).blocks;
    const body = (blocks[0]!.text as { text: string }).text;
    expect(body.length).toBeLessThanOrEqual(LIMITS.sectionText);
    expect(body.startsWith('*Output of* `docker compose pull`\n```\n')).toBe(true);
  });

  it('10 kB of code full of characters that need escaping still fits in 3000', () => {
    const blocks = slack({ summary: 'logs', parts: [{ type: 'code', text: '<&>'.repeat(4000) }] }).blocks;
    expect(((blocks[0]!.text as { text: string }).text).length).toBeLessThanOrEqual(LIMITS.sectionText);
  });

  it('a fence inside code cannot close the block; empty code still renders', () => {
    const blocks = slack({ summary: 'c', parts: [{ type: 'code', text: 'a```b' }, { type: 'code', text: '' }] }).blocks;
    expect((blocks[0]!.text as { text: string }).text).toBe("```\na'''b\n```");
    expect((blocks[1]!.text as { text: string }).text).toBe('```\n \n```');
  });

  it('code text is escaped for mrkdwn', () => {
    const blocks = slack({ summary: 'c', parts: [{ type: 'code', text: 'if a < b && c > d' }] }).blocks;
    expect((blocks[0]!.text as { text: string }).text).toBe('```\nif a &lt; b &amp;&amp; c &gt; d\n```');
  });

  it('clips header, section, field, context, button and confirm texts to their limits', () => {
    const long = 'é'.repeat(5000);
    const msg: Msg = {
      summary: long,
      parts: [
        { type: 'header', text: long },
        { type: 'section', text: long },
        { type: 'fields', items: Array.from({ length: 13 }, () => long) },
        { type: 'context', items: Array.from({ length: 14 }, () => long) },
        {
          type: 'actions',
          buttons: Array.from({ length: 30 }, (_, i) => ({
            actionId: `step.retry.${i}`,
            text: long,
            value: 'v'.repeat(3000),
            confirm: { title: long, text: long, confirm: long, deny: long },
          })),
        },
      ],
    };
    const out = slack(msg);
    expect(out.text.length).toBe(LIMITS.fallbackText);
    const [header, section, fields1, fields2, context, actions] = out.blocks;
    expect((header!.text as { text: string }).text.length).toBe(LIMITS.headerText);
    expect((section!.text as { text: string }).text.length).toBe(LIMITS.sectionText);
    expect((fields1!.fields as unknown[]).length).toBe(10);
    expect((fields2!.fields as unknown[]).length).toBe(3);
    expect((context!.elements as unknown[]).length).toBe(10);
    expect((actions!.elements as unknown[]).length).toBe(25);
  });

  it('the fallback text is escaped too: Slack reads `text` as mrkdwn, and summaries carry API values', () => {
    // healthMsg/versionMsg put the API's app_version into the summary unescaped (it is "plain text").
    const r = report({ version: ok({ ...VERSION, app_version: '0.6.1 <!channel> & <https://evil.example|x>' }) });
    for (const msg of [healthMsg(r), versionMsg(r)]) {
      const { text } = slack(msg);
      expect(text).not.toMatch(/[<>]/);
      expect(text).toContain('&lt;!channel&gt; &amp;');
    }
  });

  it('drops empty sections and contexts', () => {
    expect(toBlocks({ summary: 's', parts: [{ type: 'section', text: '  \n' }, { type: 'context', items: [] }, { type: 'divider' }] })).toEqual([{ type: 'divider' }]);
  });

  it('renders buttons with action ids, values, style and confirm', () => {
    const blocks = slack({
      summary: 'gate',
      parts: [
        {
          type: 'actions',
          buttons: [
            { actionId: 'downgrade.confirm', text: 'Downgrade', value: 'job-7:gate-2', style: 'danger', confirm: { title: 'Sure?', text: 'This *drops* data.', confirm: 'Yes', deny: 'No' } },
            { actionId: 'downgrade.cancel', text: 'Cancel', value: 'job-7:gate-2' },
          ],
        },
      ],
    }).blocks;
    expect(blocks).toEqual([
      {
        type: 'actions',
        elements: [
          {
            type: 'button',
            action_id: 'downgrade.confirm',
            text: { type: 'plain_text', text: 'Downgrade', emoji: true },
            value: 'job-7:gate-2',
            style: 'danger',
            confirm: {
              title: { type: 'plain_text', text: 'Sure?' },
              text: { type: 'mrkdwn', text: 'This *drops* data.' },
              confirm: { type: 'plain_text', text: 'Yes' },
              deny: { type: 'plain_text', text: 'No' },
            },
          },
          { type: 'button', action_id: 'downgrade.cancel', text: { type: 'plain_text', text: 'Cancel', emoji: true }, value: 'job-7:gate-2' },
        ],
      },
    ]);
  });
});

describe('model helpers', () => {
  it('esc escapes the three mrkdwn control characters, & first', () => {
    expect(esc('a & b < c > d &lt;')).toBe('a &amp; b &lt; c &gt; d &amp;lt;');
  });

  it('code makes an inline span that a backtick cannot end', () => {
    expect(code('a`b<c>')).toBe("`a'b&lt;c&gt;`");
  });

  it('mention only links real user ids', () => {
    expect(mention('U01ALICE')).toBe('<@U01ALICE>');
    expect(mention('W123')).toBe('<@W123>');
    expect(mention('<!channel>')).toBe('&lt;!channel&gt;');
    expect(mention('console')).toBe('console');
  });
});

describe('toText (console)', () => {
  it('renders every part type as plain text', () => {
    const text = toText({
      summary: 's',
      parts: [
        { type: 'header', text: '🟢 production: healthy' },
        { type: 'section', text: 'a &lt; b &amp; c &gt; d, by <@U01ALICE>, see <https://x.example|the docs>' },
        { type: 'fields', items: ['*Version*\n`0.6.1`', '*Uptime*\n5 s'] },
        { type: 'context', items: ['one', 'two'] },
        { type: 'code', title: 'Output', text: 'line 1\nline 2' },
        { type: 'divider' },
        { type: 'actions', buttons: [{ actionId: 'a', text: 'Approve', value: 'v' }, { actionId: 'b', text: 'Cancel', value: 'v' }] },
        { type: 'section', text: '' },
      ],
    });
    expect(text).toBe(
      [
        '== 🟢 production: healthy ==',
        'a < b & c > d, by @U01ALICE, see the docs (https://x.example)',
        '  *Version* `0.6.1`',
        '  *Uptime* 5 s',
        'one  ·  two',
        'Output',
        '  | line 1',
        '  | line 2',
        '----',
        '  [1] Approve',
        '  [2] Cancel',
      ].join('\n'),
    );
  });

  it('a health report reads well in a terminal: no entities left', () => {
    const text = toText(healthMsg(SCENARIOS.degraded!()));
    expect(text.split('\n')[0]).toBe('== 🟡 production: degraded ==');
    expect(text).toContain('@U01ALICE');
    expect(text).toContain('AuthenticationError');
    expect(text).not.toMatch(/&(amp|lt|gt);/);
  });

  it('code text is shown exactly as the host printed it', () => {
    expect(toText({ summary: 's', parts: [{ type: 'code', text: 'a < b && c' }] })).toBe('  | a < b && c');
  });
});

// ---------------------------------------------------------------------------------------------
// help, logs and status (src/render/help.ts, logs.ts, status.ts)

describe('helpMsg', () => {
  const view: HelpView = {
    commands: SPECS,
    access: { deployers: ['U01ALICE', 'S0DEPLOY'], approvers: ['U02BOB'], admins: ['U03CAROL'] },
    allowedChannels: ['C0OPS'],
    envNames: ['production', 'staging'],
    defaultEnv: 'production',
  };

  it('valid Block Kit within limits: every section under 3000 characters, at most 50 blocks', () => {
    const { blocks } = slack(helpMsg(view));
    expect(blocks.length).toBeLessThanOrEqual(LIMITS.blocks);
    for (const t of mrkdwnOf(blocks)) expect(t.length).toBeLessThanOrEqual(LIMITS.sectionText);
    // Nothing was clipped to fit: the renderer's clip marker never shows.
    expect(JSON.stringify(blocks)).not.toContain('more block');
  });

  it('usage, an example and who may run it, for every command', () => {
    const { blocks } = slack(helpMsg(view));
    for (const s of SPECS) {
      const section = mrkdwnOf(blocks).find((t) => t.startsWith(code(`/engramia ${s.usage}`)));
      expect(section, s.name).toBeDefined();
      expect(section).toContain(`e.g. ${code(`/engramia ${s.example}`)}`);
      expect(section).toMatch(/👤 (anyone|deployers|admins|who started the job, or admins)$/);
    }
    const all = mrkdwnOf(blocks).join('\n');
    expect(all).toContain('*Read-only*: anyone in <#C0OPS>');
    expect(all).toContain('deployers (`access.deployers`): <@U01ALICE>, <!subteam^S0DEPLOY>');
    expect(all).toContain('admins (`access.admins`): <@U03CAROL>');
    expect(all).toContain('approvers (`access.approvers`): <@U02BOB>');
    expect(all).toContain('`production` is used');
    expect(mrkdwnOf(blocks).find((t) => t.startsWith('`/engramia deploy '))).toContain('👤 deployers');
    expect(mrkdwnOf(blocks).find((t) => t.startsWith('`/engramia unlock '))).toContain('👤 admins');
    expect(mrkdwnOf(blocks).find((t) => t.startsWith('`/engramia logs '))).toContain('👤 anyone');
  });

  it('the same rule as the command path: mutating commands need deployers, unlock admins', () => {
    expect(SPECS.filter((s) => roleOf(s) === 'deployers').map((s) => s.name)).toEqual(['deploy', 'rollback', 'maintenance', 'migrate']);
    expect(SPECS.filter((s) => roleOf(s) === 'admins').map((s) => s.name)).toEqual(['unlock']);
  });

  it('says when nobody is configured, when commands work anywhere, and when there is no default environment', () => {
    const all = mrkdwnOf(slack(helpMsg({ ...view, access: { deployers: [], approvers: [], admins: [] }, allowedChannels: [], defaultEnv: undefined })).blocks).join('\n');
    expect(all).toContain('deployers (`access.deployers`): _nobody is configured_');
    expect(all).toContain('*Read-only*: anyone');
    expect(all).toContain('no default');
  });

  it('a long access list is cut to a few names and a count', () => {
    const many = Array.from({ length: 300 }, (_, i) => `U${String(i).padStart(8, '0')}`);
    const { blocks } = slack(helpMsg({ ...view, access: { deployers: many, approvers: many, admins: many } }));
    expect(mrkdwnOf(blocks).join('\n')).toContain('and 292 more');
  });
});

describe('logsMsg', () => {
  const base: LogsView = {
    env: 'production',
    host: 'deploy@203.0.113.10:22',
    service: 'engramia-api',
    requested: 5,
    lines: ['INFO: a <!channel> & b', 'INFO: second'],
    command: 'docker compose -f docker-compose.prod.yml logs --tail=5 engramia-api',
    truncated: false,
    requestedBy: 'U01ALICE',
    jobId: 'j1',
  };

  it('short logs: one code block, the command and the redaction note; host text escaped', () => {
    const { blocks } = slack(logsMsg(base));
    expectNoRawMarkup(blocks, ['<@U01ALICE>']);
    const all = mrkdwnOf(blocks).join('\n');
    expect(all).toContain('```\nINFO: a &lt;!channel&gt; &amp; b\nINFO: second\n```');
    expect(all).toContain('asked for 5; that is all the log has');
    expect(all).toContain('`docker compose -f docker-compose.prod.yml logs --tail=5 engramia-api`');
    expect(all).toContain('`[redacted]`');
  });

  it('long logs: the last lines as a preview and where the file is', () => {
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i}`);
    const { blocks } = slack(logsMsg({ ...base, requested: 200, lines, file: { filename: 'production-engramia-api-j1.log' } }));
    const all = mrkdwnOf(blocks).join('\n');
    expect(all).toContain(`line 199`);
    expect(all).toContain(`line ${200 - LOGS_PREVIEW_LINES}`);
    expect(all).not.toContain(`line ${199 - LOGS_PREVIEW_LINES}\n`);
    expect(all).toContain('All 200 lines are in `production-engramia-api-j1.log`');
  });

  it('an empty log says so, with no code block', () => {
    const { blocks } = slack(logsMsg({ ...base, lines: [] }));
    expect(mrkdwnOf(blocks).join('\n')).toContain('log on `deploy@203.0.113.10:22` is empty');
    expect(JSON.stringify(blocks)).not.toContain('```');
  });
});

describe('statusMsg: the job holding the lock', () => {
  const now = new Date('2026-11-26T10:00:00Z');
  const base: StatusView = {
    env: 'production',
    host: 'deploy@h:22',
    runningTag: '0.6.0',
    pinnedTag: '0.6.0',
    containers: [],
    revision: '031',
    maintenance: { inEnvFile: false, active: false, warnAfterMinutes: 30 },
    requestedBy: 'U01ALICE',
    jobId: 'status-1',
    now,
  };
  const lock = { jobId: 'deploy-1', user: 'U01ALICE', command: 'deploy 0.6.1', startedAt: '2026-11-26T09:58:00Z', ago: '2 min ago', channel: 'C0OPS' };
  const url = 'https://t.slack.com/archives/C0OPS/p1';

  it('waiting at a gate: the question, the thread link and when it takes the safe branch', () => {
    const job = { channel: 'C0OPS', phase: 'waiting' as const, threadUrl: url, gate: { question: 'Enable maintenance mode for deploying 0.6.1 to production?', expiresAt: '2026-11-26T10:14:00Z' } };
    const out = slack(statusMsg({ ...base, lock: { ...lock, job } }));
    const all = mrkdwnOf(out.blocks).join('\n');
    expect(all).toContain('⏸️ *Waiting at a gate*: “Enable maintenance mode for deploying 0.6.1 to production?” Answer in <https://t.slack.com/archives/C0OPS/p1|its thread>');
    expect(all).toContain('safe branch in 14 min');
    expect(out.text).toContain('(waiting at a gate)');
  });

  it('running: the step and the thread link; without a link, the channel', () => {
    const job = { channel: 'C0OPS', phase: 'running' as const, threadUrl: url, step: { title: 'Pull 0.6.1', index: 3, of: 12 } };
    expect(mrkdwnOf(slack(statusMsg({ ...base, lock: { ...lock, job } })).blocks).join('\n')).toContain('▶️ *Running* step 3 of 12: Pull 0.6.1. Follow it in <https://t.slack.com/archives/C0OPS/p1|its thread>.');
    const noLink = { channel: 'C0OPS', phase: 'queued' as const };
    expect(mrkdwnOf(slack(statusMsg({ ...base, lock: { ...lock, job: noLink } })).blocks).join('\n')).toContain('⏳ *Queued*, waiting for a worker. Follow it in its card in <#C0OPS>.');
  });

  it('a gate question from job data is escaped', () => {
    const job = { channel: 'C0OPS', phase: 'waiting' as const, gate: { question: 'Go <!here> & on?', expiresAt: '2026-11-26T10:00:30Z' } };
    const all = mrkdwnOf(slack(statusMsg({ ...base, lock: { ...lock, job } })).blocks).join('\n');
    expect(all).toContain('“Go &lt;!here&gt; &amp; on?”');
    expect(all).toContain('safe branch in 30 s');
  });

  it('the API disagreeing with the container is shown next to the running tag', () => {
    const all = mrkdwnOf(slack(statusMsg({ ...base, apiVersion: '0.5.9' })).blocks).join('\n');
    expect(all).toContain('*Running*\n`0.6.0`\n⚠️ the API reports `0.5.9`');
    expect(mrkdwnOf(slack(statusMsg({ ...base, apiVersion: '0.6.0' })).blocks).join('\n')).not.toContain('the API reports');
  });
});
