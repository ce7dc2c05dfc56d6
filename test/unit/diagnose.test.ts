// Unit tests for `diagnose`: the pure symptom matcher (src/diagnose/match.ts), the report
// renderer (src/render/diagnose.ts, golden files under test/golden/diagnose-*.json, every
// blocks array validated against the Block Kit schema), the .env shape parser and the fix
// buttons' mapping back to typed commands.
import { describe, expect, it, vi } from 'vitest';
import { handleFixPress } from '../../src/commands/fixes.js';
import { parseEnvShapes } from '../../src/diagnose/commands.js';
import type { DiagnoseFacts, Ran } from '../../src/diagnose/facts.js';
import { FIXES, fixCommandText } from '../../src/diagnose/fixes.js';
import { matchFindings, type Finding } from '../../src/diagnose/match.js';
import type { DeepHealth, Probe, VersionInfo } from '../../src/engramia/client.js';
import type { ContainerState } from '../../src/engramia/compose.js';
import type { HostState } from '../../src/engramia/host.js';
import { ChatOpsError, ErrorCode } from '../../src/errors.js';
import type { Origin } from '../../src/jobs/types.js';
import { diagnoseMsg } from '../../src/render/diagnose.js';
import type { Msg } from '../../src/render/model.js';
import { LIMITS, toSlackMessage, type Block } from '../../src/render/slack.js';
import { validateBlocks } from '../world/fake-slack.js';

function slack(msg: Msg): { text: string; blocks: Block[] } {
  const out = toSlackMessage(msg);
  // Checked as the fake Slack checks every payload: the Block Kit schema, URL formats and Slack's own limits.
  expect(validateBlocks(out.blocks)).toEqual([]);
  expect(out.blocks.length).toBeLessThanOrEqual(LIMITS.blocks);
  return out;
}

const all = (blocks: Block[]) => JSON.stringify(blocks);

// ---------------------------------------------------------------------------------------------
// Fixtures: a healthy host, changed one fact at a time.

const STRIPE_KEY = 'sk_live_51HxUnitTestKeyThatMustNeverShow000';

function container(service: string, tag: string | undefined, state = 'running', status = 'Up 26 hours', health = ''): ContainerState {
  return { service, name: service, image: tag ? `img/${service}:${tag}` : `img/${service}`, tag, state, status, health };
}

const HOST: HostState = {
  containers: [container('caddy', '2.8-alpine'), container('engramia-api', '0.6.0'), container('pgvector', 'pg16', 'running', 'Up 9 days (healthy)', 'healthy')],
  runningTag: '0.6.0',
  apiState: 'running',
  pinnedTag: '0.6.0',
  maintenanceInEnvFile: false,
};

const LOGS = ['INFO:     Started server process [1]', 'INFO:     Application startup complete.', 'INFO:     172.18.0.4:51234 - "GET /v1/health HTTP/1.1" 200 OK'];

const CHECKS: DeepHealth['checks'] = {
  storage: { status: 'ok', latency_ms: 3.1, error: null },
  llm: { status: 'ok', latency_ms: 820.5, error: null },
  embedding: { status: 'ok', latency_ms: 210.3, error: null },
  redis: { status: 'not_configured', latency_ms: null, error: null },
  stripe: { status: 'ok', latency_ms: 145.2, error: null },
  migration: { status: 'ok', latency_ms: 2.0, error: null, current_revision: '031', expected_revision: '031' },
};

const okProbe = <T>(value: T, httpStatus = 200): Probe<T> => ({ kind: 'ok', value, httpStatus, ms: 5 });
const ran = (command: string, output: string, exitCode = 0): Ran => ({ command, exitCode, output });
const rev = (command: string, revision: string | null, output = revision ? `${revision} (head)` : '', exitCode = 0) => ({ kind: 'ok' as const, value: { ...ran(command, output, exitCode), revision } });

