import type { DiagnoseFacts, EnvShape } from '../diagnose/facts.js';
import { FIXES } from '../diagnose/fixes.js';
import type { Finding } from '../diagnose/match.js';
import { ErrorCode } from '../errors.js';
import { errorParts } from './errors.js';
import { code, esc, mention, type Button, type Msg, type Part } from './model.js';

export interface DiagnoseView {
  facts: DiagnoseFacts;
  findings: Finding[];
  /** `user@host:port` of the SSH target. */
  host: string;
  requestedBy: string;
  jobId: string;
  checkedAt: Date;
  /** The compose file named in fixes that are typed by hand. */
  composeFile?: string;
}

/** How one finding reads: the runbook's symptom, its likely cause and its fix, worded from the facts. */
interface Wording {
  title: string;
  /** Absent for what the runbook does not cover: the evidence speaks, the bot does not guess. */
  cause?: string;
  fix?: string;
}

const str = (v: unknown): string => (v === null || v === undefined ? '?' : String(v));

function keyShape(shape: EnvShape | null | undefined): string {
  switch (shape) {
    case 'live':
      return 'starts with `sk_live_` (a live key)';
    case 'test':
      return 'starts with `sk_test_` (a test key)';
    case 'set':
      return 'does *not* start with `sk_live_` or `sk_test_`';
    case 'empty':
      return 'is set but empty';
    case 'missing':
      return 'is not set';
    default:
      return 'could not be checked';
  }
}

