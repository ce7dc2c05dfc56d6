// `/engramia diagnose` through the real chain (signed Slack request → Bolt → BullMQ → worker →
// SSH → simulated host): each symptom of the runbook's "Troubleshooting common issues" is
// injected into the host and must be recognised, with its cause, fix and evidence; fix buttons
// re-enter the typed command's path, role check included.
import { afterEach, describe, expect, it } from 'vitest';
import {
  appendLogs,
  crashLoop,
  readCommandLog,
  readEnvFile,
  readState,
  setApi,
  setDbRevision,
  setDeepCheck,
  setEnvVar,
  setMaintenance,
  stopContainer,
} from '../world/sim/host.mjs';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { BOB, CAROL, blockText, text, type Block } from './blocks.js';
import { ALICE, OPS_CHANNEL, SIGNING_SECRET, startWorld, type World } from './harness.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const isReport = (m: { blocks?: unknown }) => /🩺/.test(text(m.blocks));

async function diagnose(w: World) {
  const ack = await w.slash('diagnose');
  expect(ack.status).toBe(200);
  expect(ack.body.text).toMatch(/Diagnosing production \(job \d+\)/);
  const msg = structuredClone(await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find(isReport), { timeoutMs: 20_000, description: 'the diagnosis' }));
  expect(w.slack.invalidBlockCalls()).toEqual([]);
  return { msg, text: blockText(msg.blocks as Block[]), header: (msg.blocks as Block[])[0]!.text.text as string };
}

/** What ran on the host, as `TAG argv` lines (TAG only where the bot set one). */
const ran = (w: World) =>
  readCommandLog(w.deployPath)
    .filter((r: any) => r.phase !== 'start')
    .map((r: any) => `${r.env.IMAGE_TAG ? `${r.env.IMAGE_TAG} ` : ''}${r.argv.join(' ')}`);

/** Diagnose only reads: nothing that creates, starts or migrates may appear on the host. */
function expectReadOnly(w: World) {
  for (const line of ran(w)) expect(line).not.toMatch(/\bup\b|upgrade|downgrade|stamp|pull|prune|login/);
}

function press(w: World, user: string, message: any, actionId: string) {
  return sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message, action_id: actionId });
}

const crashed = (w: World, lines: string[], exitCode = 1) => {
  appendLogs(w.deployPath, 'engramia-api', lines);
  stopContainer(w.deployPath, 'engramia-api', exitCode);
};