function facts(over: Partial<DiagnoseFacts> = {}): DiagnoseFacts {
  return {
    env: 'production',
    host: { kind: 'ok', value: HOST },
    logs: { kind: 'ok', value: LOGS },
    envFile: { kind: 'ok', value: { ENGRAMIA_DATABASE_URL: 'set', STRIPE_SECRET_KEY: 'live' } },
    version: okProbe<VersionInfo>({ app_version: '0.6.0' }),
    deep: okProbe<DeepHealth>({ status: 'ok', version: '0.6.0', uptime_seconds: 12.4, checks: CHECKS }),
    alembic: { kind: 'ran', tag: '0.6.0', via: 'exec', current: rev('alembic current', '031'), head: rev('alembic heads', '031') },
    pgVersion: { kind: 'ok', value: ran('psql -c SELECT version();', '                version\n----\n PostgreSQL 16.4 (Debian 16.4-1.pgdg120+2) on x86_64-pc-linux-gnu\n(1 row)') },
    ...over,
  };
}

function hostWith(patch: Partial<HostState>, containers?: Record<string, Partial<ContainerState>>): DiagnoseFacts['host'] {
  const cs = HOST.containers.map((c) => ({ ...c, ...(containers?.[c.service] ?? {}) }));
  return { kind: 'ok', value: { ...HOST, ...patch, containers: cs } };
}

const API_EXITED = hostWith({ runningTag: undefined, apiState: 'exited' }, { 'engramia-api': { state: 'exited', status: 'Exited (1) 2 minutes ago' } });
const logs = (...extra: string[]): DiagnoseFacts['logs'] => ({ kind: 'ok', value: [...LOGS, ...extra] });
const deepWith = (checks: Partial<DeepHealth['checks']>, status: DeepHealth['status'] = 'degraded', http = 200) =>
  okProbe<DeepHealth>({ status, version: '0.6.0', uptime_seconds: 12.4, checks: { ...CHECKS, ...(checks as DeepHealth['checks']) } }, http);
const badGateway = { kind: 'failed' as const, ms: 3, error: new ChatOpsError(ErrorCode.ApiBadResponse, 'http://api/v1/health/deep answered HTTP 502', { url: 'http://api/v1/health/deep', httpStatus: 502, bodyExcerpt: '' }) };
const rateLimited = (path: string) => ({ kind: 'failed' as const, ms: 3, error: new ChatOpsError(ErrorCode.ApiRateLimited, `http://api${path} is rate limiting the bot (HTTP 429)`, { url: `http://api${path}`, retryAfter: '60' }) });

const ids = (fs: Finding[]) => fs.map((f) => f.id);
const one = (fs: Finding[], id: Finding['id']) => {
  const found = fs.filter((f) => f.id === id);
  expect(found, JSON.stringify(ids(fs))).toHaveLength(1);
  return found[0]!;
};