function word(f: Finding, env: string, compose: string): Wording {
  const d = f.details;
  const dc = `docker compose -f ${compose}`;
  const recreate = `then re-create the API: ${code(`${dc} up -d engramia-api`)}`;
  const stopped = d.apiState && d.apiState !== 'running' ? ` engramia-api is ${esc(str(d.apiState))}${d.apiExitCode !== null && d.apiExitCode !== undefined ? ` (exit code ${esc(str(d.apiExitCode))})` : ''}.` : '';
  switch (f.id) {
    case 'database-url-not-set':
      return {
        title: `${code('ENGRAMIA_DATABASE_URL not set')} in the engramia-api log`,
        cause: `Missing env var: ${code('ENGRAMIA_DATABASE_URL')} ${d.databaseUrl === 'missing' ? 'is not in .env on the host' : d.databaseUrl === 'empty' ? 'is empty in .env' : d.databaseUrl === 'set' ? 'is set in .env now, so the container was created before it was added' : 'could not be checked in .env'}.${stopped}`,
        fix: `Add it to .env (${code('ENGRAMIA_DATABASE_URL=postgresql://…')}), ${recreate}.`,
      };
    case 'connection-refused': {
      const now = d.pgState === 'running' ? `pgvector runs now${d.pgHealth ? ` (${esc(str(d.pgHealth))})` : ''}${d.pgAnswers === true ? ` and answers ${code('SELECT version();')}` : d.pgAnswers === false ? ` but does not answer ${code('SELECT version();')}` : ''}` : `pgvector is ${esc(str(d.pgState ?? 'missing'))}`;
      return {
        title: `${code('connection refused')} on start-up in the engramia-api log`,
        cause: `pgvector not ready when the API started. ${now}.${stopped}`,
        fix: `Wait for ${code('pg_isready')}, or add a ${code('depends_on')} health check (${code('condition: service_healthy')}) to engramia-api; ${recreate}.`,
      };
    }
    case 'alembic-command-error': {
      const state = d.current === undefined ? '' : d.current === null ? ` ${code('alembic current')} failed too (output below).` : ` ${code('alembic current')}: ${code(str(d.current))}${d.head ? `, the image's head ${code(str(d.head))}` : ''}.`;
      return {
        title: `${code('alembic.util.exc.CommandError')} in the engramia-api log`,
        cause: `Migration conflict.${state}${stopped}`,
        fix: `Run ${code('alembic current')} to check state (the bot did: see below) and compare it with the head: ${code(`/engramia migrations ${env}`)}.`,
      };
    }
    case 'stripe-module-missing':
      return {
        title: `${code('ModuleNotFoundError: stripe')} in the engramia-api log`,
        cause: `Missing optional dependency: image ${code(str(d.tag))} was built without the billing extra.${stopped}`,
        fix: `Rebuild the image, or use ${code('pip install engramia[billing]')}; then deploy it.`,
      };
    case 'pgvector-down':
      return {
        title: `pgvector is ${esc(str(d.pgState))}${d.status ? ` (${esc(str(d.status))})` : ''}`,
        cause: `The database container is not running${d.storage === 'error' ? `, so deep health returns ${code('storage: error')}` : ''}.`,
        fix: `Check it (${code(`${dc} ps pgvector`)}, ${code(`${dc} logs pgvector`)}), start it with ${code(`${dc} up -d pgvector`)} and wait for ${code('pg_isready')}.`,
      };
    case 'storage-error':
      return {
        title: d.storage === 'error' ? `Deep health returns ${code('storage: error')}` : 'pgvector is not healthy',
        cause: `pgvector is running${d.pgHealth ? ` (${esc(str(d.pgHealth))})` : ''}; ${d.pgAnswers === true ? `it answers ${code('SELECT version();')}` : d.pgAnswers === false ? `${code('SELECT version();')} fails (output below)` : `${code('SELECT version();')} was not run`}.`,
        fix: `Check that the pgvector container is healthy (${code(`${dc} ps pgvector`)}) and connect manually (${code(`${dc} exec pgvector psql -U engramia -c "SELECT version();"`)}): the bot did both, results below.`,
      };
    case 'migrations-behind': {
      const at = d.current !== null ? `the database is at ${code(str(d.current))}, the running image${d.tag ? ` (${code(str(d.tag))})` : ''} expects ${code(str(d.head))}` : d.reportedCurrent !== null || d.reportedExpected !== null ? `deep health reports ${code(str(d.reportedCurrent ?? 'base'))}, expected ${code(str(d.reportedExpected))}` : 'see the evidence below';
      return {
        title: d.deepError ? `Deep health returns ${code('migration: error')}${d.behind ? ': the database is behind the running code' : ''}` : 'The database is behind the running code',
        cause: `Migrations were not applied after the last deploy: ${at}.`,
        fix: f.fix ? `Apply them with ${code('alembic upgrade head')} in the running container: the button below runs ${code(FIXES.migrate_upgrade.command(env))}, after an approver confirms the plan.` : `Check the revisions with ${code(`/engramia migrations ${env}`)}; if the database is behind, apply them with ${code('alembic upgrade head')}.`,
      };
    }
    case 'stripe-error':
      return {
        title: `Deep health returns ${code('stripe: error')}`,
        cause: `Stripe API is unreachable or the secret key is invalid. ${code('STRIPE_SECRET_KEY')} in .env ${keyShape(d.key as EnvShape | null)}${d.key === 'live' || d.key === 'test' ? ', so the prefix is right' : ''}.`,
        fix: `Verify ${code('STRIPE_SECRET_KEY')} is set and starts with ${code('sk_live_')} or ${code('sk_test_')}; test reachability from the VM with ${code('curl -sf https://api.stripe.com/v1/')}. After changing .env, re-create engramia-api.`,
      };
    case 'stripe-key-format':
      return {
        title: `${code('STRIPE_SECRET_KEY')} in .env ${keyShape(d.key as EnvShape | null)}`,
        cause: 'It is not a Stripe secret key, so billing calls fail once they are made (only its prefix was checked, on the host).',
        fix: `Set the key from the Stripe dashboard (it starts with ${code('sk_live_')} or ${code('sk_test_')}), ${recreate}.`,
      };
    case 'maintenance-on':
      return {
        title: 'API returns 503 for all endpoints: maintenance mode is on',
        cause: d.inEnvFile === false
          ? `The running container still has ${code('ENGRAMIA_MAINTENANCE')} although .env no longer sets it (engramia-api was not re-created). Every endpoint but /v1/health and /v1/health/deep answers 503.`
          : `${code('ENGRAMIA_MAINTENANCE=true')} is set in .env, so every endpoint but /v1/health and /v1/health/deep answers 503.`,
        fix: `Remove the variable and restart: ${code(FIXES.maintenance_off.command(env))} does both (button below, deployers only).`,
      };
    case 'maintenance-pending':
      return {
        title: `${code('ENGRAMIA_MAINTENANCE')} is set in .env but not active`,
        cause: `The running container was created before it was set: the next re-create of engramia-api (a deploy, a restart) puts the API in maintenance, and everything but the health endpoints answers 503.`,
        fix: `If maintenance is not wanted, remove it: ${code(FIXES.maintenance_off.command(env))} (button below). To apply it now: ${code(`maintenance on ${env}`)}.`,
      };
    case 'rate-limited': {
      const seen = [d.probes ? `${esc(str(d.probes))} of the bot's own requests` : '', d.lines ? `${esc(str(d.lines))} request${d.lines === 1 ? '' : 's'} in the log` : ''].filter(Boolean).join(' and ');
      return {
        title: 'Rate limit errors (429)',
        cause: `${seen} answered 429. The default rate limit is 60 req/min per IP for standard endpoints and 10 req/min for LLM-intensive endpoints.`,
        fix: `Adjust via ${code('ENGRAMIA_RATE_LIMIT_DEFAULT')} and ${code('ENGRAMIA_RATE_LIMIT_EXPENSIVE')} in .env, ${recreate}. Rate limiting is per-process and in memory: for several instances, configure an external rate limiter upstream (API gateway, WAF).`,
      };
    }
    case 'unclassified':
      return { title: unclassifiedTitle(f) };
  }
}