describe('/engramia diagnose', () => {
  it('a healthy host: no problems found, only read-only commands, no buttons', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const { msg, text: t, header } = await diagnose(w);
    expect(header).toBe('🩺 production: no problems found');
    expect(t).toContain('Nothing from the runbook');
    expect(t).toContain('`031`, head of `0.6.0`: `031`');
    expect(t).toContain('PostgreSQL 16.4');
    expect(t).toContain('`sk_test_…` (test)');
    expect(msg.text).toBe('production: no problems found');
    expect(findButton(msg.blocks as Block[], 'fix.maintenance_off')).toBeUndefined();
    expect(ran(w).sort()).toEqual(
      [
        'compose -f docker-compose.prod.yml ps -a --format json',
        'compose -f docker-compose.prod.yml logs --tail=100 engramia-api',
        'compose -f docker-compose.prod.yml exec -T pgvector psql -U engramia -c SELECT version();',
        '0.6.0 compose -f docker-compose.prod.yml exec -T engramia-api alembic current',
        '0.6.0 compose -f docker-compose.prod.yml exec -T engramia-api alembic heads',
      ].sort(),
    );
  });

  it('`ENGRAMIA_DATABASE_URL not set`: missing env var, and .env is checked without reading the value', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setEnvVar(w.deployPath, 'ENGRAMIA_DATABASE_URL', null);
    crashed(w, ['INFO:     Waiting for application startup.', 'RuntimeError: ENGRAMIA_DATABASE_URL not set (required when ENGRAMIA_STORAGE=postgres)', 'ERROR:    Application startup failed. Exiting.']);
    const { text: t, header } = await diagnose(w);
    expect(header).toMatch(/🩺 production: \d+ problems? found/);
    expect(t).toContain('`ENGRAMIA_DATABASE_URL not set` in the engramia-api log');
    expect(t).toContain('*Likely cause:* Missing env var: `ENGRAMIA_DATABASE_URL` is not in .env on the host');
    expect(t).toContain('engramia-api is exited (exit code 1)');
    expect(t).toContain('*Fix:* Add it to .env');
    expect(t).toContain('RuntimeError: ENGRAMIA_DATABASE_URL not set');
    // The container is down: alembic asked in a throwaway container of its image.
    expect(ran(w)).toContain('0.6.0 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic current');
    expect(readState(w.deployPath).oneOffs ?? []).toEqual([]);
    expectReadOnly(w);
  });

  it('`connection refused` at start-up: pgvector not ready, and what pgvector shows now', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    crashed(w, [
      'sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "pgvector" (172.18.0.2), port 5432 failed: Connection refused',
      '\tIs the server running on that host and accepting TCP/IP connections?',
    ]);
    const { text: t } = await diagnose(w);
    expect(t).toContain('`connection refused` on start-up in the engramia-api log');
    expect(t).toContain('*Likely cause:* pgvector not ready when the API started. pgvector runs now (healthy) and answers `SELECT version();`');
    expect(t).toContain('Wait for `pg_isready`, or add a `depends_on` health check');
    expect(t).toContain('port 5432 failed: Connection refused');
    expectReadOnly(w);
  });

  it('`alembic.util.exc.CommandError`: migration conflict, with what `alembic current` says', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setDbRevision(w.deployPath, '033');
    crashed(w, ['Traceback (most recent call last):', '  File "/usr/local/lib/python3.12/site-packages/alembic/script/base.py", line 251, in _catch_revision_errors', "alembic.util.exc.CommandError: Can't locate revision identified by '033'"]);
    const { text: t } = await diagnose(w);
    expect(t).toContain('`alembic.util.exc.CommandError` in the engramia-api log');
    expect(t).toContain('*Likely cause:* Migration conflict. `alembic current` failed too (output below).');
    expect(t).toContain('Run `alembic current` to check state');
    // The bot's own `alembic current`, run for the evidence.
    expect(t).toMatch(/alembic current\n[\s\S]*FAILED: Can't locate revision identified by '033'/);
    expectReadOnly(w);
  });

  it('a crash loop caught `running` by ps (as the real daemon shows it between restarts) is diagnosed as down, alembic asked through `run`', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    crashLoop(w.deployPath, '0.6.0', ["alembic.util.exc.CommandError: Can't locate revision identified by '034'"], { runningWindow: true });
    const { text: t } = await diagnose(w);
    // An error, not a warning about history in the log of a container that runs.
    expect(t).toContain('🔴 *`alembic.util.exc.CommandError` in the engramia-api log*');
    expect(t).toContain('engramia-api is running, but its API does not answer (HTTP 502).');
    expect(t).not.toContain('did not answer as expected');
    // Docker refuses `exec` into a restarting container: alembic runs in a throwaway one of the image.
    expect(ran(w).filter((l) => l.includes('alembic'))).toEqual(expect.arrayContaining([expect.stringContaining('run --rm --no-deps -T engramia-api alembic current')]));
    expectReadOnly(w);
  });

  it('`ModuleNotFoundError: stripe`: missing optional dependency', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    crashed(w, ['Traceback (most recent call last):', '  File "/app/engramia/api/app.py", line 48, in <module>', "ModuleNotFoundError: No module named 'stripe'"]);
    const { text: t } = await diagnose(w);
    expect(t).toContain('`ModuleNotFoundError: stripe` in the engramia-api log');
    expect(t).toContain('*Likely cause:* Missing optional dependency: image `0.6.0` was built without the billing extra.');
    expect(t).toContain('Rebuild the image, or use `pip install engramia[billing]`');
    expectReadOnly(w);
  });

  it('an unclassifiable crash shows the log lines, not a guess', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    crashed(w, ['INFO:     Waiting for application startup.', 'Fatal Python error: Segmentation fault', 'Current thread 0x00007f3a (most recent call first):', '  File "/app/engramia/embeddings.py", line 88 in encode'], 139);
    const { text: t } = await diagnose(w);
    expect(t).toContain("engramia-api is exited (exit code 139), and its log shows none of the runbook's known causes");
    expect(t).toContain('the bot does not guess a cause');
    expect(t).toContain('Last lines of the engramia-api log');
    expect(t).toContain('Fatal Python error: Segmentation fault');
    const finding = t.slice(t.indexOf('exit code 139'));
    expect(finding.split('Last lines')[0]).not.toContain('Likely cause');
    expectReadOnly(w);
  });

  it('pgvector down: deep health storage error, with the evidence, and no false "migrations not applied"', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    stopContainer(w.deployPath, 'pgvector', 0);
    const { text: t } = await diagnose(w);
    expect(t).toContain('pgvector is exited');
    expect(t).toContain('deep health returns `storage: error`');
    expect(t).toContain('could not translate host name');
    expect(t).not.toContain('Migrations were not applied');
    expect(ran(w).some((l) => l.includes('psql'))).toBe(false);
    expectReadOnly(w);
  });

  it('429 under load: rate limits, from the bot\'s own probes and the access log', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setApi(w.deployPath, { rateLimitPerMinute: 0 });
    appendLogs(w.deployPath, 'engramia-api', ['INFO:     203.0.113.7:40112 - "POST /v1/evaluate HTTP/1.1" 429 Too Many Requests', 'INFO:     203.0.113.7:40113 - "POST /v1/evaluate HTTP/1.1" 429 Too Many Requests']);
    const { text: t } = await diagnose(w);
    expect(t).toContain('*Rate limit errors (429)*');
    expect(t).toContain("2 of the bot's own requests and 2 requests in the log answered 429");
    expect(t).toContain('60 req/min per IP for standard endpoints and 10 req/min for LLM-intensive endpoints');
    expect(t).toContain('`ENGRAMIA_RATE_LIMIT_DEFAULT`');
    expect(t).toContain('"POST /v1/evaluate HTTP/1.1" 429 Too Many Requests');
    expectReadOnly(w);
  });

  it('stripe error: the key prefix is checked on the host and the key is never shown, logged or sent', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const key = /^STRIPE_SECRET_KEY=(.*)$/m.exec(readEnvFile(w.deployPath))![1]!;
    expect(key).toMatch(/^sk_test_/);
    setDeepCheck(w.deployPath, 'stripe', { status: 'error', latency_ms: 145.2, error: 'AuthenticationError' });
    // A careless debug line that prints the key must not carry it any further.
    appendLogs(w.deployPath, 'engramia-api', [`DEBUG stripe client configured with ${key}`]);
    const { text: t } = await diagnose(w);
    expect(t).toContain('Deep health returns `stripe: error`');
    expect(t).toContain('Stripe API is unreachable or the secret key is invalid. `STRIPE_SECRET_KEY` in .env starts with `sk_test_` (a test key), so the prefix is right.');
    expect(t).toContain('curl -sf https://api.stripe.com/v1/');
    const everything = [JSON.stringify(w.slack.calls), w.logs.join('\n'), JSON.stringify(readCommandLog(w.deployPath)), JSON.stringify(await w.bot.producer!.store.readAudit(200))].join('\n');
    expect(everything).not.toContain(key);
    expect(everything).not.toContain(key.slice(8));
    expectReadOnly(w);
  });

  it('a STRIPE_SECRET_KEY that is not a secret key is flagged, by prefix only', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setEnvVar(w.deployPath, 'STRIPE_SECRET_KEY', '"rk_live_51Hx9restrictedkey0000"');
    const { text: t } = await diagnose(w);
    expect(t).toContain('`STRIPE_SECRET_KEY` in .env does *not* start with `sk_live_` or `sk_test_`');
    expect(t).toContain('not a Stripe secret key');
    expect(JSON.stringify(w.slack.calls)).not.toContain('rk_live_51Hx9');
  });

  it('maintenance on: 503 for all endpoints; the button is refused for a non-deployer and runs `maintenance off` for a deployer', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setMaintenance(w.deployPath, true);
    const { msg, text: t } = await diagnose(w);
    expect(t).toContain('API returns 503 for all endpoints: maintenance mode is on');
    expect(t).toContain('`ENGRAMIA_MAINTENANCE=true` is set in .env');
    expect(t).toContain('Remove the variable and restart: `maintenance off production` does both');
    const button = findButton(msg.blocks as Block[], 'fix.maintenance_off');
    expect(button?.element.value).toBe('production');
    expect(button?.element.text.text).toBe('Turn maintenance off');
    const before = ran(w).length;

    // BOB is an approver, not a deployer: refused, and nothing reaches the host.
    await press(w, BOB, msg, 'fix.maintenance_off');
    const refusal = await w.slack.waitFor(() => w.slack.ephemerals.find((e) => e.user === BOB), { timeoutMs: 5000 });
    expect(text(refusal.blocks)).toContain('You may not run `maintenance`');
    await new Promise((r) => setTimeout(r, 500));
    expect(ran(w).length).toBe(before);
    expect(readEnvFile(w.deployPath)).toContain('ENGRAMIA_MAINTENANCE=true');

    // ALICE is a deployer: the same path as typing `/engramia maintenance off production`.
    await press(w, ALICE, msg, 'fix.maintenance_off');
    const ok = await w.slack.waitFor(() => w.slack.ephemerals.find((e) => e.user === ALICE), { timeoutMs: 5000 });
    expect(text(ok.blocks)).toContain('Turning maintenance *off* on production');
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => /Maintenance off for production/.test(text(m.blocks)) && /succeeded/.test(text(m.blocks))), { timeoutMs: 20_000 });
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    expect(readState(w.deployPath).containers['engramia-api']?.env.ENGRAMIA_MAINTENANCE).toBeUndefined();
    const audit = await w.bot.producer!.store.readAudit(200);
    expect(audit.filter((e) => e.type === 'refusal' && e.user === BOB && e.command === 'maintenance')).toHaveLength(1);
    expect(audit.filter((e) => e.type === 'command' && e.user === ALICE && e.command === 'maintenance')).toHaveLength(1);
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  });

  it('maintenance set in .env but not active is a warning with the same button', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setEnvVar(w.deployPath, 'ENGRAMIA_MAINTENANCE', 'true');
    const { msg, text: t } = await diagnose(w);
    expect(t).toContain('`ENGRAMIA_MAINTENANCE` is set in .env but not active');
    expect(findButton(msg.blocks as Block[], 'fix.maintenance_off')).toBeDefined();
  });

  it('migrations not applied: "Run migrations" starts `migrate upgrade`, which waits for another approver, then upgrades once', async () => {
    // BOB both deploys and approves: four-eyes must still keep him from approving his own plan.
    const w = (world = await startWorld({ slackLimits: false, fourEyes: true, access: { deployers: [ALICE, BOB], approvers: [BOB, CAROL], admins: [CAROL] } }));
    setDbRevision(w.deployPath, '030');
    const { msg, text: t } = await diagnose(w);
    expect(t).toContain('Deep health returns `migration: error`: the database is behind the running code');
    expect(t).toContain('*Likely cause:* Migrations were not applied after the last deploy: the database is at `030`, the running image (`0.6.0`) expects `031`.');
    expect(t).toContain('migration: Database schema revision 030 does not match expected 031');
    expect(findButton(msg.blocks as Block[], 'fix.migrate')?.element.text.text).toBe('Run migrations');

    // CAROL is an admin, not a deployer: refused, nothing queued.
    await press(w, CAROL, msg, 'fix.migrate');
    await w.slack.waitFor(() => text(w.slack.ephemerals.find((e) => e.user === CAROL)?.blocks).includes('You may not run `migrate`'), { timeoutMs: 5000 });

    await press(w, BOB, msg, 'fix.migrate');
    const gate = structuredClone(await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'deploy.approve')), { timeoutMs: 20_000 }));
    expect(text(gate.blocks)).toContain('030 → 031');
    expect(text(gate.blocks)).toContain('IMAGE_TAG=0.6.0 docker compose -f docker-compose.prod.yml exec -T engramia-api alembic upgrade head');
    expect(ran(w).filter((l) => l.includes('upgrade'))).toEqual([]);
    await press(w, BOB, gate, 'deploy.approve');
    await w.slack.waitFor(() => w.slack.ephemerals.filter((e) => e.user === BOB).some((e) => text(e.blocks).includes('someone else must decide')), { timeoutMs: 5000 });
    expect(ran(w).filter((l) => l.includes('upgrade'))).toEqual([]);
    await press(w, CAROL, gate, 'deploy.approve');
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => /Database migrations on production/.test(text(m.blocks)) && /succeeded/.test(text(m.blocks))), { timeoutMs: 20_000 });
    expect(readState(w.deployPath).db.revision).toBe('031');
    expect(ran(w).filter((l) => l.includes('upgrade'))).toEqual(['0.6.0 compose -f docker-compose.prod.yml exec -T engramia-api alembic upgrade head']);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  });

  it('`migrate upgrade` on a database already at head changes nothing and asks nobody', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('migrate upgrade');
    const card = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => /Database migrations on production/.test(text(m.blocks)) && /succeeded/.test(text(m.blocks))), { timeoutMs: 20_000 });
    expect(text(card.blocks)).toContain('already at the head');
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => findButton(m.blocks as Block[], 'deploy.approve'))).toBe(false);
    expect(ran(w).filter((l) => l.includes('upgrade'))).toEqual([]);
  });

  it('a tampered fix button is refused and runs nothing', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setMaintenance(w.deployPath, true);
    const { msg } = await diagnose(w);
    const before = ran(w).length;
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: ALICE, channel: OPS_CHANNEL, message: msg, action_id: 'fix.maintenance_off', value: 'on production' });
    await w.slack.waitFor(() => text(w.slack.ephemerals.find((e) => e.user === ALICE)?.blocks).includes('not one the bot understands'), { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(ran(w).length).toBe(before);
  });
});