/** The scenarios of the runbook's troubleshooting section, each on an otherwise healthy host. */
const SCENARIOS: Record<string, () => DiagnoseFacts> = {
  healthy: () => facts(),
  'database-url': () =>
    facts({
      host: API_EXITED,
      logs: logs('RuntimeError: ENGRAMIA_DATABASE_URL not set (required when ENGRAMIA_STORAGE=postgres)'),
      envFile: { kind: 'ok', value: { ENGRAMIA_DATABASE_URL: 'missing', STRIPE_SECRET_KEY: 'live' } },
      version: badGateway,
      deep: badGateway,
      alembic: { kind: 'ran', tag: '0.6.0', via: 'run', current: rev('alembic current', '031'), head: rev('alembic heads', '031') },
    }),
  'connection-refused': () =>
    facts({
      host: API_EXITED,
      logs: logs('sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "pgvector" (172.18.0.2), port 5432 failed: Connection refused'),
      version: badGateway,
      deep: badGateway,
    }),
  'alembic-command-error': () =>
    facts({
      host: API_EXITED,
      logs: logs("alembic.util.exc.CommandError: Can't locate revision identified by '033'"),
      version: badGateway,
      deep: badGateway,
      alembic: {
        kind: 'ran',
        tag: '0.6.0',
        via: 'run',
        current: rev('alembic current', null, "ERROR [alembic.util.messaging] Can't locate revision identified by '033'\nFAILED: Can't locate revision identified by '033'", 255),
        head: rev('alembic heads', '031'),
      },
    }),
  'stripe-module': () =>
    facts({ host: API_EXITED, logs: logs('Traceback (most recent call last):', '  File "/app/engramia/api/app.py", line 48, in <module>', "ModuleNotFoundError: No module named 'stripe'"), version: badGateway, deep: badGateway }),
  'unclassified-crash': () =>
    facts({ host: hostWith({ runningTag: undefined, apiState: 'exited' }, { 'engramia-api': { state: 'exited', status: 'Exited (139) 1 minute ago' } }), logs: logs('Fatal Python error: Segmentation fault', '<!channel> `rm -rf` & friends'), version: badGateway, deep: badGateway }),
  'pgvector-down': () =>
    facts({
      host: hostWith({}, { pgvector: { state: 'exited', status: 'Exited (0) 3 minutes ago', health: '' } }),
      deep: deepWith(
        {
          storage: { status: 'error', latency_ms: 5003.4, error: 'could not translate host name "pgvector" to address' },
          migration: { status: 'error', latency_ms: 5001.2, error: 'could not read alembic_version: database unreachable', current_revision: null, expected_revision: '031' },
        },
        'degraded',
      ),
      alembic: { kind: 'ran', tag: '0.6.0', via: 'exec', current: rev('alembic current', null, 'sqlalchemy.exc.OperationalError: could not translate host name', 1), head: rev('alembic heads', '031') },
      pgVersion: { kind: 'skipped', reason: 'pgvector is not running' },
    }),
  'storage-error': () =>
    facts({
      deep: deepWith({ storage: { status: 'error', latency_ms: 5001, error: 'OperationalError: connection timed out' } }),
      pgVersion: { kind: 'ok', value: ran('psql -c SELECT version();', 'psql: error: connection to server on socket failed: FATAL:  the database system is starting up', 2) },
    }),
  'migrations-behind': () =>
    facts({
      deep: deepWith({ migration: { status: 'error', latency_ms: 2.1, error: 'Database schema revision 030 does not match expected 031', current_revision: '030', expected_revision: '031' } }),
      alembic: { kind: 'ran', tag: '0.6.0', via: 'exec', current: rev('alembic current', '030', '030'), head: rev('alembic heads', '031') },
    }),
  'stripe-error': () => facts({ deep: deepWith({ stripe: { status: 'error', latency_ms: 145.2, error: 'AuthenticationError' } }) }),
  'stripe-key-format': () => facts({ envFile: { kind: 'ok', value: { ENGRAMIA_DATABASE_URL: 'set', STRIPE_SECRET_KEY: 'set' } } }),
  maintenance: () => facts({ host: hostWith({ maintenanceInEnvFile: true }), version: { kind: 'maintenance', httpStatus: 503, retryAfter: '3600', ms: 4 } }),
  'maintenance-pending': () => facts({ host: hostWith({ maintenanceInEnvFile: true }) }),
  'rate-limited': () =>
    facts({ version: rateLimited('/v1/version'), deep: rateLimited('/v1/health/deep'), logs: logs('INFO:     203.0.113.7:40112 - "POST /v1/evaluate HTTP/1.1" 429 Too Many Requests') }),
  'host-unreachable': () =>
    facts({
      host: { kind: 'failed', error: new ChatOpsError(ErrorCode.SshConnectFailed, 'connect failed', { host: '203.0.113.10', reason: 'connection refused' }) },
      logs: { kind: 'failed', error: new ChatOpsError(ErrorCode.SshConnectFailed, 'connect failed', { host: '203.0.113.10', reason: 'connection refused' }) },
      envFile: { kind: 'failed', error: new ChatOpsError(ErrorCode.SshConnectFailed, 'connect failed', { host: '203.0.113.10', reason: 'connection refused' }) },
      alembic: { kind: 'skipped', reason: 'host not read' },
      pgVersion: { kind: 'skipped', reason: 'host not read' },
    }),
};