function unclassifiedTitle(f: Finding): string {
  const d = f.details;
  switch (d.what) {
    case 'host':
      return 'The host could not be read over SSH';
    case 'logs':
      return 'The engramia-api log could not be read';
    case 'api-down':
      return `engramia-api is ${esc(str(d.apiState))}${d.apiExitCode !== null && d.apiExitCode !== undefined ? ` (exit code ${esc(str(d.apiExitCode))})` : ''}, and its log shows none of the runbook's known causes`;
    case 'log-errors':
      return `${esc(str(d.count))} error line${d.count === 1 ? '' : 's'} in the engramia-api log that the runbook's table does not cover`;
    case 'alembic':
      return `${code('alembic current')} failed`;
    case 'check':
      return `Deep health returns ${code(`${str(d.check)}: error`)}`;
    case 'probe':
      return `${code(str(d.probe))} did not answer as expected`;
    case 'container':
      return `${code(str(d.service))} is ${esc(str(d.state))}${d.status ? ` (${esc(str(d.status))})` : ''}`;
    default:
      return 'Something the bot could not classify';
  }
}

function button(f: Finding, env: string): Button | undefined {
  if (f.fix === 'maintenance_off') {
    return {
      actionId: FIXES.maintenance_off.actionId,
      text: 'Turn maintenance off',
      value: env,
      style: 'primary',
      confirm: {
        title: 'Turn maintenance off?',
        text: `Runs ${code(FIXES.maintenance_off.command(env))}: removes ENGRAMIA_MAINTENANCE from .env on ${esc(env)} and re-creates engramia-api, so the API answers every request again.`,
        confirm: 'Turn it off',
        deny: 'Cancel',
      },
    };
  }
  if (f.fix === 'migrate_upgrade') {
    return {
      actionId: FIXES.migrate_upgrade.actionId,
      text: 'Run migrations',
      value: env,
      confirm: {
        title: 'Run migrations?',
        text: `Starts ${code(FIXES.migrate_upgrade.command(env))}: an approver confirms the plan in its thread before ${code('alembic upgrade head')} runs on ${esc(env)}.`,
        confirm: 'Start',
        deny: 'Cancel',
      },
    };
  }
  return undefined;
}

function findingParts(f: Finding, env: string, compose: string): Part[] {
  const w = word(f, env, compose);
  const dot = f.severity === 'error' ? '🔴' : '🟡';
  const lines = [`${dot} *${w.title}*`];
  if (w.cause) lines.push(`*Likely cause:* ${w.cause}`);
  if (w.fix) lines.push(`*Fix:* ${w.fix}`);
  if (!w.cause) lines.push("_Not a symptom the runbook's troubleshooting table lists: the evidence is below, the bot does not guess a cause._");
  const parts: Part[] = [{ type: 'section', text: lines.join('\n') }];
  if (f.error) parts.push(...errorParts(f.error, '⚠️'));
  if (f.evidence.length > 0) parts.push({ type: 'code', text: f.evidence.join('\n'), title: f.id === 'unclassified' && f.details.what === 'api-down' ? '_Last lines of the engramia-api log:_' : '_Evidence:_' });
  const b = button(f, env);
  if (b) parts.push({ type: 'actions', buttons: [b] });
  return parts;
}

function containersField(facts: DiagnoseFacts): string {
  if (facts.host.kind !== 'ok') return '*Containers*\n_not read_';
  const cs = facts.host.value.containers.filter((c) => !c.name.includes('-run-'));
  if (cs.length === 0) return '*Containers*\n_none_';
  return `*Containers*\n${cs.map((c) => `${c.state === 'running' && c.health !== 'unhealthy' ? '🟢' : '🔴'} ${esc(c.service)} ${c.state === 'running' ? (c.health ? esc(c.health) : 'running') : esc(c.state)}${c.service === 'engramia-api' && c.tag ? ` ${code(c.tag)}` : ''}`).join('\n')}`;
}

function deepField(facts: DiagnoseFacts): string {
  const d = facts.deep;
  if (d.kind === 'ok') {
    const failing = Object.entries(d.value.checks).filter(([, c]) => c.status === 'error').map(([n]) => n);
    const dot = d.value.status === 'ok' ? '🟢' : d.value.status === 'degraded' ? '🟡' : '🔴';
    return `*Deep health*\n${dot} ${esc(d.value.status)} (HTTP ${d.httpStatus})${failing.length ? `: ${failing.map((n) => esc(n)).join(', ')}` : ''}`;
  }
  if (d.kind === 'maintenance') return '*Deep health*\n🚧 503 maintenance';
  if (d.error.code === ErrorCode.ApiRateLimited) return '*Deep health*\n🟡 HTTP 429 (rate limited)';
  const http = d.error.details.httpStatus;
  return `*Deep health*\n⚫ ${typeof http === 'number' ? `HTTP ${http}` : 'no answer'}`;
}