// ---------------------------------------------------------------------------------------------

describe('matchFindings: the runbook\'s symptom table', () => {
  it('a healthy host has no findings', () => {
    expect(matchFindings(facts())).toEqual([]);
  });

  it('`ENGRAMIA_DATABASE_URL not set` in the log, with what .env holds', () => {
    const f = one(matchFindings(SCENARIOS['database-url']!()), 'database-url-not-set');
    expect(f.severity).toBe('error');
    expect(f.details).toMatchObject({ databaseUrl: 'missing', apiState: 'exited', apiExitCode: 1 });
    expect(f.evidence).toEqual(['RuntimeError: ENGRAMIA_DATABASE_URL not set (required when ENGRAMIA_STORAGE=postgres)']);
    // The API being down explains the 502s: they are not findings of their own.
    expect(ids(matchFindings(SCENARIOS['database-url']!()))).toEqual(['database-url-not-set']);
  });

  it('`connection refused` on start-up, with what pgvector shows now', () => {
    const f = one(matchFindings(SCENARIOS['connection-refused']!()), 'connection-refused');
    expect(f.details).toMatchObject({ pgState: 'running', pgHealth: 'healthy', pgAnswers: true });
  });

  it('`alembic.util.exc.CommandError`, with the bot\'s own `alembic current` as evidence', () => {
    const fs = matchFindings(SCENARIOS['alembic-command-error']!());
    const f = one(fs, 'alembic-command-error');
    expect(f.details).toMatchObject({ current: null, head: '031' });
    expect(f.evidence.join('\n')).toContain("FAILED: Can't locate revision identified by '033'");
    // Not reported twice as an unclassified alembic failure.
    expect(ids(fs)).toEqual(['alembic-command-error']);
  });

  it('`ModuleNotFoundError: stripe`, as Python actually prints it', () => {
    const f = one(matchFindings(SCENARIOS['stripe-module']!()), 'stripe-module-missing');
    expect(f.details.tag).toBe('0.6.0');
    expect(f.evidence).toEqual(["ModuleNotFoundError: No module named 'stripe'"]);
  });

  it('a symptom in the log of a container that runs now is a warning, not an error', () => {
    const f = one(matchFindings(facts({ logs: logs('connection to server at "pgvector" failed: Connection refused') })), 'connection-refused');
    expect(f.severity).toBe('warning');
  });

  it('a crash it cannot classify is evidence only: the last log lines, no cause', () => {
    const fs = matchFindings(SCENARIOS['unclassified-crash']!());
    expect(ids(fs)).toEqual(['unclassified']);
    expect(fs[0]!.details).toMatchObject({ what: 'api-down', apiExitCode: 139 });
    expect(fs[0]!.evidence.at(-2)).toBe('Fatal Python error: Segmentation fault');
    expect(fs[0]!.fix).toBeUndefined();
  });

  it('error lines the table does not cover, in a running API, are shown as they are', () => {
    const fs = matchFindings(facts({ logs: logs('{"level": "ERROR", "logger": "engramia.jobs", "message": "job 42 failed: KeyError"}') }));
    expect(ids(fs)).toEqual(['unclassified']);
    expect(fs[0]!.details).toMatchObject({ what: 'log-errors', count: 1 });
  });

  it('pgvector down: storage, and the migration check failing with it is not called "not applied"', () => {
    const fs = matchFindings(SCENARIOS['pgvector-down']!());
    expect(ids(fs)).toEqual(['pgvector-down']);
    expect(fs[0]!.evidence).toEqual(['storage: could not translate host name "pgvector" to address', 'migration: could not read alembic_version: database unreachable']);
  });

  it('storage error with pgvector up: the manual `SELECT version();` is the evidence', () => {
    const f = one(matchFindings(SCENARIOS['storage-error']!()), 'storage-error');
    expect(f.details).toMatchObject({ storage: 'error', pgAnswers: false });
    expect(f.evidence.join('\n')).toContain('the database system is starting up');
  });

  it('migrations behind: the running image\'s head against `alembic current`, with the fix button', () => {
    const f = one(matchFindings(SCENARIOS['migrations-behind']!()), 'migrations-behind');
    expect(f.details).toMatchObject({ current: '030', head: '031', tag: '0.6.0', behind: true });
    expect(f.fix).toBe('migrate_upgrade');
  });

  it('no migrate button when alembic does not confirm the database is behind', () => {
    const f = one(
      matchFindings(facts({ deep: deepWith({ migration: { status: 'error', latency_ms: 2, error: 'mismatch', current_revision: '031', expected_revision: '032' } }) })),
      'migrations-behind',
    );
    expect(f.details.behind).toBe(false);
    expect(f.fix).toBeUndefined();
  });

  it('stripe error: the key\'s prefix class, never the key', () => {
    const f = one(matchFindings(SCENARIOS['stripe-error']!()), 'stripe-error');
    expect(f.details).toEqual({ key: 'live' });
    expect(f.evidence).toEqual(['stripe: AuthenticationError']);
    expect(ids(matchFindings(SCENARIOS['stripe-key-format']!()))).toEqual(['stripe-key-format']);
    // Billing is optional: an unset key with no Stripe error is not a problem.
    expect(matchFindings(facts({ envFile: { kind: 'ok', value: { ENGRAMIA_DATABASE_URL: 'set', STRIPE_SECRET_KEY: 'missing' } } }))).toEqual([]);
  });

  it('maintenance: on (503 everywhere) and pending in .env, both with the turn-off button', () => {
    const on = one(matchFindings(SCENARIOS.maintenance!()), 'maintenance-on');
    expect(on.fix).toBe('maintenance_off');
    expect(on.details.inEnvFile).toBe(true);
    const pending = one(matchFindings(SCENARIOS['maintenance-pending']!()), 'maintenance-pending');
    expect(pending.fix).toBe('maintenance_off');
    expect(pending.severity).toBe('warning');
  });

  it('429: the bot\'s own probes and the access log, not "did not answer"', () => {
    const fs = matchFindings(SCENARIOS['rate-limited']!());
    expect(ids(fs)).toEqual(['rate-limited']);
    expect(fs[0]!.details).toMatchObject({ probes: 2, lines: 1, retryAfter: '60' });
  });

  it('an SSH failure is shown as the error it is', () => {
    const fs = matchFindings(SCENARIOS['host-unreachable']!());
    expect(fs[0]).toMatchObject({ id: 'unclassified', details: { what: 'host' } });
    expect(fs[0]!.error?.code).toBe(ErrorCode.SshConnectFailed);
  });

  it('a deep-health check the runbook has no section for is evidence only', () => {
    const fs = matchFindings(facts({ deep: deepWith({ llm: { status: 'error', latency_ms: 30000, error: 'APITimeoutError: Request timed out.' } }) }));
    expect(fs).toEqual([{ id: 'unclassified', severity: 'warning', details: { what: 'check', check: 'llm' }, evidence: ['llm: APITimeoutError: Request timed out.'] }]);
  });

  it('errors come before warnings', () => {
    const fs = matchFindings(facts({ host: hostWith({ maintenanceInEnvFile: true }, { pgvector: { state: 'exited', status: 'Exited (0)', health: '' } }), pgVersion: { kind: 'skipped', reason: 'x' } }));
    expect(ids(fs)).toEqual(['pgvector-down', 'maintenance-pending']);
  });
});