function databaseField(facts: DiagnoseFacts): string {
  const a = facts.alembic;
  if (a.kind === 'skipped') return `*Database (alembic)*\n_not asked: ${esc(a.reason)}_`;
  const cur = a.current.kind === 'ok' && a.current.value.exitCode === 0 ? code(a.current.value.revision ?? 'base') : '_alembic current failed_';
  const head = a.head.kind === 'ok' && a.head.value.exitCode === 0 ? code(a.head.value.revision ?? '?') : '?';
  return `*Database (alembic)*\n${cur}, head of ${code(a.tag)}: ${head}`;
}

function maintenanceField(facts: DiagnoseFacts): string {
  const inEnv = facts.host.kind === 'ok' ? facts.host.value.maintenanceInEnvFile : undefined;
  if (facts.version.kind === 'maintenance') return `*Maintenance*\n🚧 on${inEnv === false ? ' (no longer in .env)' : ''}`;
  if (inEnv) return '*Maintenance*\n⚠️ in .env, not active';
  return `*Maintenance*\noff${inEnv === undefined ? ' (.env not read)' : ''}`;
}

function pgField(facts: DiagnoseFacts): string {
  const p = facts.pgVersion;
  if (p.kind === 'skipped') return `*pgvector*\n_${esc(p.reason)}_`;
  if (p.kind === 'failed' || p.value.exitCode !== 0) return `*pgvector*\n🔴 ${code('SELECT version();')} failed`;
  const v = /PostgreSQL [0-9.]+/.exec(p.value.output)?.[0];
  return `*pgvector*\n🟢 answers${v ? `: ${esc(v)}` : ''}`;
}

function stripeField(facts: DiagnoseFacts): string {
  if (facts.envFile.kind !== 'ok') return '*STRIPE_SECRET_KEY*\n_.env not read_';
  const s = facts.envFile.value.STRIPE_SECRET_KEY;
  const text = s === 'live' ? `${code('sk_live_…')} (live)` : s === 'test' ? `${code('sk_test_…')} (test)` : s === 'missing' ? 'not set' : s === 'empty' ? 'empty' : s === 'set' ? '⚠️ not a Stripe secret key' : '?';
  return `*STRIPE_SECRET_KEY*\n${text}`;
}

/** Short names for the summary line (notifications and the fallback text). */
const SHORT: Record<string, string> = {
  'database-url-not-set': 'ENGRAMIA_DATABASE_URL not set',
  'connection-refused': 'connection refused at start-up',
  'alembic-command-error': 'alembic CommandError',
  'stripe-module-missing': 'stripe module missing',
  'pgvector-down': 'pgvector down',
  'storage-error': 'storage error',
  'migrations-behind': 'migrations not applied',
  'stripe-error': 'stripe error',
  'stripe-key-format': 'Stripe key malformed',
  'maintenance-on': 'maintenance on',
  'maintenance-pending': 'maintenance pending in .env',
  'rate-limited': 'rate limited (429)',
  unclassified: 'unclassified',
};

/**
 * Pure: the diagnosis as one message. Each finding gives the runbook's symptom, its likely cause
 * and fix, the evidence, and a button where the fix is a command the bot runs itself.
 */
export function diagnoseMsg(v: DiagnoseView): Msg {
  const env = v.facts.env;
  const compose = v.composeFile ?? 'docker-compose.prod.yml';
  const n = v.findings.length;
  const parts: Part[] = [
    { type: 'header', text: `🩺 ${env}: ${n === 0 ? 'no problems found' : `${n} problem${n === 1 ? '' : 's'} found`}` },
    { type: 'fields', items: [containersField(v.facts), deepField(v.facts), databaseField(v.facts), maintenanceField(v.facts), pgField(v.facts), stripeField(v.facts)] },
  ];
  if (n === 0) {
    parts.push({ type: 'section', text: "✅ Nothing from the runbook's troubleshooting table applies: the containers run, the log shows no known symptom, deep health is ok, the database is at the image's head, maintenance is off." });
  }
  for (const f of v.findings) parts.push({ type: 'divider' }, ...findingParts(f, env, compose));
  parts.push({
    type: 'context',
    items: [`Matched against the runbook's _Troubleshooting common issues_ · host ${code(v.host)} · ${v.checkedAt.toISOString().replace('T', ' ').slice(0, 19)} UTC · requested by ${mention(v.requestedBy)} · job ${code(v.jobId)}`],
  });
  const names = [...new Set(v.findings.map((f) => SHORT[f.id] ?? f.id))];
  return { summary: `${env}: ${n === 0 ? 'no problems found' : `${n} problem${n === 1 ? '' : 's'}: ${names.join(', ')}`}`, parts };
}