describe('diagnose report', () => {
  it.each(Object.keys(SCENARIOS))('%s matches its golden file and is valid Block Kit', async (name) => {
    const f = SCENARIOS[name]!();
    const msg = diagnoseMsg({ facts: f, findings: matchFindings(f), host: 'deploy@203.0.113.10:22', requestedBy: 'U01ALICE', jobId: '42', checkedAt: new Date('2025-05-01T10:00:00Z') });
    const out = slack(msg);
    await expect(`${JSON.stringify(out, null, 2)}\n`).toMatchFileSnapshot(`../golden/diagnose-${name}.json`);
  });

  it('says "no problems found" for a healthy host', () => {
    const out = slack(diagnoseMsg({ facts: facts(), findings: [], host: 'h', requestedBy: 'U1', jobId: '1', checkedAt: new Date(0) }));
    expect(out.text).toBe('production: no problems found');
    expect(out.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: '🩺 production: no problems found', emoji: true } });
  });

  it('gives each fix button the action id of the contract addition and the environment as value', () => {
    const f = SCENARIOS.maintenance!();
    const out = slack(diagnoseMsg({ facts: f, findings: matchFindings(f), host: 'h', requestedBy: 'U1', jobId: '1', checkedAt: new Date(0) }));
    const actions = out.blocks.filter((b) => b.type === 'actions');
    expect(actions).toHaveLength(1);
    expect((actions[0]!.elements as Block[])[0]).toMatchObject({ action_id: 'fix.maintenance_off', value: 'production', text: { text: 'Turn maintenance off' } });
    expect((actions[0]!.elements as Block[])[0]!.confirm).toBeDefined();
  });

  it('escapes host text: log lines cannot mention @channel or inject markup', () => {
    const f = SCENARIOS['unclassified-crash']!();
    const s = all(slack(diagnoseMsg({ facts: f, findings: matchFindings(f), host: 'h', requestedBy: 'U1', jobId: '1', checkedAt: new Date(0) })).blocks);
    expect(s).not.toContain('<!channel>');
    expect(s).toContain('&lt;!channel&gt;');
  });

  it('shows only the Stripe key\'s prefix class', () => {
    // The key never reaches the bot (classified on the host); the renderer words the class alone.
    const f = facts({ deep: deepWith({ stripe: { status: 'error', latency_ms: 1, error: 'AuthenticationError' } }) });
    const s = all(slack(diagnoseMsg({ facts: f, findings: matchFindings(f), host: 'h', requestedBy: 'U1', jobId: '1', checkedAt: new Date(0) })).blocks);
    expect(s).not.toContain(STRIPE_KEY);
    expect(s).toContain('starts with `sk_live_` (a live key)');
  });
});

describe('.env shapes', () => {
  it('parses only known classes', () => {
    expect(parseEnvShapes('ENGRAMIA_DATABASE_URL set\nSTRIPE_SECRET_KEY live\nOTHER sk_live_abc\n\n')).toEqual({ ENGRAMIA_DATABASE_URL: 'set', STRIPE_SECRET_KEY: 'live' });
  });
});

describe('fix buttons', () => {
  it('map to the typed command, the value being only an environment name', () => {
    expect(fixCommandText('fix.maintenance_off', 'production')).toBe('maintenance off production');
    expect(fixCommandText('fix.migrate', 'staging')).toBe('migrate upgrade staging');
    expect(FIXES.maintenance_off.actionId).toBe('fix.maintenance_off');
    for (const value of ['on production', 'production;id', '', 'Production', '$(id)']) expect(fixCommandText('fix.maintenance_off', value)).toBeUndefined();
    expect(fixCommandText('fix.rm_rf', 'production')).toBeUndefined();
  });

  it('run through the command path given, as the presser, where they pressed', async () => {
    const origin: Origin = { transport: 'slack', channel: 'C0OPS', user: 'U02BOB', requestId: 'trig' };
    const run = vi.fn(async (t: string) => ({ summary: t, parts: [] }) as Msg);
    await handleFixPress({ actionId: 'fix.maintenance_off', value: 'production', origin }, run);
    expect(run).toHaveBeenCalledWith('maintenance off production', origin);
    const refused = await handleFixPress({ actionId: 'fix.maintenance_off', value: 'x y', origin }, run);
    expect(run).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(refused)).toContain('not one the bot understands');
  });
});
